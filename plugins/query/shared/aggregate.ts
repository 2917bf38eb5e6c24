/**
 * Aggregation operators with Prometheus's arithmetic: `sum` and `avg` (from the correctly
 * rounded sum — at least as accurate as Prometheus's running sum and mean, and independent of the
 * order samples are added in, so a phase that adds partial sums from shards gets the same bits),
 * `min`/`max` (NaN only when every value is NaN), `count`, `group`,
 * `stddev`/`stdvar` (Welford, population), `topk`/`bottomk` (whole samples, name kept),
 * `quantile` (linear interpolation between the nearest ranks), `count_values` (a label of the
 * value's text), and `limitk`/`limit_ratio` (a subset of the samples, unchanged).
 *
 * Groups: `by (…)` keeps only the listed labels, `without (…)` drops them and the name. The
 * group of each input series is computed once; every step aggregates its own samples.
 */
import type { AggregateExpr } from '../../../core/promql/ast.js';
import { METRIC_NAME_LABEL, type Labels } from '../../../core/model.js';
import type { Evaluator } from './evaluator.js';
import { addExact, exactValue, type ExactSum } from '../../../core/storage/rollup.js';
import { QueryExecutionError, SeriesSet, byStep, compareNumbers, formatFloat, isLabelName, labelsKey, type Grid, type Series, type VectorValue } from './values.js';

/** The labels of a series' group: `by` keeps the listed labels, `without` drops them and the name. */
export function groupLabels(labels: Labels, grouping: string[], without: boolean): Labels {
  const out: Labels = {};
  if (without) {
    const drop = new Set(grouping);
    for (const [name, value] of Object.entries(labels)) if (name !== METRIC_NAME_LABEL && !drop.has(name)) out[name] = value;
  } else {
    for (const name of grouping) {
      const value = labels[name];
      if (value !== undefined && value !== '') out[name] = value;
    }
  }
  return out;
}

/** Prometheus's quantile of a set of values (φ < 0 → −Inf, φ > 1 → +Inf). */
export function quantileOf(phi: number, values: number[]): number {
  if (values.length === 0 || Number.isNaN(phi)) return NaN;
  if (phi < 0) return -Infinity;
  if (phi > 1) return Infinity;
  const sorted = [...values].sort(compareNumbers);
  const n = sorted.length;
  const rank = phi * (n - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(n - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return sorted[lower]! * (1 - weight) + sorted[upper]! * weight;
}

/** A float as Go's %v prints it (NaN, +Inf, 1e+20). */
function goFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return String(value).replace(/e\+?(-?)(\d)$/, 'e+$10$2').replace('e+-', 'e-');
}

/** A stable pseudo-random fraction of a label set in [0, 1), for limit_ratio. */
function labelsFraction(labels: Labels): number {
  const key = labelsKey(labels);
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) / 4_294_967_296;
}

/**
 * The k largest (or smallest) members, chosen as Prometheus chooses them: a binary heap of the
 * first k, each later member replacing the heap's top when it beats it (NaN loses to any
 * number). On ties the earlier member stays, so which of two equal samples is kept depends on
 * the order they arrive in, exactly as in Prometheus.
 */
export function keepExtremes(members: number[], valueOf: (member: number) => number, k: number, largest: boolean): number[] {
  const heap: number[] = [];
  // `less(i, j)`: heap[i] belongs nearer the top (it is the first to be replaced).
  const less = (i: number, j: number): boolean => {
    const a = valueOf(heap[i]!);
    if (Number.isNaN(a)) return true;
    return largest ? a < valueOf(heap[j]!) : a > valueOf(heap[j]!);
  };
  const swap = (i: number, j: number): void => {
    const held = heap[i]!;
    heap[i] = heap[j]!;
    heap[j] = held;
  };
  const up = (start: number): void => {
    for (let j = start; j > 0; ) {
      const parent = (j - 1) >> 1;
      if (!less(j, parent)) break;
      swap(parent, j);
      j = parent;
    }
  };
  const down = (): void => {
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      let child = left;
      if (left + 1 < heap.length && less(left + 1, left)) child = left + 1;
      if (!less(child, i)) break;
      swap(i, child);
      i = child;
    }
  };
  for (const member of members) {
    if (heap.length < k) {
      heap.push(member);
      up(heap.length - 1);
      continue;
    }
    const top = valueOf(heap[0]!);
    const v = valueOf(member);
    if ((largest ? top < v : top > v) || (Number.isNaN(top) && !Number.isNaN(v))) {
      heap[0] = member;
      down();
    }
  }
  return heap;
}

interface Accumulator {
  count: number;
  value: number;
  mean: number;
  /** sum and avg: the exact sum, so the order samples are added in cannot change the result. */
  exact: ExactSum;
  /** Samples of the group at this step (topk, bottomk, quantile, limitk). */
  members: number[];
}

