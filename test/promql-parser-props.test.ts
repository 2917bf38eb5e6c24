/**
 * Properties of the PromQL parser and printer, over random well-typed trees:
 * printing then parsing gives the tree back (exactly, for trees the parser made; up to the
 * parentheses the printer had to add, for any tree), printing is idempotent, durations
 * round-trip, and no input makes the parser fail with anything but a PromQLParseError.
 */
import t from 'tap';
import fc from 'fast-check';
import {
  AGGREGATE_OPS, AGGREGATE_PARAM_TYPES,
  type AggregateExpr, type AtModifier, type BinaryOp, type Expr, type ValueType, type VectorMatching, type VectorSelector,
} from '../core/promql/ast.js';
import { argumentCountRange, FUNCTIONS } from '../core/promql/functions.js';
import { parseDurationMs, parsePromQL, PromQLParseError } from '../core/promql/parser.js';
import { formatDuration, printExpr } from '../core/promql/printer.js';
import type { LabelMatcher } from '../core/model.js';

/** The tree without positions, NaN spelled out so that deep equality sees it. */
function shape(expr: unknown): unknown {
  return JSON.parse(JSON.stringify(expr, (key, value: unknown) => (key === 'pos' ? undefined : Number.isNaN(value) ? 'NaN' : value)));
}

/** The shaped tree with every ParenExpr replaced by its content. */
function withoutParens(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutParens);
  if (node === null || typeof node !== 'object') return node;
  const record = node as Record<string, unknown>;
  if (record['type'] === 'ParenExpr') return withoutParens(record['expr']);
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, withoutParens(value)]));
}

const POS = { start: 0, end: 0 };
const RESERVED_METRIC_NAMES = new Set(['on', 'ignoring', 'group_left', 'group_right', 'bool', 'atan2', 'inf', 'nan']);

const metricName = fc.oneof(
  fc.constantFrom('foo', 'http_requests_total', 'a:b:c', ':x', 'sum', 'by', 'without', 'offset', 'and', 'or', 'start', 'end', 'min', 'rate', 'info', 'limitk'),
  fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,8}$/).filter((name) => !RESERVED_METRIC_NAMES.has(name.toLowerCase())),
);
const labelName = fc
  .oneof(fc.constantFrom('job', 'on', 'by', 'inf', 'Bool', 'offset', 'a.b', 'a:b', '', 'ü'), fc.string({ unit: 'binary', maxLength: 6 }))
  .filter((name) => name !== '__name__');
const groupingLabel = fc.oneof(
  fc.constantFrom('job', 'instance', 'on', 'by', 'bool', 'group_left', 'offset', 'sum', 'a:b', 'a.b', 'Inf', 'nan', 'ü'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }),
);
const labelList = fc.array(groupingLabel, { maxLength: 3 });
const text = fc.string({ unit: 'binary', maxLength: 10 });
const regex = fc.constantFrom('.*', '.+', 'a|b', '[0-9]+', 'x.y', '', '\\d', '(a|b)c*');

const matcher: fc.Arbitrary<LabelMatcher> = fc.oneof(
  fc.record({ name: labelName, op: fc.constantFrom('=' as const, '!=' as const), value: text }),
  fc.record({ name: labelName, op: fc.constantFrom('=~' as const, '!~' as const), value: regex }),
);
/** Without a bare metric name, a selector needs a matcher that does not match the empty string. */
const anchor: fc.Arbitrary<LabelMatcher> = fc.record({
  name: fc.oneof(labelName, fc.constant('__name__')),
  op: fc.constant('=' as const),
  value: fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }),
});

const durationMs = fc.oneof(fc.integer({ min: 1, max: 1e12 }), fc.constantFrom(1, 1000, 60_000, 300_000, 5_400_000, 86_400_000, 604_800_000, 31_536_000_000));
const offsetMs = fc.oneof(fc.constant(0), durationMs, durationMs.map((ms) => -ms));
const atModifier: fc.Arbitrary<AtModifier | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant({ kind: 'start' as const }),
  fc.constant({ kind: 'end' as const }),
  fc.integer({ min: -8.64e15, max: 8.64e15 }).map((ms) => ({ kind: 'timestamp' as const, ms })),
);

const vectorSelector: fc.Arbitrary<VectorSelector> = fc
  .record({ name: fc.option(metricName, { nil: undefined }), anchor, matchers: fc.array(matcher, { maxLength: 3 }), offsetMs, at: atModifier })
  .map(({ name, anchor, matchers, offsetMs, at }) => ({
    type: 'VectorSelector' as const,
    ...(name === undefined ? { matchers: [anchor, ...matchers] } : { name, matchers: [{ name: '__name__', op: '=' as const, value: name }, ...matchers] }),
    offsetMs,
    ...(at === undefined ? {} : { at }),
    pos: POS,
  }));

