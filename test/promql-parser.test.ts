/**
 * The PromQL parser by example: trees for the forms Prometheus's parse_test.go covers, its error
 * messages with positions, the printer's canonical text, and the committed generated parser
 * against a fresh generation from the grammar.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { typeOf, type Expr } from '../core/promql/ast.js';
import { FUNCTIONS } from '../core/promql/functions.js';
import { EXPRESSION_DEPTH_MAX, parseDurationMs, parsePromQL, PromQLParseError, toCraftError } from '../core/promql/parser.js';
import { printExpr } from '../core/promql/printer.js';
import { GRAMMARS, generateParserSource, generateWithCli, repositoryRoot } from '../scripts/gen-grammars.js';

/** The tree without positions, NaN spelled out so that deep equality sees it. */
function shape(expr: unknown): unknown {
  return JSON.parse(JSON.stringify(expr, (key, value: unknown) => (key === 'pos' ? undefined : Number.isNaN(value) ? 'NaN' : value)));
}
const parse = (text: string): unknown => shape(parsePromQL(text));
const sel = (name: string, extra: object = {}) => ({ type: 'VectorSelector', name, matchers: [{ name: '__name__', op: '=', value: name }], offsetMs: 0, ...extra });
const num = (value: number) => ({ type: 'NumberLiteral', value });
const oneToOne = { card: 'one-to-one', on: false, labels: [], include: [] };

t.test('the committed parser is what peggy generates from the grammar', async (t) => {
  const root = repositoryRoot();
  for (const spec of GRAMMARS) {
    const committed = readFileSync(join(root, spec.output), 'utf8');
    t.ok(committed === generateParserSource(spec, root), `${spec.output} matches ${spec.grammar}; regenerate with: npx tsx scripts/gen-grammars.ts`);
    const cli = generateWithCli(spec, root);
    t.ok(cli.js === committed, 'the CLI and the API generate the same parser');
    t.ok(cli.dts === readFileSync(join(root, spec.output.replace(/\.js$/, '.d.ts')), 'utf8'), 'the committed .d.ts is current');
  }
});

t.test('precedence and associativity follow Prometheus', async (t) => {
  t.same(parse('-2^2'), { type: 'UnaryExpr', op: '-', expr: { type: 'BinaryExpr', op: '^', lhs: num(2), rhs: num(2), returnBool: false } });
  t.same(parse('-1 * 2'), { type: 'BinaryExpr', op: '*', lhs: { type: 'UnaryExpr', op: '-', expr: num(1) }, rhs: num(2), returnBool: false });
  t.same(parse('2 ^ 3 ^ 2'), { type: 'BinaryExpr', op: '^', lhs: num(2), rhs: { type: 'BinaryExpr', op: '^', lhs: num(3), rhs: num(2), returnBool: false }, returnBool: false });
  t.same(parse('2 ^ -1'), { type: 'BinaryExpr', op: '^', lhs: num(2), rhs: { type: 'UnaryExpr', op: '-', expr: num(1) }, returnBool: false });
  t.same(parse('1 - 2 - 3'), { type: 'BinaryExpr', op: '-', lhs: { type: 'BinaryExpr', op: '-', lhs: num(1), rhs: num(2), returnBool: false }, rhs: num(3), returnBool: false });
  const tree = parsePromQL('a + b or c and d unless e == bool f * g atan2 h');
  t.equal(printExpr(tree), 'a + b or c and d unless e == bool f * g atan2 h');
  t.equal(tree.type === 'BinaryExpr' && tree.op, 'or', 'or binds loosest');
  t.same(parse('foo + bar or bla and blub'), {
    type: 'BinaryExpr', op: 'or', returnBool: false, matching: { ...oneToOne, card: 'many-to-many' },
    lhs: { type: 'BinaryExpr', op: '+', lhs: sel('foo'), rhs: sel('bar'), returnBool: false, matching: oneToOne },
    rhs: { type: 'BinaryExpr', op: 'and', lhs: sel('bla'), rhs: sel('blub'), returnBool: false, matching: { ...oneToOne, card: 'many-to-many' } },
  });
  t.same(parse('-foo offset 5m'), { type: 'UnaryExpr', op: '-', expr: sel('foo', { offsetMs: 300_000 }) }, 'modifiers bind tighter than unary minus');
});

