/**
 * The planner's evaluator: the interpreter's, plus two kinds of sharing decided before
 * evaluation starts.
 *
 * - **Shared selects**: every selector's storage request is known from the tree and the grid
 *   (plan.ts); requests with the same matchers become one select over the union of their
 *   ranges, and each selector takes its slice. `rate(x[5m]) / rate(x[1h])` reads x once.
 * - **Common subexpressions**: a subtree that occurs twice with the same grid is evaluated
 *   once (values are never modified after they are made, so sharing them is safe).
 */
import type { Expr } from '../../../core/promql/ast.js';
import { printExpr } from '../../../core/promql/printer.js';
import type { LabelMatcher, SeriesSamples } from '../../../core/model.js';
import type { SelectHints } from '../../../core/slots/storage.js';
import type { SampleSource } from '../../../core/slots/query.js';
import { Evaluator, type EvaluatorOptions } from './evaluator.js';
import type { SelectPlan } from './plan.js';
import type { Grid, Value } from './values.js';

export const matchersKey = (matchers: LabelMatcher[]): string => JSON.stringify([...matchers].map((m) => [m.name, m.op, m.value]).sort());

/** The union range per matcher set, from the selects the tree will make. */
export function sharedSelects(plans: SelectPlan[]): Map<string, { matchers: LabelMatcher[]; minTimeMs: number; maxTimeMs: number; hints: SelectHints; nodes: number }> {
  const shared = new Map<string, { matchers: LabelMatcher[]; minTimeMs: number; maxTimeMs: number; hints: SelectHints; nodes: number }>();
  for (const plan of plans) {
    const key = matchersKey(plan.matchers);
    const held = shared.get(key);
    if (held === undefined) shared.set(key, { matchers: plan.matchers, minTimeMs: plan.minTimeMs, maxTimeMs: plan.maxTimeMs, hints: { ...plan.hints }, nodes: 1 });
    else {
      held.minTimeMs = Math.min(held.minTimeMs, plan.minTimeMs);
      held.maxTimeMs = Math.max(held.maxTimeMs, plan.maxTimeMs);
      held.nodes += 1;
      // Hints that differ between the selectors no longer describe the shared read.
      for (const key of Object.keys(held.hints) as (keyof SelectHints)[]) if (held.hints[key] !== plan.hints[key]) delete held.hints[key];
    }
  }
  return shared;
}

/** Index of the first timestamp ≥ t (binary search). */
function lowerBound(times: number[], t: number): number {
  let low = 0;
  let high = times.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (times[middle]! < t) low = middle + 1;
    else high = middle;
  }
  return low;
}

export class PlannedEvaluator extends Evaluator {
  private readonly memo = new Map<string, Promise<Value>>();
  private readonly keys = new WeakMap<Expr, string>();
  private readonly fetched = new Map<string, Promise<SeriesSamples[]>>();
  /** Subexpressions answered from the memo. */
  reused = 0;

  constructor(
    source: SampleSource,
    options: EvaluatorOptions,
    private readonly shared: ReturnType<typeof sharedSelects>,
  ) {
    super(source, options);
  }

  override eval(expr: Expr, grid: Grid): Promise<Value> {
    if (expr.type === 'NumberLiteral' || expr.type === 'StringLiteral' || expr.type === 'ParenExpr') return super.eval(expr, grid);
    let text = this.keys.get(expr);
    if (text === undefined) this.keys.set(expr, (text = printExpr(expr)));
    const key = `${grid.startMs}/${grid.stepMs}/${grid.count}/${text}`;
    const held = this.memo.get(key);
    if (held !== undefined) {
      this.reused += 1;
      return held;
    }
    const value = super.eval(expr, grid);
    this.memo.set(key, value);
    return value;
  }

  override async select(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number, hints: SelectHints): Promise<SeriesSamples[]> {
    const key = matchersKey(matchers);
    const plan = this.shared.get(key);
    // A shard's select is its own: sharing would hand every shard all the series.
    if (plan === undefined || plan.nodes === 1 || hints.shard !== undefined) return super.select(matchers, minTimeMs, maxTimeMs, hints);
    let all = this.fetched.get(key);
    if (all === undefined) this.fetched.set(key, (all = super.select(plan.matchers, plan.minTimeMs, plan.maxTimeMs, plan.hints)));
    const out: SeriesSamples[] = [];
    for (const s of await all) {
      const from = lowerBound(s.timestampsMs, minTimeMs);
      const to = lowerBound(s.timestampsMs, maxTimeMs + 1);
      if (to > from) out.push({ labels: s.labels, timestampsMs: s.timestampsMs.slice(from, to), values: s.values.slice(from, to) });
    }
    return out;
  }
}
