/**
 * What a query will ask storage for, and the text EXPLAIN prints: the (prepared) syntax tree
 * with each selector's storage request — matchers, time range, hints — found by walking the
 * tree with the same grids evaluation uses (subqueries get their inner grid).
 */
import type { Expr, VectorSelector } from '../../../core/promql/ast.js';
import { childrenOf } from '../../../core/promql/ast.js';
import { printExpr } from '../../../core/promql/printer.js';
import type { LabelMatcher } from '../../../core/model.js';
import type { SelectHints } from '../../../core/slots/storage.js';
import type { QueryPlan } from '../../../core/slots/query.js';
import type { Evaluator } from './evaluator.js';
import type { Grid } from './values.js';

/** One storage select a selector node makes. */
export interface SelectPlan {
  node: Expr;
  matchers: LabelMatcher[];
  minTimeMs: number;
  maxTimeMs: number;
  hints: SelectHints;
}

export type { QueryPlan };

export const matchersText = (matchers: LabelMatcher[]): string => `{${matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(', ')}}`;

/** Every selector's storage select for evaluating `expr` over `grid`, in evaluation order. */
export function collectSelects(expr: Expr, grid: Grid, ev: Evaluator, out: SelectPlan[] = []): SelectPlan[] {
  if (grid.count === 0) return out;
  switch (expr.type) {
    case 'VectorSelector': {
      const refs = ev.referenceTimes(expr.at, expr.offsetMs, grid);
      out.push({ node: expr, matchers: expr.matchers, minTimeMs: refs[0]! - ev.options.lookbackDeltaMs, maxTimeMs: refs[grid.count - 1]!, hints: { stepMs: grid.stepMs } });
      return out;
    }
    case 'MatrixSelector': {
      const selector: VectorSelector = expr.selector;
      const ends = ev.referenceTimes(selector.at, selector.offsetMs, grid);
      out.push({ node: expr, matchers: selector.matchers, minTimeMs: ends[0]! - expr.rangeMs, maxTimeMs: ends[grid.count - 1]!, hints: { stepMs: grid.stepMs, rangeMs: expr.rangeMs } });
      return out;
    }
    case 'SubqueryExpr':
      return collectSelects(expr.expr, ev.subqueryGrid(expr, grid).inner, ev, out);
    default:
      for (const child of childrenOf(expr)) collectSelects(child, grid, ev, out);
      return out;
  }
}

/** The tree as indented lines, each node with an optional note. */
export function renderTree(expr: Expr, note: (node: Expr) => string | undefined): string[] {
  const lines: string[] = [];
  const walk = (node: Expr, prefix: string, last: boolean, root: boolean): void => {
    const label = describeNode(node);
    const extra = note(node);
    lines.push(`${root ? '' : prefix + (last ? '└─ ' : '├─ ')}${label}${extra === undefined ? '' : `   ← ${extra}`}`);
    const children = node.type === 'MatrixSelector' ? [] : childrenOf(node);
    children.forEach((child, i) => walk(child, root ? '' : prefix + (last ? '   ' : '│  '), i === children.length - 1, false));
  };
  walk(expr, '', true, true);
  return lines;
}

function describeNode(node: Expr): string {
  switch (node.type) {
    case 'NumberLiteral':
    case 'StringLiteral':
    case 'VectorSelector':
    case 'MatrixSelector':
      return printExpr(node);
    case 'SubqueryExpr':
      return `subquery [${printExpr(node).split('[').at(-1)}`;
    case 'ParenExpr':
      return '( )';
    case 'UnaryExpr':
      return `unary ${node.op}`;
    case 'BinaryExpr': {
      const m = node.matching;
      const matching = m === undefined ? '' : `${m.on ? ` on(${m.labels.join(', ')})` : m.labels.length > 0 ? ` ignoring(${m.labels.join(', ')})` : ''}${m.card === 'many-to-one' ? ' group_left' : m.card === 'one-to-many' ? ' group_right' : ''}`;
      return `binary ${node.op}${node.returnBool ? ' bool' : ''}${matching}`;
    }
    case 'AggregateExpr':
      return `${node.op}${node.without ? ` without (${node.grouping.join(', ')})` : node.grouping.length > 0 ? ` by (${node.grouping.join(', ')})` : ''}`;
    case 'Call':
      return `${node.func}()`;
  }
}

const time = (ms: number): string => (Math.abs(ms) >= 1e11 ? new Date(ms).toISOString() : `${ms / 1000}s`);

/** EXPLAIN's text from its parts. */
export function planText(plan: Omit<QueryPlan, 'text'>, tree: string[]): string {
  const lines = [`evaluator  ${plan.evaluator}`, `query      ${plan.expr}`, `mode       ${plan.mode}`, '', 'tree', ...tree.map((l) => `  ${l}`), '', `storage selects (${plan.selects.length})`];
  plan.selects.forEach((s, i) => {
    const hints = Object.entries(s.hints).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`  #${i + 1} ${s.matchers}  [${time(s.minTimeMs)} … ${time(s.maxTimeMs)}]${hints === '' ? '' : `  ${hints}`}${s.nodes > 1 ? `  (serves ${s.nodes} selectors)` : ''}`);
  });
  lines.push('', `rewrites (${plan.rewrites.length})`, ...(plan.rewrites.length === 0 ? ['  none: the tree is evaluated as written'] : plan.rewrites.map((r) => `  ${r}`)));
  return lines.join('\n');
}
