/**
 * The PromQL syntax tree: what `parsePromQL` returns and the evaluator walks. The shapes follow
 * Prometheus's promql/parser AST; field names are the contract between parser and evaluator.
 *
 * Positions are character offsets (UTF-16 code units) into the query text, `end` exclusive.
 * Times are integer milliseconds; an `@` timestamp is milliseconds since the Unix epoch.
 */
import type { LabelMatcher } from '../model.js';
import { lookupFunction } from './functions.js';

export type ValueType = 'scalar' | 'vector' | 'matrix' | 'string';

export interface PosRange {
  start: number;
  end: number;
}

/** `@ <seconds>` pins evaluation to a time; `@ start()` / `@ end()` to the query's range ends. */
export type AtModifier = { kind: 'timestamp'; ms: number } | { kind: 'start' } | { kind: 'end' };

/** A number; a leading sign is a UnaryExpr around it, never part of `value` (so `value` ≥ 0 or NaN). */
export interface NumberLiteral {
  type: 'NumberLiteral';
  value: number;
  pos: PosRange;
}

export interface StringLiteral {
  type: 'StringLiteral';
  value: string;
  pos: PosRange;
}

export interface VectorSelector {
  type: 'VectorSelector';
  /** The metric name when written bare before the braces (`foo{…}`); absent for `{__name__="foo"}` and `{"foo"}`. */
  name?: string;
  /** Includes `{ name: '__name__', op: '=', value: name }` first when `name` is given; otherwise in written order. */
  matchers: LabelMatcher[];
  /** `offset` in milliseconds; negative looks ahead. 0 when absent. */
  offsetMs: number;
  at?: AtModifier;
  pos: PosRange;
}

export interface MatrixSelector {
  type: 'MatrixSelector';
  /** The selector; `offset` and `@` written after the range live here. */
  selector: VectorSelector;
  rangeMs: number;
  pos: PosRange;
}

export interface SubqueryExpr {
  type: 'SubqueryExpr';
  expr: Expr;
  rangeMs: number;
  /** 0 means the default step (the evaluation interval). */
  stepMs: number;
  offsetMs: number;
  at?: AtModifier;
  pos: PosRange;
}

export interface ParenExpr {
  type: 'ParenExpr';
  expr: Expr;
  pos: PosRange;
}

export interface UnaryExpr {
  type: 'UnaryExpr';
  op: '-' | '+';
  expr: Expr;
  pos: PosRange;
}

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '^' | 'atan2' | '==' | '!=' | '>' | '<' | '>=' | '<=' | 'and' | 'or' | 'unless';

export interface VectorMatching {
  card: 'one-to-one' | 'many-to-one' | 'one-to-many' | 'many-to-many';
  /** true for `on(labels)`, false for `ignoring(labels)` or no clause. */
  on: boolean;
  labels: string[];
  /** The extra labels of `group_left(…)` / `group_right(…)`. */
  include: string[];
}

export interface BinaryExpr {
  type: 'BinaryExpr';
  op: BinaryOp;
  lhs: Expr;
  rhs: Expr;
  returnBool: boolean;
  /** Set exactly when both operands are instant vectors, as Prometheus does; set operators are many-to-many. */
  matching?: VectorMatching;
  pos: PosRange;
}

export type AggregateOp =
  | 'sum' | 'avg' | 'min' | 'max' | 'count' | 'group' | 'stddev' | 'stdvar'
  | 'topk' | 'bottomk' | 'quantile' | 'count_values' | 'limitk' | 'limit_ratio';

export const AGGREGATE_OPS: readonly AggregateOp[] = [
  'sum', 'avg', 'min', 'max', 'count', 'group', 'stddev', 'stdvar',
  'topk', 'bottomk', 'quantile', 'count_values', 'limitk', 'limit_ratio',
];

/** The aggregations whose first argument is a parameter, and the parameter's type. */
export const AGGREGATE_PARAM_TYPES: Partial<Record<AggregateOp, ValueType>> = {
  topk: 'scalar', bottomk: 'scalar', limitk: 'scalar', quantile: 'scalar', limit_ratio: 'scalar', count_values: 'string',
};

export interface AggregateExpr {
  type: 'AggregateExpr';
  op: AggregateOp;
  expr: Expr;
  /** The first argument of topk, bottomk, quantile, count_values, limitk and limit_ratio. */
  param?: Expr;
  grouping: string[];
  /** true for `without (…)`; false for `by (…)` or no clause (`by ()` and no clause are the same tree). */
  without: boolean;
  pos: PosRange;
}

export interface Call {
  type: 'Call';
  /** A name from FUNCTIONS (the parser rejects others). */
  func: string;
  args: Expr[];
  pos: PosRange;
}

export type Expr =
  | NumberLiteral | StringLiteral | VectorSelector | MatrixSelector | SubqueryExpr
  | ParenExpr | UnaryExpr | BinaryExpr | AggregateExpr | Call;

export const COMPARISON_OPS: ReadonlySet<BinaryOp> = new Set(['==', '!=', '>', '<', '>=', '<=']);
export const SET_OPS: ReadonlySet<BinaryOp> = new Set(['and', 'or', 'unless']);

/** The value an expression evaluates to, as Prometheus's Expr.Type(). */
export function typeOf(expr: Expr): ValueType {
  switch (expr.type) {
    case 'NumberLiteral':
      return 'scalar';
    case 'StringLiteral':
      return 'string';
    case 'VectorSelector':
    case 'AggregateExpr':
      return 'vector';
    case 'MatrixSelector':
    case 'SubqueryExpr':
      return 'matrix';
    case 'ParenExpr':
    case 'UnaryExpr':
      return typeOf(expr.expr);
    case 'BinaryExpr':
      return typeOf(expr.lhs) === 'scalar' && typeOf(expr.rhs) === 'scalar' ? 'scalar' : 'vector';
    case 'Call':
      // The parser rejects unknown functions; a hand-built tree with one is treated as a vector.
      return lookupFunction(expr.func)?.returnType ?? 'vector';
  }
}

/** The direct subexpressions of a node, in source order. */
export function childrenOf(expr: Expr): Expr[] {
  switch (expr.type) {
    case 'NumberLiteral':
    case 'StringLiteral':
    case 'VectorSelector':
      return [];
    case 'MatrixSelector':
      return [expr.selector];
    case 'SubqueryExpr':
    case 'ParenExpr':
    case 'UnaryExpr':
      return [expr.expr];
    case 'BinaryExpr':
      return [expr.lhs, expr.rhs];
    case 'AggregateExpr':
      return expr.param === undefined ? [expr.expr] : [expr.param, expr.expr];
    case 'Call':
      return expr.args;
  }
}

/** The number of nodes on the longest path from `expr` down to a leaf; iterative, so any depth is safe. */
export function depthOf(expr: Expr): number {
  let deepest = 0;
  const pending: Array<[Expr, number]> = [[expr, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, depth] = next;
    deepest = Math.max(deepest, depth);
    for (const child of childrenOf(node)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/** The names Prometheus uses for value types in its messages ("instant vector", "range vector"). */
export function documentedType(type: ValueType): string {
  return type === 'vector' ? 'instant vector' : type === 'matrix' ? 'range vector' : type;
}
