/**
 * The PromQL interpreter: walks the syntax tree (core/promql/ast.ts) and evaluates each node
 * over a grid of evaluation times, with Prometheus 2.x semantics:
 *
 * - an instant selector at time t picks each series' latest sample in `[t − lookback, t]`
 *   (5 minutes by default), unless that sample is a staleness marker;
 * - a range selector `[r]` at t takes the samples in `[t − r, t]`, markers left out;
 * - `offset d` moves t back by d (forward when negative); `@ T` pins t to T (`start()` and
 *   `end()` are the query's range ends);
 * - a subquery `expr[r:s]` evaluates expr at times aligned to multiples of s (the default step
 *   when s is left out) and hands the points in each window to the function that reads them.
 *
 * Storage is read per selector node through the `Queryable` given (storage over NATS in the
 * platform), for exactly the range the node needs. Limits are checked as data arrives: samples
 * loaded, series per selector, and a deadline.
 */
import type { Expr, MatrixSelector, SubqueryExpr, VectorSelector, AtModifier, UnaryExpr } from '../../../core/promql/ast.js';
import { isStaleNaN, type LabelMatcher, type SeriesSamples } from '../../../core/model.js';
import { CraftError } from '../../../core/errors.js';
import type { SelectHints } from '../../../core/slots/storage.js';
import type { SampleSource } from '../../../core/slots/query.js';
import { SeriesSet, constantScalar, dropName, gridTime, type Grid, type MatrixValue, type RawSeries, type Series, type Value, type VectorValue } from './values.js';
import { evalBinary } from './binary.js';
import { evalAggregate } from './aggregate.js';
import { evalCall } from './functions.js';

/**
 * An instant selector's points of one series: at each step the latest sample at or before the
 * step's reference time, if it is no older than the lookback and not a staleness marker.
 */
export function instantPoints(times: ArrayLike<number>, values: ArrayLike<number>, refs: ArrayLike<number>, lookbackMs: number, emit: (step: number, value: number, sampleTimeMs: number) => void): void {
  let next = 0;
  for (let step = 0; step < refs.length; step++) {
    const ref = refs[step]!;
    while (next < times.length && times[next]! <= ref) next++;
    const last = next - 1;
    if (last < 0 || times[last]! < ref - lookbackMs) continue;
    const value = values[last]!;
    if (!isStaleNaN(value)) emit(step, value, times[last]!);
  }
}

export interface EvaluatorOptions {
  /** How far back an instant selector looks for a sample, ms (Prometheus: 5 minutes). */
  lookbackDeltaMs: number;
  /** Step of a subquery written without one (`[1h:]`), ms (Prometheus: the evaluation interval, 1 minute). */
  subqueryStepMs: number;
  /** Samples a query may hold at once — loaded from storage and produced (Prometheus: 50,000,000). */
  samplesMax: number;
  /** Series one selector may match. */
  seriesPerSelectMax: number;
  /** Clock time after which evaluation stops with CRAFT_QUERY_TIMEOUT. */
  deadlineMs: number;
  now: () => number;
  /** The query's own range ends, for `@ start()` and `@ end()`. */
  queryStartMs: number;
  queryEndMs: number;
}

/** How many samples evaluation has loaded and made, against the limit. */
export class Evaluator {
  samples = 0;
  /** Selects sent to storage (for EXPLAIN-like statistics and tests). */
  selects = 0;

  constructor(
    readonly source: SampleSource,
    readonly options: EvaluatorOptions,
  ) {}

  checkDeadline(): void {
    if (this.options.now() > this.options.deadlineMs) throw new CraftError('CRAFT_QUERY_TIMEOUT', 'query timed out in expression evaluation');
  }

  /** Samples no longer held (a streamed shard that was folded into partial aggregates). */
  release(samples: number): void {
    this.samples -= samples;
  }

