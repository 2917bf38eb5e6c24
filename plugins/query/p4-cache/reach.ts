/**
 * How far from a step's time the data an expression reads can lie: `backMs` before it and
 * `forwardMs` after it (a negative offset looks ahead). A sample at time x can change the
 * answer at steps `[x − forwardMs, x + backMs]` — what a cache must forget when x arrives late.
 * Undefined when `@` pins a time: then every step reads the same instant and a late sample
 * there changes them all, so such a query is not cached.
 */
import type { Expr } from '../../../core/promql/ast.js';
import { childrenOf } from '../../../core/promql/ast.js';

export interface Reach {
  backMs: number;
  forwardMs: number;
}

export function dataReach(expr: Expr, lookbackMs: number, subqueryStepMs: number): Reach | undefined {
  switch (expr.type) {
    case 'VectorSelector':
      if (expr.at !== undefined) return undefined;
      return { backMs: Math.max(0, expr.offsetMs + lookbackMs), forwardMs: Math.max(0, -expr.offsetMs) };
    case 'MatrixSelector':
      if (expr.selector.at !== undefined) return undefined;
      return { backMs: Math.max(0, expr.selector.offsetMs + expr.rangeMs), forwardMs: Math.max(0, -expr.selector.offsetMs) };
    case 'SubqueryExpr': {
      if (expr.at !== undefined) return undefined;
      const inner = dataReach(expr.expr, lookbackMs, subqueryStepMs);
      if (inner === undefined) return undefined;
      // Inner steps lie in [t − offset − range, t − offset] (aligned to the subquery's step).
      const step = expr.stepMs > 0 ? expr.stepMs : subqueryStepMs;
      return { backMs: Math.max(0, expr.offsetMs + expr.rangeMs + step + inner.backMs), forwardMs: Math.max(0, -expr.offsetMs + inner.forwardMs) };
    }
    default: {
      let reach: Reach = { backMs: 0, forwardMs: 0 };
      for (const child of childrenOf(expr)) {
        const inner = dataReach(child, lookbackMs, subqueryStepMs);
        if (inner === undefined) return undefined;
        reach = { backMs: Math.max(reach.backMs, inner.backMs), forwardMs: Math.max(reach.forwardMs, inner.forwardMs) };
      }
      return reach;
    }
  }
}
