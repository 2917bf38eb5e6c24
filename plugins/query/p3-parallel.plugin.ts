/**
 * Craft #4, phase 3 — parallel evaluation. On top of phase 2's planning:
 *
 * - **Scatter/gather aggregation**: `sum|avg|count|min|max|group` over an instant selector or
 *   over a range function of a range selector (`sum by (job) (rate(x[5m]))`, the shape of most
 *   dashboard queries) is split into shards of series (a stable hash of each series' labels,
 *   `core/model.ts` seriesShard). Each shard is read from storage with its own select — several
 *   in flight at once — and turned into partial aggregates per group and step by a pool of worker
 *   threads (p3-parallel/pool.ts); the partials merge into the result. Memory is bounded by the
 *   shards in flight, not by the series of the whole selection, and the CPU work runs on every
 *   core. Partials merge exactly (exact sums, p3-parallel/partial.ts), so the answer is phase 1's
 *   to the bit, whatever order shards finish in.
 * - **Chunk summaries**: an instant `sum|count|min|max|avg|last|present_over_time(x[r])` is
 *   answered by storage's rollup — from stored per-chunk summaries where the store keeps them
 *   (storage.time-index), decoding only the chunks at the window's edges.
 *
 * Everything else evaluates as in phase 2. Where two series of a streamed aggregation would give
 * one labelset (an error or a subtle case in Prometheus), the node is evaluated the phase-1 way
 * so the answer — or the error — is the same.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { AggregateExpr, Call, Expr, VectorSelector } from '../../core/promql/ast.js';
import { isStaleNaN, seriesShard } from '../../core/model.js';
import type { QueryRequest, SampleSource } from '../../core/slots/query.js';
import type { SelectHints } from '../../core/slots/storage.js';
import { engineOptions } from './shared/engine.js';
import type { Evaluator, EvaluatorOptions } from './shared/evaluator.js';
import { RANGE_FUNCTIONS } from './shared/range-functions.js';
import { SeriesSet, dropName, type Grid, type Value, type VectorValue } from './shared/values.js';
import { groupLabels } from './shared/aggregate.js';
import { PlannerEngine } from './shared/planner-engine.js';
import { PlannedEvaluator, sharedSelects } from './shared/planned-evaluator.js';
import { collectSelects } from './shared/plan.js';
import { GroupPartials, STREAMED_OPS } from './p3-parallel/partial.js';
import { shardPool, type ShardPool } from './p3-parallel/pool.js';
import { runShardTask, type ShardTask } from './p3-parallel/shard-task.js';

const options = engineOptions.extend({
  /** Worker threads for shard tasks (0: none, every shard runs in the query actor's thread). */
  workers: z.number().int().min(0).max(64).default(Math.min(4, availableParallelism())),
  /** Shards a streamed aggregation is split into. */
  shards: z.number().int().min(1).max(256).default(16),
  /** A shard with fewer samples than this runs in place: moving it to a worker would cost more. */
  inlineSamplesMax: z.number().int().min(0).default(20_000),
});
type Options = z.infer<typeof options>;

/** Functions storage's rollup answers exactly, and how from a window summary. */
const ROLLUP_FUNCTIONS: Record<string, (w: { count: number; sum: number; min: number; max: number; last: number }) => number> = {
  sum_over_time: (w) => w.sum,
  count_over_time: (w) => w.count,
  min_over_time: (w) => w.min,
  max_over_time: (w) => w.max,
  avg_over_time: (w) => w.sum / w.count,
  last_over_time: (w) => w.last,
  present_over_time: () => 1,
};

const unwrap = (expr: Expr): Expr => (expr.type === 'ParenExpr' ? unwrap(expr.expr) : expr);

interface StreamPlan {
  selector: VectorSelector;
  func?: string;
  rangeMs: number;
  scalars: number[];
}

