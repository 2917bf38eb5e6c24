/**
 * Craft #4, phase 2 — planner and optimiser. Before anything is read, the tree is rewritten and
 * the reads are planned (plugins/query/p2-planner/):
 *
 * - constant folding and matcher pushdown (rewrite.ts), each exact;
 * - every selector's storage select computed from the tree and the grid — matchers, the exact
 *   time range it needs (offsets, `@`, lookback, range and subquery windows pushed down into the
 *   select), hints (step, range) — and selects of the same matchers merged into one;
 * - common subexpressions evaluated once (planned-evaluator.ts).
 *
 * EXPLAIN (`craft query --explain`, `/api/v1/explain`, `craft.query.explain`) prints the plan:
 * the tree, the selects and every rewrite. Phase 1 explains too, showing one select per selector.
 */
import { definePlugin } from '../../core/plugins/define.js';
import type { Expr } from '../../core/promql/ast.js';
import type { QueryPlan, QueryRequest, SampleSource } from '../../core/slots/query.js';
import { QueryEngine, engineOptions } from './shared/engine.js';
import { collectSelects, matchersText, type SelectPlan } from './shared/plan.js';
import type { Evaluator } from './shared/evaluator.js';
import type { Grid } from './shared/values.js';
import { foldConstants, pushDownMatchers } from './p2-planner/rewrite.js';
import { PlannedEvaluator, matchersKey, sharedSelects } from './p2-planner/planned-evaluator.js';

export class PlannerEngine extends QueryEngine {
  protected override get id(): string {
    return 'query.planner';
  }

  protected override prepare(expr: Expr): { expr: Expr; rewrites: string[] } {
    const rewrites: string[] = [];
    const folded = foldConstants(expr, rewrites);
    return { expr: pushDownMatchers(folded, rewrites), rewrites };
  }

  protected override evaluator(source: SampleSource, request: QueryRequest, nowMs: number, startMs: number, endMs: number, expr: Expr, grid: Grid): Evaluator {
    const options = this.evaluatorOptions(request, nowMs, startMs, endMs);
    // The plan needs an evaluator's arithmetic of times (lookback, subquery grids), not its reads.
    const planner = new PlannedEvaluator(source, options, new Map());
    return new PlannedEvaluator(source, options, sharedSelects(collectSelects(expr, grid, planner)));
  }

  protected override selectsOf(plans: SelectPlan[]): { selects: QueryPlan['selects']; notes: Map<unknown, string> } {
    const shared = [...sharedSelects(plans).entries()];
    const index = new Map(shared.map(([key], i) => [key, i + 1]));
    const notes = new Map<unknown, string>();
    for (const plan of plans) notes.set(plan.node, `select #${index.get(matchersKey(plan.matchers))}`);
    const selects = shared.map(([, s]) => ({ matchers: matchersText(s.matchers), minTimeMs: s.minTimeMs, maxTimeMs: s.maxTimeMs, hints: { ...s.hints }, nodes: s.nodes }));
    return { selects, notes };
  }
}

export default definePlugin({
  id: 'query.planner',
  craft: 4,
  phase: 2,
  slot: 'query.evaluator',
  version: '1.0.0',
  summary: 'Plans before it reads: constant folding, matcher pushdown, one select per matcher set over the union range, shared subexpressions; EXPLAIN',
  options: engineOptions,
  create: (context, options) => new PlannerEngine(context, options),
});
