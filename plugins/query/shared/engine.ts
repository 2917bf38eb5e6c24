/**
 * The query engine the query phases share: a request (range, instant or raw) becomes a grid of
 * evaluation times, the expression is parsed (core/promql/parser.ts) and evaluated
 * (evaluator.ts), and the value is shaped the way the Prometheus API shapes it — a range
 * query's series sorted by labels, an instant vector sorted by labels unless a sort function
 * ordered it.
 *
 * The later phases extend this class: they change how the tree is prepared before evaluation
 * (`prepare`), which evaluator runs it (`evaluator`), or answer from what they kept.
 */
import { z } from 'zod';
import type { Expr } from '../../../core/promql/ast.js';
import { typeOf } from '../../../core/promql/ast.js';
import { parseQuery } from '../../../core/promql/parser.js';
import { CraftError, InvariantError } from '../../../core/errors.js';
import type { QueryContext, QueryEvaluator, QueryPlan, QueryRequest, QueryResult, SampleSource } from '../../../core/slots/query.js';
import { printExpr } from '../../../core/promql/printer.js';
import { collectSelects, matchersText, planText, renderTree, type SelectPlan } from './plan.js';
import { Evaluator, type EvaluatorOptions } from './evaluator.js';
import { SORT_FUNCTIONS } from './functions.js';
import { compareLabels, compareNumbers, gridTime, type Grid, type Value } from './values.js';

/** Options every query phase takes. */
export const engineOptions = z
  .object({
    /** How far back an instant selector looks for a sample, ms. */
    lookbackDeltaMs: z.number().int().positive().default(5 * 60_000),
    /** Step of a subquery written without one, ms. */
    subqueryStepMs: z.number().int().positive().default(60_000),
    /** Samples one query may load and produce (Prometheus's --query.max-samples). */
    samplesMax: z.number().int().positive().default(50_000_000),
    /** Series one selector may match. */
    seriesPerSelectMax: z.number().int().positive().default(500_000),
    /** Longest evaluation, ms (Prometheus's --query.timeout). */
    timeoutMs: z.number().int().positive().default(120_000),
    /** Points a range query may give each series (Prometheus: 11,000). */
    pointsPerSeriesMax: z.number().int().positive().default(11_000),
  })
  .strict();
export type EngineOptions = z.infer<typeof engineOptions>;

interface Prepared {
  expr: Expr;
  rewrites: string[];
  nowMs: number;
  startMs: number;
  endMs: number;
  /** Undefined for a raw query. */
  grid?: Grid;
  mode: string;
}

/** For EXPLAIN, which reads nothing: a source that refuses to be read. */
const NO_SOURCE: SampleSource = {
  querier: () => {
    throw new InvariantError('EXPLAIN does not read storage');
  },
};

const unwrap = (expr: Expr): Expr => (expr.type === 'ParenExpr' ? unwrap(expr.expr) : expr);

const finite = (value: number | undefined, name: string): number => {
  if (value === undefined || !Number.isFinite(value)) throw new CraftError('CRAFT_BAD_REQUEST', `${name} must be a finite number of milliseconds`);
  return value;
};

export class QueryEngine implements QueryEvaluator {
  constructor(
    protected readonly context: QueryContext,
    protected readonly options: EngineOptions,
  ) {}

  /** The prepared tree, its rewrites, and the grid it is evaluated over (undefined for a raw query). */
  private prepareRequest(request: QueryRequest): Prepared {
    const prepared = this.prepare(parseQuery(request.expr));
    const nowMs = this.context.clock.now();
    if (request.stepMs === undefined && request.timeMs === undefined && (request.startMs !== undefined || request.endMs !== undefined)) {
      const startMs = request.startMs ?? 0;
      const endMs = request.endMs ?? Number.MAX_SAFE_INTEGER;
      return { ...prepared, nowMs, startMs, endMs, mode: `raw stored samples in [${startMs}, ${endMs}] ms` };
    }
    if (request.stepMs !== undefined) {
      const startMs = finite(request.startMs, 'start');
      const endMs = finite(request.endMs, 'end');
      const stepMs = finite(request.stepMs, 'step');
      if (endMs < startMs) throw new CraftError('CRAFT_BAD_REQUEST', 'end timestamp must not be before start time');
      if (!(stepMs > 0)) throw new CraftError('CRAFT_BAD_REQUEST', 'zero or negative query resolution step widths are not accepted. Try a positive integer');
      const count = Math.floor((endMs - startMs) / stepMs) + 1;
      if (count > this.options.pointsPerSeriesMax) {
        throw new CraftError('CRAFT_BAD_REQUEST', `exceeded maximum resolution of ${this.options.pointsPerSeriesMax} points per timeseries. Try decreasing the query resolution (?step=XX)`);
      }
      const type = typeOf(prepared.expr);
      if (type !== 'vector' && type !== 'scalar') {
        throw new CraftError('CRAFT_BAD_REQUEST', `invalid expression type "${type === 'matrix' ? 'range vector' : type}" for range query, must be Scalar or instant Vector`);
      }
      return { ...prepared, nowMs, startMs, endMs, grid: { startMs, stepMs, count }, mode: `range from ${startMs} to ${endMs} ms, step ${stepMs} ms (${count} steps)` };
    }
    const timeMs = finite(request.timeMs ?? nowMs, 'time');
    return { ...prepared, nowMs, startMs: timeMs, endMs: timeMs, grid: { startMs: timeMs, stepMs: 0, count: 1 }, mode: `instant at ${timeMs} ms` };
  }

