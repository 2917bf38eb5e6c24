/**
 * Craft #4, phase 4 — caching, on top of phase 2's planner. Dashboards ask the same range
 * queries again and again, each time a little later; most of the answer has not changed.
 *
 * - **Step-aligned blocks**: a range query whose start is a multiple of its step is cut into
 *   blocks of `blockMs` (a multiple of the step, aligned to it). A block whose data has settled
 *   (it ends more than `freshnessMs` before now) is evaluated whole, kept in an LRU of
 *   `cacheBytes` (p4-cache/result-cache.ts), and served from there next time; the blocks at the
 *   moving edge are evaluated for just the steps asked. Every step's value depends only on the
 *   data and its own time, so a cached block gives exactly what evaluating it again would.
 * - **Invalidation**: storage publishes the time range of every commit; a block a late sample
 *   could change — through lookback, ranges, subqueries and offsets (p4-cache/reach.ts) — is
 *   forgotten. Queries with `@` are not cached (a pinned time makes every step depend on it).
 * - **Recording rules**: Prometheus rule files (`ruleFiles`, the `record:` rules) are evaluated
 *   by the query actor on their group's interval and their results written back through the
 *   queue, like any ingested sample, as `record` series (actors/recording-rules.ts).
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { Expr } from '../../core/promql/ast.js';
import { printExpr } from '../../core/promql/printer.js';
import { Float64Builder, type Labels, type SeriesSamples } from '../../core/model.js';
import type { QueryContext, QueryRequest, QueryResult } from '../../core/slots/query.js';
import { loadRuleFile, type RuleGroup } from '../../core/rules/rule-file.js';
import { engineOptions, rangeResult } from './shared/engine.js';
import { PlannerEngine } from './shared/planner-engine.js';
import { compareLabels, labelsKey, type Grid, type Value } from './shared/values.js';
import { dataReach } from './p4-cache/reach.js';
import { ResultCache, blockBytes } from './p4-cache/result-cache.js';

const options = engineOptions.extend({
  /** Bytes of cached results kept (LRU). */
  cacheBytes: z.number().int().min(0).default(64 * 1024 * 1024),
  /** Length of a cached block, ms (rounded to a multiple of the query's step). */
  blockMs: z.number().int().positive().default(3_600_000),
  /** Blocks ending later than this before now are still filling: evaluated, not cached. */
  freshnessMs: z.number().int().min(0).default(600_000),
  /** Prometheus rule files whose recording rules are evaluated on their interval. */
  ruleFiles: z.array(z.string()).default([]),
  /** Interval of a rule group that gives none, ms. */
  ruleIntervalMs: z.number().int().positive().default(60_000),
});
type Options = z.infer<typeof options>;

class CachingEngine extends PlannerEngine {
  private readonly cache: ResultCache;
  private readonly groups: RuleGroup[];

  constructor(context: QueryContext, private readonly phase: Options) {
    super(context, phase);
    this.cache = new ResultCache(phase.cacheBytes);
    this.groups = phase.ruleFiles.flatMap((file) => loadRuleFile(file)).map((g) => ({ ...g, interval: g.interval ?? phase.ruleIntervalMs }));
  }

  protected override get id(): string {
    return 'query.cache';
  }