t.test('vector matching, bool and group modifiers', async (t) => {
  t.same(parse('foo * on(test,blub) group_left bar'), {
    type: 'BinaryExpr', op: '*', lhs: sel('foo'), rhs: sel('bar'), returnBool: false,
    matching: { card: 'many-to-one', on: true, labels: ['test', 'blub'], include: [] },
  });
  t.same(parse('a / ignoring(x,) group_right(y, "z.w") b'), {
    type: 'BinaryExpr', op: '/', lhs: sel('a'), rhs: sel('b'), returnBool: false,
    matching: { card: 'one-to-many', on: false, labels: ['x'], include: ['y', 'z.w'] },
  });
  t.same(parse('foo and on() bar'), { type: 'BinaryExpr', op: 'and', lhs: sel('foo'), rhs: sel('bar'), returnBool: false, matching: { card: 'many-to-many', on: true, labels: [], include: [] } });
  t.same(parse('foo == bool 1'), { type: 'BinaryExpr', op: '==', lhs: sel('foo'), rhs: num(1), returnBool: true }, 'no matching unless both sides are vectors');
  t.same(parse('foo AND ON(a) bar'), parse('foo and on(a) bar'), 'keywords are case-insensitive');
});

t.test('selectors, ranges, subqueries and modifiers', async (t) => {
  t.same(parse('foo{a="b", c!~"d",}'), { ...sel('foo'), matchers: [{ name: '__name__', op: '=', value: 'foo' }, { name: 'a', op: '=', value: 'b' }, { name: 'c', op: '!~', value: 'd' }] });
  t.same(parse('{"my.metric", "a.b"="c"}'), { type: 'VectorSelector', matchers: [{ name: '__name__', op: '=', value: 'my.metric' }, { name: 'a.b', op: '=', value: 'c' }], offsetMs: 0 });
  t.same(parse('{__name__=~"a.*"}'), { type: 'VectorSelector', matchers: [{ name: '__name__', op: '=~', value: 'a.*' }], offsetMs: 0 });
  t.same(parse('x{on="1", by="2", offset="3", inf="4"}'), { ...sel('x'), matchers: [{ name: '__name__', op: '=', value: 'x' }, { name: 'on', op: '=', value: '1' }, { name: 'by', op: '=', value: '2' }, { name: 'offset', op: '=', value: '3' }, { name: 'inf', op: '=', value: '4' }] });
  t.same(parse('foo[5m] offset 1m @ 100'), { type: 'MatrixSelector', selector: sel('foo', { offsetMs: 60_000, at: { kind: 'timestamp', ms: 100_000 } }), rangeMs: 300_000 });
  t.same(parse('foo @ end() offset -1h30m'), sel('foo', { offsetMs: -5_400_000, at: { kind: 'end' } }));
  t.same(parse('foo offset 5 @ -1.5'), sel('foo', { offsetMs: 5000, at: { kind: 'timestamp', ms: -1500 } }), 'Prometheus 3: plain numbers are seconds');
  t.same(parse('rate(foo[5m])[1h:] @ start()'), {
    type: 'SubqueryExpr', rangeMs: 3_600_000, stepMs: 0, offsetMs: 0, at: { kind: 'start' },
    expr: { type: 'Call', func: 'rate', args: [{ type: 'MatrixSelector', selector: sel('foo'), rangeMs: 300_000 }] },
  });
  t.same(parse('foo offset 1m [ 10m : 30s ] offset 2m'), { type: 'SubqueryExpr', expr: sel('foo', { offsetMs: 60_000 }), rangeMs: 600_000, stepMs: 30_000, offsetMs: 120_000 });
  // Prometheus's lexer makes these words tokens, but its grammar accepts them as metric names.
  for (const name of ['sum', 'by', 'offset', 'and', 'start', 'end', 'min', 'without']) t.same(parse(`foo * ${name}`), { type: 'BinaryExpr', op: '*', lhs: sel('foo'), rhs: sel(name), returnBool: false, matching: oneToOne }, name);
  t.same(parse('rate'), sel('rate'), 'a function name alone is a metric');
});