const numberLiteral: fc.Arbitrary<Expr> = fc
  .oneof(fc.double({ min: 0, noNaN: true }), fc.constantFrom(NaN, Infinity, 0, 1, 0.5, 1e21, 5e-324), fc.nat())
  .map((value) => ({ type: 'NumberLiteral' as const, value: value === 0 ? 0 : value, pos: POS }));
const stringLiteral: fc.Arbitrary<Expr> = text.map((value) => ({ type: 'StringLiteral' as const, value, pos: POS }));

type Trees = { vector: Expr; scalar: Expr; matrix: Expr; string: Expr };
type Tie = <K extends keyof Trees>(key: K) => fc.Arbitrary<Trees[K]>;

const ARITHMETIC: BinaryOp[] = ['+', '-', '*', '/', '%', '^', 'atan2'];
const COMPARISON: BinaryOp[] = ['==', '!=', '>', '<', '>=', '<='];
const SET: BinaryOp[] = ['and', 'or', 'unless'];

function binary(op: BinaryOp, lhs: Expr, rhs: Expr, returnBool: boolean, matching?: VectorMatching): Expr {
  return { type: 'BinaryExpr', op, lhs, rhs, returnBool: returnBool && COMPARISON.includes(op), ...(matching === undefined ? {} : { matching }), pos: POS };
}

const oneToOneOrGrouped: fc.Arbitrary<VectorMatching> = fc
  .record({ card: fc.constantFrom('one-to-one' as const, 'many-to-one' as const, 'one-to-many' as const), on: fc.boolean(), labels: labelList, include: labelList })
  .map((m) => ({ ...m, include: m.card === 'one-to-one' ? [] : m.on ? m.include.filter((label) => !m.labels.includes(label)) : m.include }));
const manyToMany: fc.Arbitrary<VectorMatching> = fc.record({ on: fc.boolean(), labels: labelList }).map((m) => ({ card: 'many-to-many' as const, ...m, include: [] }));

function call(returnType: ValueType, tie: Tie): fc.Arbitrary<Expr> {
  const names = Object.keys(FUNCTIONS).filter((name) => FUNCTIONS[name]!.returnType === returnType);
  return fc.constantFrom(...names).chain((func) => {
    const signature = FUNCTIONS[func]!;
    const extra = signature.variadic === 0 ? 0 : signature.variadic < 0 ? 2 : signature.variadic;
    return fc
      .integer({ min: 0, max: extra })
      .chain((count) => {
        const types = Array.from({ length: argumentCountRange(signature).min + count }, (_, i) => signature.argTypes[Math.min(i, signature.argTypes.length - 1)]!);
        return fc.tuple(...types.map((type) => tie(type)));
      })
      .map((args): Expr => ({ type: 'Call', func, args, pos: POS }));
  });
}

function aggregate(tie: Tie): fc.Arbitrary<Expr> {
  return fc
    .record({ op: fc.constantFrom(...AGGREGATE_OPS), expr: tie('vector'), grouping: labelList, without: fc.boolean(), scalar: tie('scalar'), string: tie('string') })
    .map(({ op, expr, grouping, without, scalar, string }) => {
      const node: AggregateExpr = { type: 'AggregateExpr', op, expr, grouping, without, pos: POS };
      const paramType = AGGREGATE_PARAM_TYPES[op];
      if (paramType !== undefined) node.param = paramType === 'string' ? string : scalar;
      return node;
    });
}

