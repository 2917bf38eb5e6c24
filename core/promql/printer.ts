/**
 * Syntax tree → canonical PromQL text, in the style of Prometheus's Expr.String():
 * `sum by (job) (rate(x{a="b"}[5m] offset 1m))`.
 *
 * For a tree the parser produced, `parsePromQL(printExpr(tree))` gives the same tree (positions
 * aside) and printing is idempotent. For a hand-built tree the printer adds the parentheses that
 * precedence needs, so the text means the same tree up to those ParenExpr nodes.
 */
import { METRIC_NAME_LABEL, type LabelMatcher } from '../model.js';
import type { AtModifier, BinaryExpr, BinaryOp, Expr, VectorMatching, VectorSelector } from './ast.js';

const BINARY_PRECEDENCE: Record<BinaryOp, number> = {
  or: 1,
  and: 2, unless: 2,
  '==': 3, '!=': 3, '<=': 3, '<': 3, '>=': 3, '>': 3,
  '+': 4, '-': 4,
  '*': 5, '/': 5, '%': 5, atan2: 5,
  '^': 7,
};
const UNARY_PRECEDENCE = 6;
/** Primaries and the postfix forms (selectors with [range], subqueries): nothing binds tighter. */
const PRIMARY_PRECEDENCE = 8;

function precedence(expr: Expr): number {
  if (expr.type === 'BinaryExpr') return BINARY_PRECEDENCE[expr.op];
  // A negative literal (only in hand-built trees) prints with a sign, so it groups like a unary.
  if (expr.type === 'UnaryExpr' || (expr.type === 'NumberLiteral' && expr.value < 0)) return UNARY_PRECEDENCE;
  return PRIMARY_PRECEDENCE;
}

export function printExpr(expr: Expr): string {
  switch (expr.type) {
    case 'NumberLiteral':
      return printNumber(expr.value);
    case 'StringLiteral':
      return quoteString(expr.value);
    case 'VectorSelector':
      return printSelector(expr) + printModifiers(expr.at, expr.offsetMs);
    case 'MatrixSelector':
      return `${printSelector(expr.selector)}[${formatDuration(expr.rangeMs)}]${printModifiers(expr.selector.at, expr.selector.offsetMs)}`;
    case 'SubqueryExpr': {
      const step = expr.stepMs === 0 ? '' : formatDuration(expr.stepMs);
      return `${wrap(expr.expr, precedence(expr.expr) < PRIMARY_PRECEDENCE)}[${formatDuration(expr.rangeMs)}:${step}]${printModifiers(expr.at, expr.offsetMs)}`;
    }
    case 'ParenExpr':
      return `(${printExpr(expr.expr)})`;
    case 'UnaryExpr':
      return expr.op + wrap(expr.expr, precedence(expr.expr) < UNARY_PRECEDENCE);
    case 'BinaryExpr':
      return printBinary(expr);
    case 'AggregateExpr': {
      const grouping = expr.without
        ? ` without (${expr.grouping.map(groupingLabel).join(', ')}) `
        : expr.grouping.length > 0 ? ` by (${expr.grouping.map(groupingLabel).join(', ')}) ` : '';
      const param = expr.param === undefined ? '' : `${printExpr(expr.param)}, `;
      return `${expr.op}${grouping}(${param}${printExpr(expr.expr)})`;
    }
    case 'Call':
      return `${expr.func}(${expr.args.map(printExpr).join(', ')})`;
  }
}

function wrap(expr: Expr, parenthesise: boolean): string {
  return parenthesise ? `(${printExpr(expr)})` : printExpr(expr);
}

function printBinary(expr: BinaryExpr): string {
  const own = BINARY_PRECEDENCE[expr.op];
  // `^` is right-associative and its right operand may be unary (`2 ^ -1`); the others associate left.
  const lhs = expr.op === '^' ? precedence(expr.lhs) <= own : precedence(expr.lhs) < own;
  const rhs = expr.op === '^' ? precedence(expr.rhs) < UNARY_PRECEDENCE : precedence(expr.rhs) <= own;
  const bool = expr.returnBool ? ' bool' : '';
  return `${wrap(expr.lhs, lhs)} ${expr.op}${bool}${printMatching(expr.matching, expr.op)} ${wrap(expr.rhs, rhs)}`;
}

