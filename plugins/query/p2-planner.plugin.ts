/**
 * Craft #4, phase 2 — planner and optimiser. Before anything is read, the tree is rewritten and
 * the reads are planned. The code is in plugins/query/shared/ (planner-engine.ts, rewrite.ts,
 * planned-evaluator.ts), because phases 3 and 4 build on it:
 *
 * - constant folding and matcher pushdown (shared/rewrite.ts), each exact;
 * - every selector's storage select computed from the tree and the grid — matchers, the exact
 *   time range it needs (offsets, `@`, lookback, range and subquery windows pushed down into the
 *   select), hints (step, range) — and selects of the same matchers merged into one;
 * - common subexpressions evaluated once (shared/planned-evaluator.ts).
 *
 * EXPLAIN (`craft query --explain`, `/api/v1/explain`, `craft.query.explain`) prints the plan:
 * the tree, the selects and every rewrite. Phase 1 explains too, showing one select per selector.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { engineOptions } from './shared/engine.js';
import { PlannerEngine } from './shared/planner-engine.js';

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
