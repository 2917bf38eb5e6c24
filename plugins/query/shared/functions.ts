/**
 * Function calls: range-vector functions go to range-functions.ts; the rest are here — math
 * on every sample (name dropped), clamping and rounding with scalar arguments, time and date
 * functions, label_replace/label_join (name kept), vector/scalar conversions, absent,
 * histogram_quantile over classic buckets, and the sort functions (which only order an
 * instant query's result; the engine applies the order).
 */
import type { Call, Expr } from '../../../core/promql/ast.js';
import { METRIC_NAME_LABEL, type Labels } from '../../../core/model.js';
import { compileRegex } from '../../../core/promql/regex.js';
import type { Evaluator } from './evaluator.js';
import { RANGE_FUNCTIONS, overWindows } from './range-functions.js';
import { histogramQuantile } from './histogram.js';
import { QueryExecutionError, SeriesSet, dropName, gridTime, isLabelName, type Grid, type Series, type Value, type VectorValue } from './values.js';

const MATH: Record<string, (v: number) => number> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  exp: Math.exp,
  sqrt: Math.sqrt,
  ln: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  sgn: (v) => (v < 0 ? -1 : v > 0 ? 1 : v),
  acos: Math.acos,
  acosh: Math.acosh,
  asin: Math.asin,
  asinh: Math.asinh,
  atan: Math.atan,
  atanh: Math.atanh,
  cos: Math.cos,
  cosh: Math.cosh,
  sin: Math.sin,
  sinh: Math.sinh,
  tan: Math.tan,
  tanh: Math.tanh,
  deg: (v) => (v * 180) / Math.PI,
  rad: (v) => (v * Math.PI) / 180,
};