t.test('aggregations, calls and comments', async (t) => {
  const inner = { type: 'Call', func: 'rate', args: [{ type: 'MatrixSelector', selector: sel('x'), rangeMs: 300_000 }] };
  const byJob = { type: 'AggregateExpr', op: 'sum', expr: inner, grouping: ['job'], without: false };
  t.same(parse('sum by (job) (rate(x[5m]))'), byJob);
  t.same(parse('SUM(rate(x[5m])) BY (job,)'), byJob, 'grouping after the arguments, trailing comma');
  t.same(parse('sum without (a) (x)'), { type: 'AggregateExpr', op: 'sum', expr: sel('x'), grouping: ['a'], without: true });
  t.same(parse('topk(5, x)'), { type: 'AggregateExpr', op: 'topk', param: num(5), expr: sel('x'), grouping: [], without: false });
  t.same(parse('count_values("v", x)'), { type: 'AggregateExpr', op: 'count_values', param: { type: 'StringLiteral', value: 'v' }, expr: sel('x'), grouping: [], without: false });
  t.same(parse('sum by (sum, by, offset, on, "a.b") (x)'), { type: 'AggregateExpr', op: 'sum', expr: sel('x'), grouping: ['sum', 'by', 'offset', 'on', 'a.b'], without: false });
  t.same(parse('time()'), { type: 'Call', func: 'time', args: [] });
  t.same(parse('# leading\nsum( # inside\n x ) # trailing'), { type: 'AggregateExpr', op: 'sum', expr: sel('x'), grouping: [], without: false });
});

t.test('numbers, durations and strings', async (t) => {
  const values = ['1', '.5', '5.', '123.4567', '5e-3', '5E3', '0xc', '0X1F', '0755', '08', '1_000', 'Inf', 'inf', 'NaN', 'nAn', '5m', '1h30m', '1y', '2w', '250ms'];
  const expected = [1, 0.5, 5, 123.4567, 0.005, 5000, 12, 31, 493, 8, 1000, Infinity, Infinity, NaN, NaN, 300, 5400, 31_536_000, 1_209_600, 0.25];
  values.forEach((text, i) => t.same(parse(text), shape(num(expected[i]!)), text));
  t.same(parse(`"a\\n\\t\\"\\\\\\a\\b\\f\\r\\v"`), { type: 'StringLiteral', value: 'a\n\t"\\\x07\b\f\r\v' });
  t.same(parse(`'it\\'s' + "\\x41\\u00e9\\U0001F600\\101"`.split(' + ')[0]!), { type: 'StringLiteral', value: "it's" });
  t.same(parse('"\\x41\\u00e9\\U0001F600\\101"'), { type: 'StringLiteral', value: 'Aé😀A' });
  t.same(parse('`raw \\n "string"`'), { type: 'StringLiteral', value: 'raw \\n "string"' });
  t.equal(parseDurationMs('1h30m'), 5_400_000);
  t.equal(parseDurationMs('1d2h3m4s5ms'), 93_784_005);
  t.equal(parseDurationMs('0'), 0);
  t.throws(() => parseDurationMs('1m1h'), { name: 'PromQLParseError', message: '1:1: parse error: not a valid duration string: "1m1h"' });
  t.throws(() => parseDurationMs('1h1h'), { name: 'PromQLParseError' });
  t.throws(() => parseDurationMs('5'), { name: 'PromQLParseError' });
});

t.test('positions are character offsets', async (t) => {
  const tree = parsePromQL(' sum by (a) (rate(x{b="c"}[5m] offset 1m)) + -1');
  t.same(tree.pos, { start: 1, end: 47 });
  if (tree.type !== 'BinaryExpr' || tree.lhs.type !== 'AggregateExpr' || tree.lhs.expr.type !== 'Call') throw new Error('unexpected tree');
  t.same(tree.lhs.pos, { start: 1, end: 42 });
  t.same(tree.lhs.expr.pos, { start: 13, end: 41 });
  const matrix = tree.lhs.expr.args[0]!;
  t.same(matrix.pos, { start: 18, end: 40 });
  t.same(matrix.type === 'MatrixSelector' && matrix.selector.pos, { start: 18, end: 26 });
  t.same(tree.rhs.pos, { start: 45, end: 47 });
});