  async evaluate(request: QueryRequest, source: SampleSource): Promise<QueryResult> {
    const prepared = this.prepareRequest(request);
    if (prepared.grid === undefined) return this.raw(prepared.expr, prepared.startMs, prepared.endMs, source);
    if (request.stepMs !== undefined) return this.evaluateRange(prepared.expr, prepared.grid, (grid) => this.evaluateGrid(source, request, prepared, grid), request);
    return instantResult(await this.evaluateGrid(source, request, prepared, prepared.grid), prepared.startMs, unwrap(prepared.expr));
  }

  /** Evaluates the prepared tree over a grid (the query's, or a part of it). */
  private evaluateGrid(source: SampleSource, request: QueryRequest, prepared: Prepared, grid: Grid): Promise<Value> {
    return this.evaluator(source, request, prepared.nowMs, prepared.startMs, prepared.endMs, prepared.expr, grid).eval(prepared.expr, grid);
  }

  /** A range query's result; `evaluate` computes any part of its grid. Phase 4 answers parts from its cache. */
  protected async evaluateRange(_expr: Expr, grid: Grid, evaluate: (grid: Grid) => Promise<Value>, _request: QueryRequest): Promise<QueryResult> {
    return rangeResult(await evaluate(grid), grid);
  }

  async explain(request: QueryRequest): Promise<QueryPlan> {
    const prepared = this.prepareRequest(request);
    const base = { evaluator: this.id, expr: printExpr(prepared.expr), mode: prepared.mode, rewrites: prepared.rewrites };
    if (prepared.grid === undefined) {
      const selector = unwrap(prepared.expr);
      const selects = selector.type === 'VectorSelector' ? [{ matchers: matchersText(selector.matchers), minTimeMs: prepared.startMs, maxTimeMs: prepared.endMs, hints: {}, nodes: 1 }] : [];
      return { ...base, selects, text: planText({ ...base, selects }, renderTree(prepared.expr, () => undefined)) };
    }
    const evaluator = this.evaluator(NO_SOURCE, request, prepared.nowMs, prepared.startMs, prepared.endMs, prepared.expr, prepared.grid);
    const { selects, notes } = this.selectsOf(collectSelects(prepared.expr, prepared.grid, evaluator));
    return { ...base, selects, text: planText({ ...base, selects }, renderTree(prepared.expr, (node) => notes.get(node))) };
  }

  /** EXPLAIN's storage selects: here one per selector node, as phase 1 runs them. */
  protected selectsOf(plans: SelectPlan[]): { selects: QueryPlan['selects']; notes: Map<unknown, string> } {
    const notes = new Map<unknown, string>();
    const selects = plans.map((p, i) => {
      notes.set(p.node, `select #${i + 1}`);
      return { matchers: matchersText(p.matchers), minTimeMs: p.minTimeMs, maxTimeMs: p.maxTimeMs, hints: { ...p.hints }, nodes: 1 };
    });
    return { selects, notes };
  }

  /** The plugin id, for EXPLAIN. */
  protected get id(): string {
    return 'query.interpreter';
  }

  /** The tree to evaluate and what was rewritten; later phases rewrite it (constant folding, pushdown). */
  protected prepare(expr: Expr): { expr: Expr; rewrites: string[] } {
    return { expr, rewrites: [] };
  }