  protected override async evaluateRange(expr: Expr, grid: Grid, evaluate: (grid: Grid) => Promise<Value>, request: QueryRequest): Promise<QueryResult> {
    const stepMs = grid.stepMs;
    const lookbackMs = request.lookbackDeltaMs ?? this.phase.lookbackDeltaMs;
    const reach = dataReach(expr, lookbackMs, this.phase.subqueryStepMs);
    if (reach === undefined || grid.count < 2 || grid.startMs % stepMs !== 0 || this.phase.cacheBytes === 0) return super.evaluateRange(expr, grid, evaluate, request);
    const blockMs = stepMs * Math.max(1, Math.round(this.phase.blockMs / stepMs));
    const settledBeforeMs = this.context.clock.now() - this.phase.freshnessMs - reach.forwardMs;
    const text = printExpr(expr);
    const endMs = grid.startMs + (grid.count - 1) * stepMs;
    const pieces: SeriesSamples[][] = [];
    for (let blockStart = Math.floor(grid.startMs / blockMs) * blockMs; blockStart <= endMs; blockStart += blockMs) {
      const blockEnd = blockStart + blockMs - stepMs;
      const fromMs = Math.max(grid.startMs, blockStart);
      const toMs = Math.min(endMs, blockEnd);
      if (blockEnd >= settledBeforeMs) {
        // Still filling: just the steps asked for.
        const partGrid = { startMs: fromMs, stepMs, count: (toMs - fromMs) / stepMs + 1 };
        pieces.push(rangeSeries(rangeResult(await evaluate(partGrid), partGrid)));
        continue;
      }
      const key = `${request.tenant ?? ''}|${lookbackMs}|${stepMs}|${blockStart}|${text}`;
      let block = this.cache.get(key)?.series;
      if (block === undefined) {
        const blockGrid = { startMs: blockStart, stepMs, count: blockMs / stepMs };
        block = rangeSeries(rangeResult(await evaluate(blockGrid), blockGrid));
        this.cache.set(key, { startMs: blockStart, endMs: blockEnd, ...reach, series: block, bytes: blockBytes(block) });
      }
      pieces.push(fromMs === blockStart && toMs === blockEnd ? block : block.map((s) => slice(s, fromMs, toMs)));
    }
    return { resultType: 'matrix', result: joinPieces(pieces) };
  }

  dataChanged(minTimeMs: number, maxTimeMs: number): void {
    this.cache.invalidate(minTimeMs, maxTimeMs);
  }

  recordingRules(): RuleGroup[] {
    return this.groups;
  }

  /** Cache figures, for tests and benchmarks. */
  cacheStats(): { entries: number; bytes: number; hits: number; misses: number; evictions: number; invalidations: number } {
    const { size: entries, bytesUsed: bytes, hits, misses, evictions, invalidations } = this.cache;
    return { entries, bytes, hits, misses, evictions, invalidations };
  }
}

const rangeSeries = (result: QueryResult): SeriesSamples[] => (result.resultType === 'matrix' ? result.result : []);

function slice(series: SeriesSamples, fromMs: number, toMs: number): SeriesSamples {
  const times = series.timestampsMs;
  let from = 0;
  while (from < times.length && times[from]! < fromMs) from++;
  let to = from;
  while (to < times.length && times[to]! <= toMs) to++;
  return { labels: series.labels, timestampsMs: times.slice(from, to), values: series.values.slice(from, to) };
}

/** The series of consecutive blocks joined by labels, sorted as a range query's result is. */
function joinPieces(pieces: SeriesSamples[][]): SeriesSamples[] {
  const joined = new Map<string, { labels: Labels; times: number[]; values: Float64Builder }>();
  for (const piece of pieces) {
    for (const s of piece) {
      if (s.timestampsMs.length === 0) continue;
      const key = labelsKey(s.labels);
      let entry = joined.get(key);
      if (entry === undefined) joined.set(key, (entry = { labels: s.labels, times: [], values: new Float64Builder() }));
      for (let i = 0; i < s.timestampsMs.length; i++) {
        entry.times.push(s.timestampsMs[i]!);
        entry.values.push(s.values[i]!);
      }
    }
  }
  return [...joined.values()].map((e) => ({ labels: e.labels, timestampsMs: e.times, values: e.values.finish() })).sort((a, b) => compareLabels(a.labels, b.labels));
}

export default definePlugin({
  id: 'query.cache',
  craft: 4,
  phase: 4,
  slot: 'query.evaluator',
  version: '1.0.0',
  summary: 'Range queries cut into step-aligned blocks kept in an LRU and forgotten when late samples land in them; recording rules from Prometheus rule files',
  options,
  create: (context, chosen) => new CachingEngine(context, chosen),
});