t.test('errors read like Prometheus and carry a position', async (t) => {
  const cases: Array<[query: string, message: string]> = [
    ['', '1:1: parse error: no expression found in input'],
    ['# just a comment\n\n', '1:1: parse error: no expression found in input'],
    ['1+', '1:3: parse error: unexpected end of input, expected expression'],
    ['sum(foo) by', '1:12: parse error: unexpected end of input, expected "("'],
    ['foo{a="b"', '1:10: parse error: unexpected end of input, expected "," or "}"'],
    ['foo bar', '1:5: parse error: unexpected identifier "bar"'],
    ['*1', '1:1: parse error: unexpected <op:*>, expected expression'],
    ['1 and 1', '1:1: parse error: set operator "and" not allowed in binary scalar expression'],
    ['1 == 1', '1:3: parse error: comparisons between scalars must use BOOL modifier'],
    ['foo + bool bar', '1:5: parse error: bool modifier can only be used on comparison operators'],
    ['foo(x)', '1:1: parse error: unknown function with name "foo"'],
    ['rate(x)', '1:6: parse error: expected type range vector in call to function "rate", got instant vector'],
    ['rate(x[5m], 1)', '1:1: parse error: expected 1 argument(s) in call to "rate", got 2'],
    ['round(x, 1, 2)', '1:1: parse error: expected at most 2 argument(s) in call to "round", got 3'],
    ['label_join(x, "a")', '1:1: parse error: expected at least 3 argument(s) in call to "label_join", got 2'],
    ['rate(x[5m],)', '1:11: parse error: trailing commas not allowed in function call args'],
    ['{}', '1:1: parse error: vector selector must contain at least one non-empty matcher'],
    ['{a=~".*", b=""}', '1:1: parse error: vector selector must contain at least one non-empty matcher'],
    ['foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'],
    ['foo offset 1s offset 2s', '1:1: parse error: offset may not be set multiple times'],
    ['foo @ 1 @ 2', '1:1: parse error: @ <timestamp> may not be set multiple times'],
    ['foo offset 1m [5m]', '1:15: parse error: no offset modifiers allowed before range'],
    ['foo @ 1 [5m]', '1:9: parse error: no @ modifiers allowed before range'],
    ['(foo)[5m]', '1:6: parse error: ranges only allowed for vector selectors'],
    ['1 offset 1d', '1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery'],
    ['sum(x) @ 1', '1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery'],
    ['foo[5m] + 1', '1:1: parse error: binary expression must contain only scalar and instant vector types'],
    ['"a" * 2', '1:1: parse error: binary expression must contain only scalar and instant vector types'],
    ['-"string"', '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "string"'],
    ['foo[5m][1h:]', '1:1: parse error: subquery is only allowed on instant vector, got matrix instead'],
    ['1 + on(a) foo', '1:1: parse error: vector matching only allowed between instant vectors'],
    ['1 * on() group_left foo', '1:1: parse error: vector matching only allowed between instant vectors'],
    ['foo and on(a) group_left bar', '1:1: parse error: no grouping allowed for "and" operation'],
    ['foo * on(a) group_left(a) bar', '1:5: parse error: label "a" must not occur in ON and GROUP clause at once'],
    ['foo * on(a:b) bar', '1:10: parse error: invalid label name for grouping: "a:b"'],
    ['sum by ("") (foo)', '1:9: parse error: invalid label name for grouping: ""'],
    ['topk(foo, bar)', '1:6: parse error: expected type scalar in aggregation parameter, got instant vector'],
    ['quantile("a", bar)', '1:10: parse error: expected type scalar in aggregation parameter, got string'],
    ['count_values(1, bar)', '1:14: parse error: expected type string in aggregation parameter, got scalar'],
    ['sum(foo[5m])', '1:5: parse error: expected type instant vector in aggregation expression, got range vector'],
    ['sum()', '1:1: parse error: no arguments for aggregate expression provided'],
    ['topk(1)', '1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1'],
    ['foo @ Inf', '1:7: parse error: timestamp out of bounds for @ modifier: +Inf'],
    ['foo @ 1e20', '1:7: parse error: timestamp out of bounds for @ modifier: 100000000000000000000.000000'],
    ['2.5.', '1:1: parse error: bad number or duration syntax: "2.5."'],
    ['foo[1m5]', '1:5: parse error: bad number or duration syntax: "1m5"'],
    ['foo[5s1m]', '1:5: parse error: not a valid duration string: "5s1m"'],
    ['"abc', '1:1: parse error: unterminated quoted string'],
    ['`abc', '1:1: parse error: unterminated raw string'],
    ['"\\q"', '1:2: parse error: unknown escape sequence U+0071 \'q\''],
    ['"\\uD800"', '1:2: parse error: escape sequence is an invalid Unicode code point'],
    ['{a=~"("}', '1:1: parse error: error parsing regexp: Invalid regular expression: /^(?:()$/: Unterminated group'],
    ['foo{a=="b"}', '1:7: parse error: unexpected "=", expected string'],
    ['foo and', '1:8: parse error: unexpected end of input, expected expression'],
    ['on', '1:1: parse error: unexpected <on>, expected expression'],
    ['sum\n  by', '2:5: parse error: unexpected end of input, expected "("'],
  ];
  for (const [query, message] of cases) {
    t.throws(() => parsePromQL(query), { name: 'PromQLParseError', message }, JSON.stringify(query));
  }
  const error = (() => {
    try {
      parsePromQL('sum(x)\n  + foo(y)');
    } catch (caught) {
      return caught;
    }
    throw new Error('no error');
  })();
  t.ok(error instanceof PromQLParseError);
  t.match(error, { offset: 11, line: 2, column: 5, detail: 'unknown function with name "foo"' });
  t.match(toCraftError(error as PromQLParseError).toJSON(), { code: 'CRAFT_QUERY_PARSE', message: '2:5: parse error: unknown function with name "foo"', details: { offset: 11, line: 2, column: 5 } });
});

