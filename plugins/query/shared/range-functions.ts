/**
 * Functions over range vectors: each series' samples in a step's window `[end − range, end]`
 * give at most one value at that step. The arithmetic is Prometheus's (promql/functions.go,
 * read for its rules): extrapolation in rate/increase/delta, counter resets, Kahan-compensated
 * sums and variances, least squares for deriv/predict_linear, Holt's double smoothing.
 *
 * The metric name is dropped from the result, except by last_over_time, as Prometheus does.
 */
import type { Evaluator } from './evaluator.js';
import { QueryExecutionError, SeriesSet, dropName, gridTime, type Grid, type MatrixValue, type VectorValue } from './values.js';
import { quantileOf } from './aggregate.js';
import { addExact, exactValue, type ExactSum } from '../../../core/storage/rollup.js';

/** The window of one step: samples `times[from..to)` of a series, its bounds and extra scalar arguments. */
export interface Window {
  times: ArrayLike<number>;
  values: ArrayLike<number>;
  from: number;
  to: number;
  startMs: number;
  endMs: number;
  rangeMs: number;
  /** The step's evaluation time (for predict_linear's intercept). */
  stepTimeMs: number;
  /** Scalar arguments at this step, in argument order. */
  scalars: number[];
}

export type WindowFunction = (window: Window) => number | undefined;

/**
 * Applies `fn` to one series' window at every step of `grid` (windows `[end − rangeMs, end]`,
 * ends non-decreasing) and hands each value to `emit`. Shared by the evaluator and by phase 3's
 * workers, so both compute the same numbers.
 */
export function seriesWindows(
  times: ArrayLike<number>,
  values: ArrayLike<number>,
  windowEndMs: ArrayLike<number>,
  rangeMs: number,
  grid: Grid,
  fn: WindowFunction,
  scalars: ArrayLike<number>[],
  emit: (step: number, value: number) => void,
): void {
  const window: Window = { times, values, from: 0, to: 0, startMs: 0, endMs: 0, rangeMs, stepTimeMs: 0, scalars: new Array(scalars.length) };
  let from = 0;
  let to = 0;
  for (let step = 0; step < grid.count; step++) {
    const endMs = windowEndMs[step]!;
    const startMs = endMs - rangeMs;
    while (from < times.length && times[from]! < startMs) from++;
    if (to < from) to = from;
    while (to < times.length && times[to]! <= endMs) to++;
    if (from >= to) continue;
    window.from = from;
    window.to = to;
    window.startMs = startMs;
    window.endMs = endMs;
    window.stepTimeMs = gridTime(grid, step);
    for (let i = 0; i < scalars.length; i++) window.scalars[i] = scalars[i]![step]!;
    const value = fn(window);
    if (value !== undefined) emit(step, value);
  }
}

/** Applies `fn` to every series' window at every step. */
export function overWindows(ev: Evaluator, matrix: MatrixValue, grid: Grid, fn: WindowFunction, scalars: Float64Array[] = [], keepName = false): VectorValue {
  const out = new SeriesSet();
  for (const series of matrix.series) {
    ev.checkDeadline();
    const labels = keepName ? series.labels : dropName(series.labels);
    seriesWindows(series.timesMs, series.values, matrix.windowEndMs, matrix.rangeMs, grid, fn, scalars, (step, value) => out.add(labels, step, value));
  }
  return { kind: 'vector', series: out.series() };
}

const sliceOf = (values: ArrayLike<number>, from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => values[from + i]!);

/** Neumaier's compensated addition, as Prometheus's kahanSumInc. */
function kahan(sum: number, compensation: number, increment: number): [number, number] {
  const t = sum + increment;
  if (Math.abs(sum) >= Math.abs(increment)) compensation += sum - t + increment;
  else compensation += increment - t + sum;
  return [t, compensation];
}