const depth = { depthSize: 'small' as const, maxDepth: 4, depthIdentifier: 'promql' };
const trees = fc.letrec<Trees>((tie) => ({
  vector: fc.oneof(
    depth,
    vectorSelector,
    call('vector', tie),
    aggregate(tie),
    fc.tuple(fc.constantFrom(...ARITHMETIC, ...COMPARISON), tie('vector'), tie('vector'), fc.boolean(), oneToOneOrGrouped).map(([op, l, r, b, m]) => binary(op, l, r, b, m)),
    fc.tuple(fc.constantFrom(...SET), tie('vector'), tie('vector'), manyToMany).map(([op, l, r, m]) => binary(op, l, r, false, m)),
    fc.tuple(fc.constantFrom(...ARITHMETIC, ...COMPARISON), tie('vector'), tie('scalar'), fc.boolean(), fc.boolean()).map(([op, v, s, b, left]) => (left ? binary(op, v, s, b) : binary(op, s, v, b))),
    fc.tuple(fc.constantFrom('-' as const, '+' as const), tie('vector')).map(([op, expr]): Expr => ({ type: 'UnaryExpr', op, expr, pos: POS })),
    tie('vector').map((expr): Expr => ({ type: 'ParenExpr', expr, pos: POS })),
  ),
  scalar: fc.oneof(
    depth,
    numberLiteral,
    call('scalar', tie),
    fc.tuple(fc.constantFrom(...ARITHMETIC), tie('scalar'), tie('scalar')).map(([op, l, r]) => binary(op, l, r, false)),
    fc.tuple(fc.constantFrom(...COMPARISON), tie('scalar'), tie('scalar')).map(([op, l, r]) => binary(op, l, r, true)),
    fc.tuple(fc.constantFrom('-' as const, '+' as const), tie('scalar')).map(([op, expr]): Expr => ({ type: 'UnaryExpr', op, expr, pos: POS })),
    tie('scalar').map((expr): Expr => ({ type: 'ParenExpr', expr, pos: POS })),
  ),
  matrix: fc.oneof(
    depth,
    fc.tuple(vectorSelector, durationMs).map(([selector, rangeMs]): Expr => ({ type: 'MatrixSelector', selector, rangeMs, pos: POS })),
    fc.record({ expr: tie('vector'), rangeMs: durationMs, stepMs: fc.oneof(fc.constant(0), durationMs), offsetMs, at: atModifier }).map(({ at, ...rest }): Expr => ({
      type: 'SubqueryExpr', ...rest, ...(at === undefined ? {} : { at }), pos: POS,
    })),
    tie('matrix').map((expr): Expr => ({ type: 'ParenExpr', expr, pos: POS })),
  ),
  string: fc.oneof(depth, stringLiteral, tie('string').map((expr): Expr => ({ type: 'ParenExpr', expr, pos: POS }))),
}));
const anyTree = fc.oneof(trees.vector, trees.scalar, trees.matrix, trees.string);

const runs = { numRuns: 400 };

t.test('property: printing then parsing keeps the tree, up to the parentheses precedence needs', async (t) => {
  fc.assert(
    fc.property(anyTree, (tree) => {
      const printed = printExpr(tree);
      const parsed = parsePromQL(printed);
      t.same(withoutParens(shape(parsed)), withoutParens(shape(tree)), printed);
      return true;
    }),
    runs,
  );
});

t.test('property: a parsed tree prints and parses back exactly, and printing is idempotent', async (t) => {
  fc.assert(
    fc.property(anyTree, (tree) => {
      const printed = printExpr(tree);
      const parsed = parsePromQL(printed);
      const again = printExpr(parsed);
      t.equal(again, printed, 'idempotent');
      t.same(shape(parsePromQL(again)), shape(parsed), printed);
      return true;
    }),
    runs,
  );
});

t.test('property: durations print and parse back', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 1e14 }), (ms) => parseDurationMs(formatDuration(ms)) === ms));
});

const vocabulary = [
  'sum', 'rate', 'foo', 'x', 'by', 'without', 'on', 'ignoring', 'group_left', 'bool', 'offset', '@', 'start()', 'and', 'or',
  '(', ')', '{', '}', '[', ']', ',', ':', '5m', '1', '0x1f', '.5', 'Inf', '"a"', "'\\n'", '`b`', '=', '=~', '!=', '==', '>',
  '+', '-', '*', '/', '^', '#c\n', ' ', 'a="b"', 'topk', 'count_values', '1h30m', '[5m]', '[1h:1m]',
];

t.test('property: any text either parses or fails with a positioned PromQLParseError', async (t) => {
  const soup = fc.array(fc.constantFrom(...vocabulary), { maxLength: 14 }).map((tokens) => tokens.join(''));
  const mutated = fc.tuple(anyTree, fc.nat(), fc.nat()).map(([tree, at, length]) => {
    const printed = printExpr(tree);
    const start = at % (printed.length + 1);
    return printed.slice(0, start) + printed.slice(start + (length % 4));
  });
  fc.assert(
    fc.property(fc.oneof(soup, mutated, fc.string({ maxLength: 20 })), (query) => {
      try {
        parsePromQL(query);
      } catch (error) {
        if (!(error instanceof PromQLParseError)) throw error;
        return error.offset >= 0 && error.offset <= query.length && error.message.startsWith(`${error.line}:${error.column}: parse error: `);
      }
      return true;
    }),
    { numRuns: 1000 },
  );
});