  /** Counts samples held; past the limit the query fails (a limit, not an out-of-memory crash). */
  account(samples: number): void {
    this.samples += samples;
    if (this.samples > this.options.samplesMax) {
      throw new CraftError('CRAFT_QUERY_LIMIT', `query processing would load too many samples into memory in query execution (limit ${this.options.samplesMax})`);
    }
  }

  async eval(expr: Expr, grid: Grid): Promise<Value> {
    this.checkDeadline();
    switch (expr.type) {
      case 'NumberLiteral':
        return constantScalar(expr.value, grid.count);
      case 'StringLiteral':
        return { kind: 'string', value: expr.value };
      case 'ParenExpr':
        return this.eval(expr.expr, grid);
      case 'UnaryExpr':
        return this.unary(expr, grid);
      case 'VectorSelector':
        return this.vectorSelector(expr, grid);
      case 'MatrixSelector':
        return this.matrixSelector(expr, grid);
      case 'SubqueryExpr':
        return this.subquery(expr, grid);
      case 'BinaryExpr':
        return evalBinary(this, expr, grid);
      case 'AggregateExpr':
        return evalAggregate(this, expr, grid);
      case 'Call':
        return evalCall(this, expr, grid);
    }
  }

  /** Evaluates a node that must give an instant vector (the parser checked the type). */
  async vector(expr: Expr, grid: Grid): Promise<VectorValue> {
    const value = await this.eval(expr, grid);
    if (value.kind !== 'vector') throw new CraftError('CRAFT_QUERY_EXECUTION', `expected an instant vector, got ${value.kind}`);
    return value;
  }

  /** Evaluates a scalar argument to one value per step. */
  async scalar(expr: Expr, grid: Grid): Promise<Float64Array> {
    const value = await this.eval(expr, grid);
    if (value.kind !== 'scalar') throw new CraftError('CRAFT_QUERY_EXECUTION', `expected a scalar, got ${value.kind}`);
    return value.values;
  }

  /** The time each step reads at: the step's time or the `@` time, minus the offset. */
  referenceTimes(at: AtModifier | undefined, offsetMs: number, grid: Grid): Float64Array {
    const times = new Float64Array(grid.count);
    const pinned = at === undefined ? undefined : at.kind === 'timestamp' ? at.ms : at.kind === 'start' ? this.options.queryStartMs : this.options.queryEndMs;
    for (let i = 0; i < grid.count; i++) times[i] = (pinned ?? gridTime(grid, i)) - offsetMs;
    return times;
  }

  /** Samples of every series matching, in `[minTimeMs, maxTimeMs]`. */
  async select(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number, hints: SelectHints): Promise<SeriesSamples[]> {
    if (maxTimeMs < 0 || maxTimeMs < minTimeMs) return [];
    this.selects += 1;
    const series = await this.source.querier(Math.max(0, minTimeMs), maxTimeMs).select(matchers, hints);
    this.checkDeadline();
    if (series.length > this.options.seriesPerSelectMax) {
      throw new CraftError('CRAFT_QUERY_LIMIT', `a selector matched ${series.length} series, more than the limit of ${this.options.seriesPerSelectMax} series per selector`);
    }
    let samples = 0;
    for (const s of series) samples += s.timestampsMs.length;
    this.account(samples);
    return series;
  }

  private async vectorSelector(node: VectorSelector, grid: Grid): Promise<VectorValue> {
    if (grid.count === 0) return { kind: 'vector', series: [] };
    const refs = this.referenceTimes(node.at, node.offsetMs, grid);
    const lookback = this.options.lookbackDeltaMs;
    const raw = await this.select(node.matchers, refs[0]! - lookback, refs[grid.count - 1]!, { stepMs: grid.stepMs });
    const out: Series[] = [];
    for (const s of raw) {
      const series: Series = { labels: s.labels, steps: [], values: [], sampleTimesMs: [] };
      instantPoints(s.timestampsMs, s.values, refs, lookback, (step, value, sampleTimeMs) => {
        series.steps.push(step);
        series.values.push(value);
        series.sampleTimesMs!.push(sampleTimeMs);
      });
      if (series.steps.length > 0) out.push(series);
    }
    return { kind: 'vector', series: out };
  }

