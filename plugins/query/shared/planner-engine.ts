/**
 * The planner engine (Craft #4 phase 2, and the base of phases 3 and 4): the interpreter's
 * engine with the planner's rewrites (rewrite.ts) and planned reads (planned-evaluator.ts).
 */
import type { Expr } from '../../../core/promql/ast.js';
import type { QueryPlan, QueryRequest, SampleSource } from '../../../core/slots/query.js';
import { QueryEngine } from './engine.js';
import { collectSelects, matchersText, type SelectPlan } from './plan.js';
import type { Evaluator } from './evaluator.js';
import type { Grid } from './values.js';
import { foldConstants, pushDownMatchers } from './rewrite.js';
import { PlannedEvaluator, matchersKey, sharedSelects } from './planned-evaluator.js';

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