/** The streamed shape of an aggregation, if it has one. */
function streamPlan(node: AggregateExpr): StreamPlan | undefined {
  if (!STREAMED_OPS.has(node.op) || node.param !== undefined) return undefined;
  const inner = unwrap(node.expr);
  if (inner.type === 'VectorSelector') return { selector: inner, rangeMs: 0, scalars: [] };
  if (inner.type !== 'Call') return undefined;
  const range = RANGE_FUNCTIONS[inner.func];
  const matrix = range === undefined ? undefined : inner.args[range.matrixArg];
  if (range === undefined || matrix?.type !== 'MatrixSelector') return undefined;
  const scalars: number[] = [];
  for (let i = 0; i < inner.args.length; i++) {
    if (i === range.matrixArg) continue;
    const arg = unwrap(inner.args[i]!);
    if (arg.type !== 'NumberLiteral') return undefined;
    scalars.push(arg.value);
  }
  return { selector: matrix.selector, func: inner.func, rangeMs: matrix.rangeMs, scalars };
}

class ParallelEvaluator extends PlannedEvaluator {
  constructor(
    source: SampleSource,
    evaluatorOptions: EvaluatorOptions,
    shared: ReturnType<typeof sharedSelects>,
    private readonly pool: ShardPool | undefined,
    private readonly phase: Options,
  ) {
    super(source, evaluatorOptions, shared);
  }

  override eval(expr: Expr, grid: Grid): Promise<Value> {
    if (expr.type === 'AggregateExpr' && grid.count > 0) {
      const plan = streamPlan(expr);
      if (plan !== undefined) return this.streamed(expr, plan, grid);
    }
    if (expr.type === 'Call' && grid.count === 1 && ROLLUP_FUNCTIONS[expr.func] !== undefined && expr.args[0]?.type === 'MatrixSelector') return this.rolledUp(expr, grid);
    return super.eval(expr, grid);
  }

  /** Scatter the selection over shards, aggregate each in a worker, gather the partials. */
  private async streamed(node: AggregateExpr, plan: StreamPlan, grid: Grid): Promise<Value> {
    const { selector, func, rangeMs } = plan;
    if (grid.count === 1 && func !== undefined && ROLLUP_FUNCTIONS[func] !== undefined && selector.at === undefined) return this.aggregatedRollup(node, grid);
    const refs = this.referenceTimes(selector.at, selector.offsetMs, grid);
    const minTimeMs = refs[0]! - (func === undefined ? this.options.lookbackDeltaMs : rangeMs);
    const maxTimeMs = refs[grid.count - 1]!;
    const hints: SelectHints = func === undefined ? { stepMs: grid.stepMs } : { stepMs: grid.stepMs, rangeMs, func };
    const shards = this.phase.shards;
    const total = new GroupPartials(grid.count, node.op === 'sum' || node.op === 'avg');
    const runShard = async (index: number): Promise<void> => {
      const raw = (await this.select(selector.matchers, minTimeMs, maxTimeMs, { ...hints, shard: { index, count: shards } })).filter((s) => seriesShard(s.labels, shards) === index);
      if (raw.length === 0) return;
      const task = packShard(raw, func !== undefined, { op: node.op, grouping: node.grouping, without: node.without, grid, refs: refs.slice(), lookbackMs: this.options.lookbackDeltaMs, rangeMs, scalars: plan.scalars, ...(func === undefined ? {} : { func }) });
      this.checkDeadline();
      total.merge(this.pool === undefined || task.times.length < this.phase.inlineSamplesMax ? runShardTask(task) : await this.pool.run(task));
      // Folded into partials: the shard's samples are no longer held, so they no longer count against the limit.
      let held = 0;
      for (const s of raw) held += s.timestampsMs.length;
      this.release(held);
    };
    // Keep a bounded number of shards in flight: enough to keep every worker and storage busy.
    const inFlight = Math.max(2, (this.pool?.size ?? 1) + 1);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(inFlight, shards) }, async () => {
      while (next < shards) await runShard(next++);
    }));
    if (func !== undefined && new Set(total.outputKeys).size !== total.outputKeys.length) return super.eval(node, grid);
    const out = new SeriesSet();
    total.emit(node.op, (labels, step, value) => out.add(labels, step, value));
    return { kind: 'vector', series: out.series() } satisfies VectorValue;
  }

  /**
   * An instant aggregation of `*_over_time(x[r])`: the window summaries of every series from one
   * storage rollup (chunk summaries where the store keeps them), aggregated here.
   */
  private async aggregatedRollup(node: AggregateExpr, grid: Grid): Promise<Value> {
    const call = unwrap(node.expr) as Call;
    const inner = await this.rolledUp(call, grid);
    if (inner.kind !== 'vector') return super.eval(node, grid);
    const total = new GroupPartials(1, node.op === 'sum' || node.op === 'avg');
    // The series come in storage's order, which is the order phase 1 meets them in: keep it.
    inner.series.forEach((series, index) => {
      const g = total.group(groupLabels(series.labels, node.grouping, node.without));
      total.add(g, 0, series.values[0]!, String(index).padStart(12, '0'));
    });
    const out = new SeriesSet();
    total.emit(node.op, (labels, step, value) => out.add(labels, step, value));
    return { kind: 'vector', series: out.series() } satisfies VectorValue;
  }

  /** An instant `*_over_time(x[r])` from storage's window summaries. */
  private async rolledUp(node: Call, grid: Grid): Promise<Value> {
    const matrix = node.args[0] as Extract<Expr, { type: 'MatrixSelector' }>;
    const endMs = this.referenceTimes(matrix.selector.at, matrix.selector.offsetMs, grid)[0]!;
    if (endMs < 0) return { kind: 'vector', series: [] };
    this.selects += 1;
    const rollups = await this.source.querier(Math.max(0, endMs - matrix.rangeMs), endMs).rollup(matrix.selector.matchers, matrix.rangeMs + 1);
    this.checkDeadline();
    this.account(rollups.length);
    const value = ROLLUP_FUNCTIONS[node.func]!;
    const keepName = RANGE_FUNCTIONS[node.func]?.keepName === true;
    const out = new SeriesSet();
    for (const series of rollups) {
      const window = series.windows[0];
      if (window === undefined || window.count === 0) continue;
      out.add(keepName ? series.labels : dropName(series.labels), 0, value(window));
    }
    return { kind: 'vector', series: out.series() };
  }
}