  private async matrixSelector(node: MatrixSelector, grid: Grid): Promise<MatrixValue> {
    const selector = node.selector;
    const ends = this.referenceTimes(selector.at, selector.offsetMs, grid);
    if (grid.count === 0) return { kind: 'matrix', series: [], rangeMs: node.rangeMs, windowEndMs: ends };
    const raw = await this.select(selector.matchers, ends[0]! - node.rangeMs, ends[grid.count - 1]!, { stepMs: grid.stepMs, rangeMs: node.rangeMs });
    const series: RawSeries[] = [];
    for (const s of raw) {
      const timesMs: number[] = [];
      const values: number[] = [];
      for (let i = 0; i < s.timestampsMs.length; i++) {
        if (isStaleNaN(s.values[i]!)) continue;
        timesMs.push(s.timestampsMs[i]!);
        values.push(s.values[i]!);
      }
      if (timesMs.length > 0) series.push({ labels: s.labels, timesMs, values });
    }
    return { kind: 'matrix', series, rangeMs: node.rangeMs, windowEndMs: ends };
  }

  /**
   * `expr[range:step]`: expr evaluated at the multiples of step inside the windows of every
   * outer step, as Prometheus aligns them (the first time at or after the earliest window start).
   */
  /**
   * The inner grid of a subquery for an outer grid: the multiples of its step from the first at
   * or after the earliest window start up to the last window end; and each outer step's window end.
   */
  subqueryGrid(node: SubqueryExpr, grid: Grid): { inner: Grid; ends: Float64Array } {
    const stepMs = node.stepMs > 0 ? node.stepMs : this.options.subqueryStepMs;
    const ends = this.referenceTimes(node.at, node.offsetMs, grid);
    if (grid.count === 0) return { inner: { startMs: 0, stepMs, count: 0 }, ends };
    const first = ends[0]! - node.rangeMs;
    const last = ends[grid.count - 1]!;
    let startMs = stepMs * Math.trunc(first / stepMs);
    if (startMs < first) startMs += stepMs;
    const count = last >= startMs ? Math.floor((last - startMs) / stepMs) + 1 : 0;
    return { inner: { startMs, stepMs, count }, ends };
  }

  /**
   * `expr[range:step]`: expr evaluated at the multiples of step inside the windows of every
   * outer step, as Prometheus aligns them (the first time at or after the earliest window start).
   */
  private async subquery(node: SubqueryExpr, grid: Grid): Promise<MatrixValue> {
    const { inner: innerGrid, ends } = this.subqueryGrid(node, grid);
    this.account(innerGrid.count);
    const inner = await this.vector(node.expr, innerGrid);
    const series = inner.series.map((s) => ({ labels: s.labels, timesMs: s.steps.map((step) => gridTime(innerGrid, step)), values: s.values }));
    return { kind: 'matrix', series, rangeMs: node.rangeMs, windowEndMs: ends };
  }

  private async unary(node: UnaryExpr, grid: Grid): Promise<Value> {
    const value = await this.eval(node.expr, grid);
    if (node.op === '+') return value;
    if (value.kind === 'scalar') return { kind: 'scalar', values: value.values.map((v) => -v) };
    if (value.kind !== 'vector') throw new CraftError('CRAFT_QUERY_EXECUTION', `unary minus needs a scalar or an instant vector, got ${value.kind}`);
    const out = new SeriesSet();
    for (const s of value.series) {
      const labels = dropName(s.labels);
      for (let k = 0; k < s.steps.length; k++) out.add(labels, s.steps[k]!, -s.values[k]!);
    }
    return { kind: 'vector', series: out.series() };
  }
}