/** Date parts of a time in seconds, in UTC (Go truncates the seconds towards zero first). */
const DATE: Record<string, (date: Date) => number> = {
  minute: (d) => d.getUTCMinutes(),
  hour: (d) => d.getUTCHours(),
  day_of_week: (d) => d.getUTCDay(),
  day_of_month: (d) => d.getUTCDate(),
  day_of_year: (d) => Math.round((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1,
  days_in_month: (d) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate(),
  month: (d) => d.getUTCMonth() + 1,
  year: (d) => d.getUTCFullYear(),
};

/** The functions that order an instant query's result, and how. */
export const SORT_FUNCTIONS = new Set(['sort', 'sort_desc', 'sort_by_label', 'sort_by_label_desc']);

/** Applies `fn(value, step)` to every sample; `undefined` drops the sample. */
function mapVector(input: VectorValue, fn: (value: number, step: number) => number | undefined, keepName = false): VectorValue {
  const out = new SeriesSet();
  for (const s of input.series) {
    const labels = keepName ? s.labels : dropName(s.labels);
    for (let k = 0; k < s.steps.length; k++) {
      const value = fn(s.values[k]!, s.steps[k]!);
      if (value !== undefined) out.add(labels, s.steps[k]!, value);
    }
  }
  return { kind: 'vector', series: out.series() };
}

const unwrap = (expr: Expr): Expr => (expr.type === 'ParenExpr' ? unwrap(expr.expr) : expr);

/** Labels `absent` gives: the selector's equality matchers, but not a label matched twice or by another operator. */
function absentLabels(expr: Expr): Labels {
  const selector = expr.type === 'VectorSelector' ? expr : expr.type === 'MatrixSelector' ? expr.selector : undefined;
  const labels: Labels = {};
  if (selector === undefined) return labels;
  const drop = new Set<string>();
  for (const m of selector.matchers) {
    if (m.name === METRIC_NAME_LABEL) continue;
    if (m.op === '=' && !(m.name in labels)) labels[m.name] = m.value;
    else drop.add(m.name);
  }
  for (const name of drop) delete labels[name];
  return labels;
}

function timeVector(grid: Grid): VectorValue {
  const steps = Array.from({ length: grid.count }, (_, i) => i);
  return { kind: 'vector', series: [{ labels: {}, steps, values: steps.map((i) => gridTime(grid, i) / 1000) }] };
}

async function stringArg(ev: Evaluator, expr: Expr | undefined, grid: Grid, what: string): Promise<string> {
  const value = expr === undefined ? undefined : await ev.eval(expr, grid);
  if (value?.kind !== 'string') throw new QueryExecutionError(`${what} must be a string`);
  return value.value;
}

/** Expands `$1`, `${1}`, `$name`, `${name}` and `$$` as Go's regexp.Expand does (an unknown group is empty). */
export function expandTemplate(template: string, match: RegExpExecArray): string {
  return template.replace(/\$(\$|\{([a-zA-Z0-9_]+)\}|([a-zA-Z0-9_]+))/g, (_, all: string, braced?: string, bare?: string) => {
    if (all === '$') return '$';
    const name = braced ?? bare!;
    if (/^\d+$/.test(name)) return match[Number(name)] ?? '';
    return match.groups?.[name] ?? '';
  });
}

/** Rewrites every series' labels once (label_replace, label_join); the values are untouched. */
function relabel(input: VectorValue, change: (labels: Labels) => Labels): VectorValue {
  const out = new SeriesSet();
  for (const s of input.series) {
    const labels = change(s.labels);
    for (let k = 0; k < s.steps.length; k++) out.add(labels, s.steps[k]!, s.values[k]!);
  }
  return { kind: 'vector', series: out.series() };
}

function withLabel(labels: Labels, name: string, value: string): Labels {
  const out = { ...labels };
  if (value === '') delete out[name];
  else out[name] = value;
  return out;
}

export async function evalCall(ev: Evaluator, node: Call, grid: Grid): Promise<Value> {
  const name = node.func;
  const args = node.args;
  const range = RANGE_FUNCTIONS[name];
  if (range !== undefined) {
    const matrix = await ev.eval(args[range.matrixArg]!, grid);
    if (matrix.kind !== 'matrix') throw new QueryExecutionError(`${name} needs a range vector`);
    const scalars: Float64Array[] = [];
    for (let i = 0; i < args.length; i++) if (i !== range.matrixArg) scalars.push(await ev.scalar(args[i]!, grid));
    return overWindows(ev, matrix, grid, range.fn, scalars, range.keepName);
  }
  const math = MATH[name];
  if (math !== undefined) return mapVector(await ev.vector(args[0]!, grid), math);
  const date = DATE[name];
  if (date !== undefined) {
    const input = args.length === 0 ? timeVector(grid) : await ev.vector(args[0]!, grid);
    return mapVector(input, (v) => (Number.isFinite(v) ? date(new Date(Math.trunc(v) * 1000)) : NaN));
  }
  switch (name) {
    case 'time':
      return { kind: 'scalar', values: Float64Array.from({ length: grid.count }, (_, i) => gridTime(grid, i) / 1000) };
    case 'pi':
      return { kind: 'scalar', values: new Float64Array(grid.count).fill(Math.PI) };
    case 'vector': {
      const values = await ev.scalar(args[0]!, grid);
      const steps = Array.from({ length: grid.count }, (_, i) => i);
      return { kind: 'vector', series: [{ labels: {}, steps, values: steps.map((i) => values[i]!) }] };
    }
    case 'scalar': {
      const input = await ev.vector(args[0]!, grid);
      const counts = new Int32Array(grid.count);
      const values = new Float64Array(grid.count).fill(NaN);
      for (const s of input.series) {
        for (let k = 0; k < s.steps.length; k++) {
          counts[s.steps[k]!]! += 1;
          values[s.steps[k]!] = s.values[k]!;
        }
      }
      for (let i = 0; i < grid.count; i++) if (counts[i] !== 1) values[i] = NaN;
      return { kind: 'scalar', values };
    }
    case 'round': {
      const input = await ev.vector(args[0]!, grid);
      const nearest = args[1] === undefined ? new Float64Array(grid.count).fill(1) : await ev.scalar(args[1], grid);
      return mapVector(input, (v, step) => {
        const inverse = 1 / nearest[step]!;
        return Math.floor(v * inverse + 0.5) / inverse;
      });
    }
    case 'clamp': {
      const input = await ev.vector(args[0]!, grid);
      const low = await ev.scalar(args[1]!, grid);
      const high = await ev.scalar(args[2]!, grid);
      return mapVector(input, (v, step) => (high[step]! < low[step]! ? undefined : Math.max(low[step]!, Math.min(high[step]!, v))));
    }
    case 'clamp_min':
    case 'clamp_max': {
      const input = await ev.vector(args[0]!, grid);
      const bound = await ev.scalar(args[1]!, grid);
      return mapVector(input, (v, step) => (name === 'clamp_min' ? Math.max(bound[step]!, v) : Math.min(bound[step]!, v)));
    }
    case 'timestamp': {
      const input = await ev.vector(args[0]!, grid);
      const fromSelector = unwrap(args[0]!).type === 'VectorSelector';
      const out = new SeriesSet();
      for (const s of input.series) {
        const labels = dropName(s.labels);
        for (let k = 0; k < s.steps.length; k++) {
          const timeMs = fromSelector && s.sampleTimesMs !== undefined ? s.sampleTimesMs[k]! : gridTime(grid, s.steps[k]!);
          out.add(labels, s.steps[k]!, timeMs / 1000);
        }
      }
      return { kind: 'vector', series: out.series() };
    }
    case 'label_replace': {
      const input = await ev.vector(args[0]!, grid);
      const destination = await stringArg(ev, args[1], grid, 'label_replace destination');
      const replacement = await stringArg(ev, args[2], grid, 'label_replace replacement');
      const source = await stringArg(ev, args[3], grid, 'label_replace source');
      const pattern = await stringArg(ev, args[4], grid, 'label_replace regex');
      let regex: RegExp;
      try {
        regex = compileRegex(pattern);
      } catch (error) {
        throw new QueryExecutionError(`invalid regular expression in label_replace(): ${pattern}: ${(error as Error).message}`);
      }
      if (!isLabelName(destination)) throw new QueryExecutionError(`invalid destination label name in label_replace(): ${destination}`);
      return relabel(input, (labels) => {
        const match = regex.exec(labels[source] ?? '');
        return match === null ? labels : withLabel(labels, destination, expandTemplate(replacement, match));
      });
    }
    case 'label_join': {
      const input = await ev.vector(args[0]!, grid);
      const destination = await stringArg(ev, args[1], grid, 'label_join destination');
      const separator = await stringArg(ev, args[2], grid, 'label_join separator');
      const sources: string[] = [];
      for (const arg of args.slice(3)) sources.push(await stringArg(ev, arg, grid, 'label_join source'));
      if (!isLabelName(destination)) throw new QueryExecutionError(`invalid destination label name in label_join(): ${destination}`);
      return relabel(input, (labels) => withLabel(labels, destination, sources.map((n) => labels[n] ?? '').join(separator)));
    }
    case 'sort':
    case 'sort_desc':
    case 'sort_by_label':
    case 'sort_by_label_desc': {
      for (const arg of args.slice(1)) await stringArg(ev, arg, grid, `${name} label`);
      return ev.vector(args[0]!, grid);
    }
    case 'absent': {
      const input = await ev.vector(args[0]!, grid);
      return absentSteps(grid, input, absentLabels(args[0]!));
    }
    case 'absent_over_time': {
      const matrix = await ev.eval(args[0]!, grid);
      if (matrix.kind !== 'matrix') throw new QueryExecutionError('absent_over_time needs a range vector');
      return absentSteps(grid, overWindows(ev, matrix, grid, () => 1), absentLabels(args[0]!));
    }
    case 'histogram_quantile': {
      const phi = await ev.scalar(args[0]!, grid);
      return histogramQuantile(phi, await ev.vector(args[1]!, grid), grid);
    }
    default:
      throw new QueryExecutionError(`function ${name} is not implemented`);
  }
}

/** 1 with `labels` at every step where `input` has no sample. */
function absentSteps(grid: Grid, input: VectorValue, labels: Labels): VectorValue {
  const present = new Uint8Array(grid.count);
  for (const s of input.series) for (const step of s.steps) present[step] = 1;
  const series: Series = { labels, steps: [], values: [] };
  for (let step = 0; step < grid.count; step++) {
    if (present[step] === 1) continue;
    series.steps.push(step);
    series.values.push(1);
  }
  return { kind: 'vector', series: series.steps.length === 0 ? [] : [series] };
}