function printMatching(matching: VectorMatching | undefined, op: BinaryOp): string {
  if (matching === undefined) return '';
  const grouped = matching.card === 'many-to-one' || matching.card === 'one-to-many';
  // Set operators are many-to-many without saying so; other operators one-to-one.
  if (!matching.on && matching.labels.length === 0 && !grouped) return '';
  let out = ` ${matching.on ? 'on' : 'ignoring'} (${matching.labels.map(groupingLabel).join(', ')})`;
  if (grouped && op !== 'and' && op !== 'or' && op !== 'unless') {
    out += ` ${matching.card === 'many-to-one' ? 'group_left' : 'group_right'} (${matching.include.map(groupingLabel).join(', ')})`;
  }
  return out;
}

const BARE_METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const BARE_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Names the grammar reads as something else where a metric name or grouping label would stand. */
const RESERVED_METRIC_NAMES = new Set(['on', 'ignoring', 'group_left', 'group_right', 'bool', 'atan2', 'inf', 'nan']);
const RESERVED_GROUPING_LABELS = new Set(['inf', 'nan']);

function printSelector(selector: VectorSelector): string {
  const { name, matchers } = selector;
  const first = matchers[0];
  const bare = name !== undefined && BARE_METRIC_NAME.test(name) && !RESERVED_METRIC_NAMES.has(name.toLowerCase());
  // A name that cannot stand bare keeps its __name__ matcher inside the braces.
  const shown = bare && first?.name === METRIC_NAME_LABEL && first.op === '=' && first.value === name ? matchers.slice(1) : matchers;
  const prefix = bare ? name : '';
  if (bare && shown.length === 0) return prefix;
  return `${prefix}{${shown.map(printMatcher).join(', ')}}`;
}

function printMatcher(matcher: LabelMatcher): string {
  const name = BARE_LABEL_NAME.test(matcher.name) ? matcher.name : quoteString(matcher.name);
  return `${name}${matcher.op}${quoteString(matcher.value)}`;
}

function groupingLabel(label: string): string {
  return BARE_LABEL_NAME.test(label) && !RESERVED_GROUPING_LABELS.has(label.toLowerCase()) ? label : quoteString(label);
}

/** ` @ …` then ` offset …`, the order Prometheus prints them in. */
function printModifiers(at: AtModifier | undefined, offsetMs: number): string {
  let out = '';
  if (at !== undefined) out += ` @ ${at.kind === 'timestamp' ? formatSeconds(at.ms) : `${at.kind}()`}`;
  if (offsetMs > 0) out += ` offset ${formatDuration(offsetMs)}`;
  if (offsetMs < 0) out += ` offset -${formatDuration(-offsetMs)}`;
  return out;
}

/** Milliseconds as seconds with three decimals (Prometheus's `%.3f`), computed exactly. */
function formatSeconds(ms: number): string {
  const magnitude = Math.abs(Math.round(ms));
  const fraction = String(magnitude % 1000).padStart(3, '0');
  return `${ms < 0 ? '-' : ''}${Math.floor(magnitude / 1000)}.${fraction}`;
}

const DURATION_UNITS: ReadonlyArray<[unit: string, ms: number, onlyWhenExact: boolean]> = [
  // Years and weeks only when nothing is left over: 90d reads better than 12w6d.
  ['y', 31_536_000_000, true],
  ['w', 604_800_000, true],
  ['d', 86_400_000, false],
  ['h', 3_600_000, false],
  ['m', 60_000, false],
  ['s', 1000, false],
  ['ms', 1, false],
];

/** A non-negative duration the way Prometheus prints one: `1h30m`, `5m`, `1d`, `1s500ms`, `0s`. */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms);
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, size, onlyWhenExact] of DURATION_UNITS) {
    if (onlyWhenExact && rest % size !== 0) continue;
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}

function printNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  // Unsigned: `+Inf` would read back as a unary plus around Inf.
  if (value === Infinity) return 'Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const NAMED_ESCAPES: Record<string, string> = {
  '"': '\\"', '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r', '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\v': '\\v',
};

/** A double-quoted string with Go's escapes, as Go's %q writes it (which the grammar reads back). */
export function quoteString(value: string): string {
  let out = '"';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    const named = NAMED_ESCAPES[char];
    if (named !== undefined) out += named;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code >= 0x80 && code < 0xa0) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return `${out}"`;
}