/** A shard's series as one task: samples in flat typed arrays (moved to the worker, not copied). */
function packShard(raw: { labels: Record<string, string>; timestampsMs: number[]; values: Float64Array }[], dropStale: boolean, rest: Omit<ShardTask, 'labels' | 'offsets' | 'times' | 'values'>): ShardTask {
  let total = 0;
  for (const s of raw) total += s.timestampsMs.length;
  const times = new Float64Array(total);
  const values = new Float64Array(total);
  const offsets = new Int32Array(raw.length + 1);
  let at = 0;
  raw.forEach((s, i) => {
    for (let k = 0; k < s.timestampsMs.length; k++) {
      // A range function never sees staleness markers (an instant selector needs them: they end a series).
      if (dropStale && isStaleNaN(s.values[k]!)) continue;
      times[at] = s.timestampsMs[k]!;
      values[at] = s.values[k]!;
      at += 1;
    }
    offsets[i + 1] = at;
  });
  return { ...rest, labels: raw.map((s) => s.labels), offsets, times: times.slice(0, at), values: values.slice(0, at) };
}

class ParallelEngine extends PlannerEngine {
  private pool: ShardPool | undefined;

  protected override get id(): string {
    return 'query.parallel';
  }

  protected override evaluator(source: SampleSource, request: QueryRequest, nowMs: number, startMs: number, endMs: number, expr: Expr, grid: Grid): Evaluator {
    const phase = this.options as Options;
    if (phase.workers > 0) this.pool ??= shardPool(phase.workers);
    const evaluatorOptions = this.evaluatorOptions(request, nowMs, startMs, endMs);
    const planner = new PlannedEvaluator(source, evaluatorOptions, new Map());
    return new ParallelEvaluator(source, evaluatorOptions, sharedSelects(collectSelects(expr, grid, planner)), this.pool, phase);
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }
}

export default definePlugin({
  id: 'query.parallel',
  craft: 4,
  phase: 3,
  slot: 'query.evaluator',
  version: '1.0.0',
  summary: 'Aggregations scattered over series shards read in parallel and gathered from worker threads; instant *_over_time from chunk summaries',
  options,
  create: (context, chosen) => new ParallelEngine(context, chosen),
});