export async function evalAggregate(ev: Evaluator, node: AggregateExpr, grid: Grid): Promise<VectorValue> {
  let param: Float64Array | undefined;
  let valueLabel = '';
  if (node.op === 'count_values') {
    const value = await ev.eval(node.param!, grid);
    if (value.kind !== 'string') throw new QueryExecutionError('count_values needs a string parameter');
    valueLabel = value.value;
    if (!isLabelName(valueLabel)) throw new QueryExecutionError(`invalid label name "${valueLabel}"`);
  } else if (node.param !== undefined) {
    param = await ev.scalar(node.param, grid);
  }
  const input = await ev.vector(node.expr, grid);
  if (node.op === 'count_values') return countValues(input, node, valueLabel, grid);
  const series = input.series;
  const grouping = node.grouping;
  const groupOf: number[] = [];
  const groups: Labels[] = [];
  const groupIndex = new Map<string, number>();
  for (const s of series) {
    const labels = groupLabels(s.labels, grouping, node.without);
    const key = labelsKey(labels);
    let index = groupIndex.get(key);
    if (index === undefined) {
      index = groups.length;
      groups.push(labels);
      groupIndex.set(key, index);
    }
    groupOf.push(index);
  }
  const table = byStep(series, grid.count);
  const out = new SeriesSet();
  const accumulators: (Accumulator | undefined)[] = new Array(groups.length);
  const touched: number[] = [];
  const lastStep = new Int32Array(groups.length).fill(-1);
  for (let step = 0; step < grid.count; step++) {
    if ((step & 0xff) === 0) ev.checkDeadline();
    touched.length = 0;
    for (let at = table.offsets[step]!; at < table.offsets[step + 1]!; at++) {
      const index = table.seriesIndex[at]!;
      const g = groupOf[index]!;
      const v = table.values[at]!;
      let acc = accumulators[g];
      if (acc === undefined || lastStep[g] !== step) {
        acc = { count: 0, value: 0, mean: 0, exact: { parts: [], special: 0 }, members: [] };
        accumulators[g] = acc;
        lastStep[g] = step;
        touched.push(g);
      }
      accumulate(node.op, acc, v, at);
    }
    for (const g of touched) emit(node, accumulators[g]!, groups[g]!, step, param?.[step], table, series, out);
  }
  return { kind: 'vector', series: out.series() };
}

function accumulate(op: AggregateExpr['op'], acc: Accumulator, v: number, at: number): void {
  acc.count += 1;
  switch (op) {
    case 'sum':
    case 'avg':
      addExact(acc.exact, v);
      return;
    case 'max':
      if (acc.count === 1 || acc.value < v || Number.isNaN(acc.value)) acc.value = v;
      return;
    case 'min':
      if (acc.count === 1 || acc.value > v || Number.isNaN(acc.value)) acc.value = v;
      return;
    case 'stddev':
    case 'stdvar': {
      if (acc.count === 1) {
        acc.mean = v;
        acc.value = 0;
        return;
      }
      const delta = v - acc.mean;
      acc.mean += delta / acc.count;
      acc.value += delta * (v - acc.mean);
      return;
    }
    case 'topk':
    case 'bottomk':
    case 'quantile':
    case 'limitk':
    case 'limit_ratio':
      acc.members.push(at);
      return;
    default:
      return;
  }
}

function emit(node: AggregateExpr, acc: Accumulator, labels: Labels, step: number, param: number | undefined, table: ReturnType<typeof byStep>, series: Series[], out: SeriesSet): void {
  switch (node.op) {
    case 'max':
    case 'min':
      out.add(labels, step, acc.value);
      return;
    case 'sum':
      out.add(labels, step, exactValue(acc.exact));
      return;
    case 'avg':
      out.add(labels, step, exactValue(acc.exact) / acc.count);
      return;
    case 'count':
      out.add(labels, step, acc.count);
      return;
    case 'group':
      out.add(labels, step, 1);
      return;
    case 'stdvar':
      out.add(labels, step, acc.value / acc.count);
      return;
    case 'stddev':
      out.add(labels, step, Math.sqrt(acc.value / acc.count));
      return;
    case 'quantile':
      out.add(labels, step, quantileOf(param!, acc.members.map((at) => table.values[at]!)));
      return;
    case 'topk':
    case 'bottomk': {
      if (!(param! >= -(2 ** 63) && param! <= 2 ** 63)) throw new QueryExecutionError(`Scalar value ${goFloat(param!)} overflows int64`);
      const k = Math.trunc(param!);
      if (!(k >= 1)) return;
      for (const at of keepExtremes(acc.members, (at) => table.values[at]!, k, node.op === 'topk')) out.add(series[table.seriesIndex[at]!]!.labels, step, table.values[at]!);
      return;
    }
    case 'limitk': {
      const k = Math.trunc(param!);
      if (!(k >= 1)) return;
      for (const at of acc.members.slice(0, k)) out.add(series[table.seriesIndex[at]!]!.labels, step, table.values[at]!);
      return;
    }
    case 'limit_ratio': {
      const ratio = param!;
      if (Number.isNaN(ratio) || ratio < -1 || ratio > 1) throw new QueryExecutionError(`limit_ratio needs a ratio between -1 and 1, got ${ratio}`);
      for (const at of acc.members) {
        const member = series[table.seriesIndex[at]!]!.labels;
        const fraction = labelsFraction(member);
        if (ratio >= 0 ? fraction < ratio : fraction >= 1 + ratio) out.add(member, step, table.values[at]!);
      }
      return;
    }
    case 'count_values':
      return;
  }
}

function countValues(input: VectorValue, node: AggregateExpr, valueLabel: string, grid: Grid): VectorValue {
  const grouping = node.without ? node.grouping : [...node.grouping, valueLabel];
  const out = new Map<string, { labels: Labels; counts: Map<number, number> }>();
  for (const s of input.series) {
    for (let k = 0; k < s.steps.length; k++) {
      const labels = groupLabels({ ...s.labels, [valueLabel]: formatFloat(s.values[k]!) }, grouping, node.without);
      const key = labelsKey(labels);
      let entry = out.get(key);
      if (entry === undefined) out.set(key, (entry = { labels, counts: new Map() }));
      entry.counts.set(s.steps[k]!, (entry.counts.get(s.steps[k]!) ?? 0) + 1);
    }
  }
  const series: Series[] = [];
  for (const { labels, counts } of out.values()) {
    const steps = [...counts.keys()].sort((a, b) => a - b).filter((step) => step < grid.count);
    series.push({ labels, steps, values: steps.map((step) => counts.get(step)!) });
  }
  return { kind: 'vector', series };
}