  protected evaluatorOptions(request: QueryRequest, nowMs: number, startMs: number, endMs: number): EvaluatorOptions {
    const timeoutMs = Math.min(request.timeoutMs ?? this.options.timeoutMs, this.options.timeoutMs);
    return {
      lookbackDeltaMs: request.lookbackDeltaMs ?? this.options.lookbackDeltaMs,
      subqueryStepMs: this.options.subqueryStepMs,
      samplesMax: this.options.samplesMax,
      seriesPerSelectMax: this.options.seriesPerSelectMax,
      deadlineMs: nowMs + timeoutMs,
      now: () => this.context.clock.now(),
      queryStartMs: startMs,
      queryEndMs: endMs,
    };
  }

  /** The evaluator of one query; later phases return their own (sharing, parallel reads). */
  protected evaluator(source: SampleSource, request: QueryRequest, nowMs: number, startMs: number, endMs: number, _expr: Expr, _grid: Grid): Evaluator {
    return new Evaluator(source, this.evaluatorOptions(request, nowMs, startMs, endMs));
  }

  /** The stored samples of a plain selector in a range (the seed's `GET /query`). */
  private async raw(expr: Expr, startMs: number, endMs: number, source: SampleSource): Promise<QueryResult> {
    const selector = unwrap(expr);
    if (selector.type !== 'VectorSelector') throw new CraftError('CRAFT_BAD_REQUEST', 'a query with start and end but no step must be a series selector; give a step for a range query');
    const series = await source.querier(startMs, endMs).select(selector.matchers);
    return { resultType: 'matrix', result: series.sort((a, b) => compareLabels(a.labels, b.labels)) };
  }
}

export function rangeResult(value: Value, grid: Grid): QueryResult {
  if (value.kind === 'scalar') {
    const timestampsMs = Array.from({ length: grid.count }, (_, i) => gridTime(grid, i));
    return { resultType: 'matrix', result: [{ labels: {}, timestampsMs, values: value.values }] };
  }
  if (value.kind !== 'vector') throw new CraftError('CRAFT_BAD_REQUEST', `a range query must give a scalar or an instant vector, not a ${value.kind}`);
  const result = value.series
    .filter((s) => s.steps.length > 0)
    .map((s) => ({ labels: s.labels, timestampsMs: s.steps.map((step) => gridTime(grid, step)), values: Float64Array.from(s.values) }))
    .sort((a, b) => compareLabels(a.labels, b.labels));
  return { resultType: 'matrix', result };
}

/** NaN last, like Prometheus's sort and sort_desc. */
function byValue(descending: boolean): (a: { value: number }, b: { value: number }) => number {
  return (a, b) => {
    if (Number.isNaN(a.value)) return Number.isNaN(b.value) ? 0 : 1;
    if (Number.isNaN(b.value)) return -1;
    return descending ? compareNumbers(b.value, a.value) : compareNumbers(a.value, b.value);
  };
}

function instantResult(value: Value, timeMs: number, top: Expr): QueryResult {
  switch (value.kind) {
    case 'scalar':
      return { resultType: 'scalar', result: { timestampMs: timeMs, value: value.values[0]! } };
    case 'string':
      return { resultType: 'string', result: { timestampMs: timeMs, value: value.value } };
    case 'matrix': {
      const end = value.windowEndMs[0]!;
      const result = value.series
        .map((s) => {
          const keep = s.timesMs.map((t, i) => [t, i] as const).filter(([t]) => t >= end - value.rangeMs && t <= end);
          return { labels: s.labels, timestampsMs: keep.map(([t]) => t), values: Float64Array.from(keep, ([, i]) => s.values[i]!) };
        })
        .filter((s) => s.timestampsMs.length > 0)
        .sort((a, b) => compareLabels(a.labels, b.labels));
      return { resultType: 'matrix', result };
    }
    case 'vector': {
      const result = value.series.filter((s) => s.steps.length > 0).map((s) => ({ labels: s.labels, timestampMs: timeMs, value: s.values[0]! }));
      const sort = top.type === 'Call' && SORT_FUNCTIONS.has(top.func) ? top : undefined;
      if (sort === undefined) result.sort((a, b) => compareLabels(a.labels, b.labels));
      else if (sort.func === 'sort' || sort.func === 'sort_desc') result.sort(byValue(sort.func === 'sort_desc'));
      else {
        const names = sort.args.slice(1).map((a) => (a.type === 'StringLiteral' ? a.value : ''));
        const sign = sort.func === 'sort_by_label_desc' ? -1 : 1;
        result.sort((a, b) => {
          for (const name of names) {
            const x = a.labels[name] ?? '';
            const y = b.labels[name] ?? '';
            if (x !== y) return sign * (x < y ? -1 : 1);
          }
          return sign * compareLabels(a.labels, b.labels);
        });
      }
      return { resultType: 'vector', result };
    }
  }
}
