/**
 * The planner's rewrites of a syntax tree, each one exact (the rewritten tree gives the same
 * answer as the original, errors included, over any data):
 *
 * - **constant folding**: an operator or function over number literals becomes the number it
 *   evaluates to (computed by the very functions evaluation uses), so `x * (60 * 60)` does one
 *   multiplication per sample instead of two;
 * - **matcher pushdown**: in `a{job="x"} / on(job) b`, a series of b without job="x" can never
 *   match, so b's selector gets `job="x"` and storage never sends those series. A matcher moves
 *   only between label-preserving sides (selectors, and functions that keep labels), only on
 *   labels the matching compares, and only into a side whose unmatched series are dropped
 *   without an error: never across `or`, only into the right side of `unless`, and not into the
 *   "one" side of a one-to-one or many-to-one match (Prometheus reports duplicate series on that
 *   side even when nothing matches them, so filtering it could hide an error).
 *
 * Trees are never changed in place: a rewrite returns new nodes.
 */
import type { BinaryExpr, Expr, VectorSelector } from '../../../core/promql/ast.js';
import { COMPARISON_OPS } from '../../../core/promql/ast.js';
import { printExpr } from '../../../core/promql/printer.js';
import { METRIC_NAME_LABEL, type LabelMatcher } from '../../../core/model.js';
import { arithmetic, compare } from './binary.js';
import { RANGE_FUNCTIONS } from './range-functions.js';

/** A copy of `expr` with each direct child replaced by `map(child)` (the same node when nothing changed). */
export function mapChildren(expr: Expr, map: (child: Expr) => Expr): Expr {
  switch (expr.type) {
    case 'NumberLiteral':
    case 'StringLiteral':
    case 'VectorSelector':
    case 'MatrixSelector':
      return expr;
    case 'SubqueryExpr':
    case 'ParenExpr':
    case 'UnaryExpr': {
      const inner = map(expr.expr);
      return inner === expr.expr ? expr : { ...expr, expr: inner };
    }
    case 'BinaryExpr': {
      const lhs = map(expr.lhs);
      const rhs = map(expr.rhs);
      return lhs === expr.lhs && rhs === expr.rhs ? expr : { ...expr, lhs, rhs };
    }
    case 'AggregateExpr': {
      const inner = map(expr.expr);
      const param = expr.param === undefined ? undefined : map(expr.param);
      return inner === expr.expr && param === expr.param ? expr : { ...expr, expr: inner, ...(param === undefined ? {} : { param }) };
    }
    case 'Call': {
      const args = expr.args.map(map);
      return args.every((a, i) => a === expr.args[i]) ? expr : { ...expr, args };
    }
  }
}

const literal = (expr: Expr): number | undefined => (expr.type === 'NumberLiteral' ? expr.value : undefined);

export function foldConstants(expr: Expr, rewrites: string[]): Expr {
  const folded = mapChildren(expr, (child) => foldConstants(child, rewrites));
  const value = constantValue(folded);
  if (value === undefined || folded.type === 'NumberLiteral') return folded;
  rewrites.push(`constant folded: ${printExpr(expr)} → ${printExpr({ type: 'NumberLiteral', value, pos: expr.pos })}`);
  return { type: 'NumberLiteral', value, pos: expr.pos };
}

function constantValue(expr: Expr): number | undefined {
  switch (expr.type) {
    case 'NumberLiteral':
      return expr.value;
    case 'ParenExpr':
      return literal(expr.expr);
    case 'UnaryExpr': {
      const v = literal(expr.expr);
      return v === undefined ? undefined : expr.op === '-' ? -v : v;
    }
    case 'BinaryExpr': {
      const l = literal(expr.lhs);
      const r = literal(expr.rhs);
      if (l === undefined || r === undefined) return undefined;
      return COMPARISON_OPS.has(expr.op) ? (compare(expr.op, l, r) ? 1 : 0) : arithmetic(expr.op, l, r);
    }
    case 'Call':
      return expr.func === 'pi' ? Math.PI : undefined;
    default:
      return undefined;
  }
}

/** Functions of an instant vector that keep every label but the name. */
const LABEL_KEEPING = new Set(['abs', 'ceil', 'floor', 'exp', 'sqrt', 'ln', 'log2', 'log10', 'sgn', 'round', 'clamp', 'clamp_min', 'clamp_max', 'timestamp', 'deg', 'rad', 'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'asinh', 'acosh', 'atanh']);

/** The selector whose series become this side's series with their labels (the name aside), if there is one. */
function labelKeepingSelector(expr: Expr): VectorSelector | undefined {
  switch (expr.type) {
    case 'VectorSelector':
      return expr;
    case 'ParenExpr':
      return labelKeepingSelector(expr.expr);
    case 'Call': {
      const range = RANGE_FUNCTIONS[expr.func];
      if (range !== undefined) {
        const arg = expr.args[range.matrixArg];
        return arg?.type === 'MatrixSelector' ? arg.selector : undefined;
      }
      return LABEL_KEEPING.has(expr.func) && expr.args[0] !== undefined ? labelKeepingSelector(expr.args[0]) : undefined;
    }
    default:
      return undefined;
  }
}

/** `expr` with `extra` matchers added to the selector that `labelKeepingSelector` finds. */
function withMatchers(expr: Expr, selector: VectorSelector, extra: LabelMatcher[]): Expr {
  if (expr === selector) return { ...selector, matchers: [...selector.matchers, ...extra] };
  if (expr.type === 'MatrixSelector' && expr.selector === selector) return { ...expr, selector: withMatchers(selector, selector, extra) as VectorSelector };
  return mapChildren(expr, (child) => withMatchers(child, selector, extra));
}

const sameMatcher = (a: LabelMatcher, b: LabelMatcher): boolean => a.name === b.name && a.op === b.op && a.value === b.value;

export function pushDownMatchers(expr: Expr, rewrites: string[]): Expr {
  const inner = mapChildren(expr, (child) => pushDownMatchers(child, rewrites));
  if (inner.type !== 'BinaryExpr' || inner.matching === undefined || inner.op === 'or') return inner;
  let node: BinaryExpr = inner;
  const matching = inner.matching;
  const compared = (m: LabelMatcher): boolean => m.name !== METRIC_NAME_LABEL && (matching.on ? matching.labels.includes(m.name) : !matching.labels.includes(m.name));
  const setOperation = inner.op === 'and' || inner.op === 'unless';
  // Into the left side: for `and`, and for arithmetic/comparisons where the left is the "many" side.
  const intoLeft = inner.op === 'and' || (!setOperation && matching.card !== 'one-to-many');
  // Into the right side: for `and` and `unless`, and where the right is the "many" side (group_right).
  const intoRight = setOperation || matching.card === 'one-to-many';
  for (const [from, to, allowed] of [['rhs', 'lhs', intoLeft], ['lhs', 'rhs', intoRight]] as const) {
    if (!allowed) continue;
    const source = labelKeepingSelector(node[from]);
    const target = labelKeepingSelector(node[to]);
    if (source === undefined || target === undefined) continue;
    const extra = source.matchers.filter((m) => compared(m) && !target.matchers.some((t) => sameMatcher(t, m)));
    if (extra.length === 0) continue;
    rewrites.push(`matchers pushed down: ${extra.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(', ')} from ${printExpr(source)} into ${printExpr(target)} (${inner.op}${matching.on ? ` on(${matching.labels.join(', ')})` : ''})`);
    node = { ...node, [to]: withMatchers(node[to], target, extra) };
  }
  return node;
}