t.test('regression: deep nesting is a parse error, not a stack overflow', async (t) => {
  const sum = (terms: number) => Array.from({ length: terms }, (_, i) => `m${i}`).join(' + ');
  t.equal(typeOf(parsePromQL(sum(EXPRESSION_DEPTH_MAX))), 'vector', 'a sum as deep as the limit parses');
  const tooDeep = { name: 'PromQLParseError', message: '1:1: parse error: expression nests too deeply' };
  t.throws(() => parsePromQL(sum(3 * EXPRESSION_DEPTH_MAX)), tooDeep, 'the checks would recurse past the stack');
  t.throws(() => parsePromQL(`${'('.repeat(5000)}x${')'.repeat(5000)}`), tooDeep, 'the generated parser would recurse past the stack');
});

t.test('the printer writes canonical text', async (t) => {
  const cases: Array<[query: string, printed: string]> = [
    ['sum by(job)(rate(x{a="b"}[5m] offset 1m))', 'sum by (job) (rate(x{a="b"}[5m] offset 1m))'],
    ['sum(x) without(a,b)', 'sum without (a, b) (x)'],
    ['sum by () (x)', 'sum(x)'],
    ['sum without () (x)', 'sum without () (x)'],
    ['topk(5,x)by(a)', 'topk by (a) (5, x)'],
    ['a*on(b)group_left c', 'a * on (b) group_left () c'],
    ['a > BOOL ignoring(b) group_right(c,d) e', 'a > bool ignoring (b) group_right (c, d) e'],
    ['a and on() b', 'a and on () b'],
    ['foo[90m:1h30m] @ 1.5 offset -1w', 'foo[1h30m:1h30m] @ 1.500 offset -1w'],
    ['foo[1.5]', 'foo[1s500ms]'],
    ['foo offset 365d', 'foo offset 1y'],
    ['foo offset 400d', 'foo offset 400d'],
    ['x @ end() offset 5m', 'x @ end() offset 5m'],
    ['{"my.metric", a!~"x\\ny"}', '{__name__="my.metric", a!~"x\\ny"}'],
    ['foo{"a.b"=\'c\', on=`d"e`}', 'foo{"a.b"="c", on="d\\"e"}'],
    ['sum by ("a.b", on) (x)', 'sum by ("a.b", on) (x)'],
    ['1e300 + Inf + NaN + 0x10 + 5m', '1e+300 + Inf + NaN + 16 + 300'],
    ['-2^2', '-2 ^ 2'],
    ['(-2)^2', '(-2) ^ 2'],
    ['2 ^ -1 ^ 2', '2 ^ -1 ^ 2'],
    ['(a + b) * (c - d) / -(e)', '(a + b) * (c - d) / -(e)'],
    ['rate(x[5m])[1h:]', 'rate(x[5m])[1h:]'],
    ['(-x)[1h:1m]', '(-x)[1h:1m]'],
    ['label_join(x, "d", ",", "a", "b")', 'label_join(x, "d", ",", "a", "b")'],
    ['"\\x01\\u0085é\\t"', '"\\x01\\u0085é\\t"'],
  ];
  for (const [query, printed] of cases) {
    t.equal(printExpr(parsePromQL(query)), printed, query);
    t.equal(printExpr(parsePromQL(printed)), printed, `${query}: printing is idempotent`);
  }
});