/** rate, increase and delta: the change over the window, extrapolated towards its edges. */
function extrapolatedRate(isCounter: boolean, isRate: boolean): WindowFunction {
  return ({ times, values, from, to, startMs, endMs, rangeMs }) => {
    const n = to - from;
    if (n < 2) return undefined;
    const first = values[from]!;
    const last = values[to - 1]!;
    let result = last - first;
    if (isCounter) {
      let previous = 0;
      for (let i = from; i < to; i++) {
        if (values[i]! < previous) result += previous;
        previous = values[i]!;
      }
    }
    let durationToStart = (times[from]! - startMs) / 1000;
    const durationToEnd = (endMs - times[to - 1]!) / 1000;
    const sampledInterval = (times[to - 1]! - times[from]!) / 1000;
    const averageInterval = sampledInterval / (n - 1);
    if (isCounter && result > 0 && first >= 0) {
      // A counter does not go below zero: do not extrapolate past the time it would be zero.
      const durationToZero = sampledInterval * (first / result);
      if (durationToZero < durationToStart) durationToStart = durationToZero;
    }
    const threshold = averageInterval * 1.1;
    let extrapolateTo = sampledInterval;
    extrapolateTo += durationToStart < threshold ? durationToStart : averageInterval / 2;
    extrapolateTo += durationToEnd < threshold ? durationToEnd : averageInterval / 2;
    result *= extrapolateTo / sampledInterval;
    return isRate ? result / (rangeMs / 1000) : result;
  };
}

/** irate and idelta: from the last two samples. */
function instantValue(isRate: boolean): WindowFunction {
  return ({ times, values, from, to }) => {
    if (to - from < 2) return undefined;
    const last = values[to - 1]!;
    const previous = values[to - 2]!;
    const result = isRate && last < previous ? last : last - previous;
    const intervalMs = times[to - 1]! - times[to - 2]!;
    if (intervalMs === 0) return undefined;
    return isRate ? result / (intervalMs / 1000) : result;
  };
}

/** Least-squares slope and intercept at `interceptTimeMs`, Prometheus's linearRegression. */
function linearRegression(times: ArrayLike<number>, values: ArrayLike<number>, from: number, to: number, interceptTimeMs: number): [slope: number, intercept: number] {
  let n = 0;
  let sumX = 0, cX = 0, sumY = 0, cY = 0, sumXY = 0, cXY = 0, sumX2 = 0, cX2 = 0;
  const initial = values[from]!;
  let constant = true;
  for (let i = from; i < to; i++) {
    const y = values[i]!;
    if (constant && i > from && y !== initial) constant = false;
    n += 1;
    const x = (times[i]! - interceptTimeMs) / 1000;
    [sumX, cX] = kahan(sumX, cX, x);
    [sumY, cY] = kahan(sumY, cY, y);
    [sumXY, cXY] = kahan(sumXY, cXY, x * y);
    [sumX2, cX2] = kahan(sumX2, cX2, x * x);
  }
  if (constant) return Number.isFinite(initial) ? [0, initial] : [NaN, NaN];
  sumX += cX;
  sumY += cY;
  sumXY += cXY;
  sumX2 += cX2;
  const covXY = sumXY - (sumX * sumY) / n;
  const varX = sumX2 - (sumX * sumX) / n;
  const slope = covXY / varX;
  return [slope, sumY / n - (slope * sumX) / n];
}

/**
 * The correctly rounded sum (core/storage/rollup.ts), not Prometheus's compensated one: it is
 * at least as accurate, and it is what storage's chunk summaries add up to, so a phase that
 * answers sum_over_time and avg_over_time from summaries gives these very bits.
 */
function sumOf(values: ArrayLike<number>, from: number, to: number): number {
  const sum: ExactSum = { parts: [], special: 0 };
  for (let i = from; i < to; i++) addExact(sum, values[i]!);
  return exactValue(sum);
}

function varianceOf(values: ArrayLike<number>, from: number, to: number): number {
  let count = 0, mean = 0, cMean = 0, aux = 0, cAux = 0;
  for (let i = from; i < to; i++) {
    const v = values[i]!;
    count += 1;
    const delta = v - (mean + cMean);
    [mean, cMean] = kahan(mean, cMean, delta / count);
    [aux, cAux] = kahan(aux, cAux, delta * (v - (mean + cMean)));
  }
  return (aux + cAux) / count;
}

function extreme(isMax: boolean): WindowFunction {
  return ({ values, from, to }) => {
    let best = values[from]!;
    for (let i = from; i < to; i++) {
      const v = values[i]!;
      if ((isMax ? v > best : v < best) || Number.isNaN(best)) best = v;
    }
    return best;
  };
}

