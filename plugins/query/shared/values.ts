/**
 * What PromQL expressions evaluate to, over a grid of evaluation times (Prometheus evaluates
 * every node over the whole range at once, as `rangeEval` does, and so do we):
 *
 * - a scalar: one number per step;
 * - an instant vector: series whose points sit on steps (a series may miss steps);
 * - a range vector: raw samples per series plus, for each step, the end of its window
 *   (`[end − range, end]`, both ends inclusive, as Prometheus 2.x selects them);
 * - a string.
 *
 * Labels objects are never mutated once made: helpers that change labels return new objects
 * and cache what they derive per object (WeakMap), so a series' signature or key is computed
 * once per query, not once per step.
 */
import { METRIC_NAME_LABEL, seriesKey, type Labels } from '../../../core/model.js';
import { CraftError } from '../../../core/errors.js';

/** Evaluation times `startMs + i · stepMs` for 0 ≤ i < count. */
export interface Grid {
  startMs: number;
  stepMs: number;
  count: number;
}

export const gridTime = (grid: Grid, step: number): number => grid.startMs + step * grid.stepMs;

/** An instant vector's series: `values[k]` at step `steps[k]`, steps ascending. */
export interface Series {
  labels: Labels;
  steps: number[];
  values: number[];
  /** Timestamps of the samples a selector picked (for `timestamp()`); absent for computed series. */
  sampleTimesMs?: number[];
}

/** Raw samples of one series (staleness markers removed), timestamps ascending. */
export interface RawSeries {
  labels: Labels;
  timesMs: number[];
  values: number[];
}

export type ScalarValue = { kind: 'scalar'; values: Float64Array };
export type VectorValue = { kind: 'vector'; series: Series[] };
export type MatrixValue = {
  kind: 'matrix';
  series: RawSeries[];
  rangeMs: number;
  /** End of the window at each step (inclusive); the window is `[end − rangeMs, end]`. */
  windowEndMs: Float64Array;
};
export type StringValue = { kind: 'string'; value: string };
export type Value = ScalarValue | VectorValue | MatrixValue | StringValue;

/** An execution error (Prometheus answers these with errorType "execution", HTTP 422). */
export class QueryExecutionError extends CraftError {
  constructor(message: string) {
    super('CRAFT_QUERY_EXECUTION', message);
  }
}

const keys = new WeakMap<Labels, string>();
/** The canonical key of a label set, cached per object. */
export function labelsKey(labels: Labels): string {
  let key = keys.get(labels);
  if (key === undefined) keys.set(labels, (key = seriesKey(labels)));
  return key;
}

const withoutName = new WeakMap<Labels, Labels>();
/** The labels without `__name__` (the same object when there is none), cached per object. */
export function dropName(labels: Labels): Labels {
  if (!(METRIC_NAME_LABEL in labels)) return labels;
  let out = withoutName.get(labels);
  if (out === undefined) {
    out = { ...labels };
    delete out[METRIC_NAME_LABEL];
    withoutName.set(labels, out);
  }
  return out;
}

/** Prometheus's order of label sets: by sorted (name, value) pairs, a prefix first. */
export function compareLabels(a: Labels, b: Labels): number {
  const an = Object.keys(a).sort();
  const bn = Object.keys(b).sort();
  for (let i = 0; i < Math.min(an.length, bn.length); i++) {
    if (an[i] !== bn[i]) return an[i]! < bn[i]! ? -1 : 1;
    const av = a[an[i]!]!;
    const bv = b[bn[i]!]!;
    if (av !== bv) return av < bv ? -1 : 1;
  }
  return an.length - bn.length;
}

/** Ascending order of numbers with NaN first, safe for infinities (a − b is NaN for Inf − Inf). */
export const compareNumbers = (a: number, b: number): number => (Number.isNaN(a) ? (Number.isNaN(b) ? 0 : -1) : Number.isNaN(b) ? 1 : a < b ? -1 : a > b ? 1 : 0);

export { isLabelName } from '../../../core/model.js';
export { formatFloat } from '../../../core/promql/format.js';

/**
 * Collects output series by label set, point by point. Two points for one label set at one
 * step is Prometheus's "vector cannot contain metrics with the same labelset".
 */
export class SeriesSet {
  private readonly byKey = new Map<string, Series>();

  add(labels: Labels, step: number, value: number, sampleTimeMs?: number): void {
    const key = labelsKey(labels);
    let series = this.byKey.get(key);
    if (series === undefined) {
      series = { labels, steps: [], values: [] };
      if (sampleTimeMs !== undefined) series.sampleTimesMs = [];
      this.byKey.set(key, series);
    }
    const last = series.steps.length - 1;
    if (last < 0 || series.steps[last]! < step) {
      series.steps.push(step);
      series.values.push(value);
      series.sampleTimesMs?.push(sampleTimeMs ?? 0);
      return;
    }
    // Points of another input series with the same output labels: insert in step order.
    let at = last;
    while (at >= 0 && series.steps[at]! > step) at--;
    if (at >= 0 && series.steps[at] === step) throw new QueryExecutionError('vector cannot contain metrics with the same labelset');
    series.steps.splice(at + 1, 0, step);
    series.values.splice(at + 1, 0, value);
    series.sampleTimesMs?.splice(at + 1, 0, sampleTimeMs ?? 0);
  }

  series(): Series[] {
    return [...this.byKey.values()];
  }
}

/**
 * An instant vector arranged by step (compressed rows): the points of step s are
 * `[offsets[s], offsets[s + 1])` in `seriesIndex` / `values`, in series order.
 */
export interface StepTable {
  offsets: Int32Array;
  seriesIndex: Int32Array;
  values: Float64Array;
}

export function byStep(series: Series[], count: number): StepTable {
  const offsets = new Int32Array(count + 1);
  for (const s of series) for (const step of s.steps) offsets[step + 1]! += 1;
  for (let i = 0; i < count; i++) offsets[i + 1]! += offsets[i]!;
  const fill = offsets.slice(0, count);
  const seriesIndex = new Int32Array(offsets[count]!);
  const values = new Float64Array(offsets[count]!);
  series.forEach((s, index) => {
    for (let k = 0; k < s.steps.length; k++) {
      const at = fill[s.steps[k]!]!++;
      seriesIndex[at] = index;
      values[at] = s.values[k]!;
    }
  });
  return { offsets, seriesIndex, values };
}

/** A scalar of one value at every step. */
export const constantScalar = (value: number, count: number): ScalarValue => ({ kind: 'scalar', values: new Float64Array(count).fill(value) });