t.test('the printer adds parentheses a hand-built tree needs', async (t) => {
  const a = parsePromQL('a');
  const b = parsePromQL('b');
  const pos = { start: 0, end: 0 };
  const sum: Expr = { type: 'BinaryExpr', op: '+', lhs: a, rhs: b, returnBool: false, matching: { card: 'one-to-one', on: false, labels: [], include: [] }, pos };
  t.equal(printExpr({ type: 'BinaryExpr', op: '*', lhs: sum, rhs: sum, returnBool: false, pos }), '(a + b) * (a + b)');
  t.equal(printExpr({ type: 'BinaryExpr', op: '-', lhs: a, rhs: sum, returnBool: false, pos }), 'a - (a + b)');
  t.equal(printExpr({ type: 'UnaryExpr', op: '-', expr: sum, pos }), '-(a + b)');
  t.equal(printExpr({ type: 'SubqueryExpr', expr: sum, rangeMs: 60_000, stepMs: 0, offsetMs: 0, pos }), '(a + b)[1m:]');
  const unary: Expr = { type: 'UnaryExpr', op: '-', expr: a, pos };
  t.equal(printExpr({ type: 'BinaryExpr', op: '^', lhs: unary, rhs: unary, returnBool: false, pos }), '(-a) ^ -a');
});

t.test('types and the function table', async (t) => {
  t.equal(typeOf(parsePromQL('1 + 1')), 'scalar');
  t.equal(typeOf(parsePromQL('foo + 1')), 'vector');
  t.equal(typeOf(parsePromQL('foo[5m]')), 'matrix');
  t.equal(typeOf(parsePromQL('(foo[5m:])')), 'matrix');
  t.equal(typeOf(parsePromQL('-scalar(foo)')), 'scalar');
  t.equal(typeOf(parsePromQL('"s"')), 'string');
  const listed = `abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max clamp_min cos cosh
    count_over_time days_in_month day_of_month day_of_week day_of_year deg delta deriv exp floor histogram_quantile holt_winters
    double_exponential_smoothing hour idelta increase irate label_join label_replace last_over_time ln log10 log2 mad_over_time
    max_over_time min_over_time minute month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn
    sin sinh sort sort_desc sort_by_label sort_by_label_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time
    timestamp vector year`.split(/\s+/);
  t.same(Object.keys(FUNCTIONS).sort(), [...listed].sort());
  t.equal(printExpr(parsePromQL('day_of_week()')), 'day_of_week()', 'date functions take an optional vector');
  t.throws(() => parsePromQL('constructor(x)'), { message: '1:1: parse error: unknown function with name "constructor"' });
});