/** Holt's double exponential smoothing (holt_winters, renamed double_exponential_smoothing in Prometheus 3). */
const doubleSmoothing: WindowFunction = ({ values, from, to, scalars }) => {
  const [sf, tf] = scalars as [number, number];
  if (!(sf > 0 && sf < 1)) throw new QueryExecutionError(`invalid smoothing factor. Expected: 0 < sf < 1, got: ${sf}`);
  if (!(tf > 0 && tf < 1)) throw new QueryExecutionError(`invalid trend factor. Expected: 0 < tf < 1, got: ${tf}`);
  if (to - from < 2) return undefined;
  let s0 = 0;
  let s1 = values[from]!;
  let trend = values[from + 1]! - values[from]!;
  for (let i = from + 1; i < to; i++) {
    const x = sf * values[i]!;
    if (i > from + 1) trend = tf * (s1 - s0) + (1 - tf) * trend;
    const y = (1 - sf) * (s1 + trend);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
};

/** Functions whose first (or only) argument is a range vector, with the positions of their scalar arguments. */
export const RANGE_FUNCTIONS: Record<string, { fn: WindowFunction; matrixArg: number; keepName?: boolean }> = {
  rate: { fn: extrapolatedRate(true, true), matrixArg: 0 },
  increase: { fn: extrapolatedRate(true, false), matrixArg: 0 },
  delta: { fn: extrapolatedRate(false, false), matrixArg: 0 },
  irate: { fn: instantValue(true), matrixArg: 0 },
  idelta: { fn: instantValue(false), matrixArg: 0 },
  deriv: { fn: (w) => (w.to - w.from < 2 ? undefined : linearRegression(w.times, w.values, w.from, w.to, w.times[w.from]!)[0]), matrixArg: 0 },
  predict_linear: {
    fn: (w) => {
      if (w.to - w.from < 2) return undefined;
      const [slope, intercept] = linearRegression(w.times, w.values, w.from, w.to, w.stepTimeMs);
      return slope * w.scalars[0]! + intercept;
    },
    matrixArg: 0,
  },
  changes: {
    fn: ({ values, from, to }) => {
      let changes = 0;
      for (let i = from + 1; i < to; i++) {
        const a = values[i - 1]!;
        const b = values[i]!;
        if (a !== b && !(Number.isNaN(a) && Number.isNaN(b))) changes++;
      }
      return changes;
    },
    matrixArg: 0,
  },
  resets: {
    fn: ({ values, from, to }) => {
      let resets = 0;
      for (let i = from + 1; i < to; i++) if (values[i]! < values[i - 1]!) resets++;
      return resets;
    },
    matrixArg: 0,
  },
  avg_over_time: { fn: ({ values, from, to }) => sumOf(values, from, to) / (to - from), matrixArg: 0 },
  sum_over_time: { fn: ({ values, from, to }) => sumOf(values, from, to), matrixArg: 0 },
  count_over_time: { fn: ({ from, to }) => to - from, matrixArg: 0 },
  min_over_time: { fn: extreme(false), matrixArg: 0 },
  max_over_time: { fn: extreme(true), matrixArg: 0 },
  last_over_time: { fn: ({ values, to }) => values[to - 1]!, matrixArg: 0, keepName: true },
  present_over_time: { fn: () => 1, matrixArg: 0 },
  stdvar_over_time: { fn: ({ values, from, to }) => varianceOf(values, from, to), matrixArg: 0 },
  stddev_over_time: { fn: ({ values, from, to }) => Math.sqrt(varianceOf(values, from, to)), matrixArg: 0 },
  quantile_over_time: { fn: ({ values, from, to, scalars }) => quantileOf(scalars[0]!, sliceOf(values, from, to)), matrixArg: 1 },
  mad_over_time: {
    fn: ({ values, from, to }) => {
      const window = sliceOf(values, from, to);
      const median = quantileOf(0.5, window);
      return quantileOf(0.5, window.map((v) => Math.abs(v - median)));
    },
    matrixArg: 0,
  },
  holt_winters: { fn: doubleSmoothing, matrixArg: 0 },
  double_exponential_smoothing: { fn: doubleSmoothing, matrixArg: 0 },
};
