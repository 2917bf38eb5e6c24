/**
 * The PromQL test-file parser (test/helpers/promql-testfile.ts): commands, series notation,
 * durations, label syntax, line-numbered errors, and the checker that compares a result with
 * an eval's expected lines. The property test expands generated notations and compares them
 * with a direct model of the documented rules.
 */
import t from 'tap';
import fc from 'fast-check';
import { isStaleNaN, STALE_NAN } from '../core/model.js';
import {
  checkEvalResult, expandSeriesValues, parseDurationMs, parseSeriesDescription, parseTestfile, valuesAgree,
  type EvalCommand, type InstantEval, type Sample, type LoadCommand, type PromqlResult, type RangeEval,
} from './helpers/promql-testfile.js';

const MIN = 60_000;

t.test('the example file: load, clear, instant, range and failing evals', async (t) => {
  const commands = parseTestfile(`# comment
load 5m
  http_requests{job="api", instance="0"}  0+10x10
  http_requests{job="api", instance="1"}  0+20x10 _ stale 5 1e3 -2-3x2 NaN Inf
clear
eval instant at 50m sum by (job) (http_requests)
  {job="api"} 150
eval range from 0 to 10m step 5m rate(http_requests[5m])
  {job="api", instance="0"} _ 0.0333 0.0333

eval_fail instant at 0 foo(
`);
  t.same(commands.map((c) => c.kind), ['load', 'clear', 'eval', 'eval', 'eval']);
  const load = commands[0] as LoadCommand;
  t.equal(load.intervalMs, 5 * MIN);
  t.same(load.series[0]!.labels, { __name__: 'http_requests', job: 'api', instance: '0' });
  t.same(load.series[0]!.samples.slice(0, 3), [{ t: 0, v: 0 }, { t: 5 * MIN, v: 10 }, { t: 10 * MIN, v: 20 }]);
  t.equal(load.series[0]!.samples.length, 11, '0+10x10 is eleven points');
  const second = load.series[1]!.samples;
  // Slots: 0..10 the sequence, 11 missing, 12 stale, 13 5, 14 1e3, 15..17 -2 -5 -8, 18 NaN, 19 Inf.
  t.same(second.map((s) => s.t / (5 * MIN)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19]);
  t.equal(second[10]!.v, 200);
  t.ok(isStaleNaN(second[11]!.v), 'stale is a staleness marker');
  t.same(second.slice(12, 17).map((s) => s.v), [5, 1000, -2, -5, -8]);
  t.ok(Number.isNaN(second[17]!.v) && !isStaleNaN(second[17]!.v), 'NaN is an ordinary NaN');
  t.equal(second[18]!.v, Infinity);
  t.equal(commands[1]!.line, 5);

  const instant = commands[2] as InstantEval;
  t.match(instant, { mode: 'instant', atMs: 50 * MIN, expr: 'sum by (job) (http_requests)', line: 6 });
  t.same(instant.expected, [{ line: 7, labels: { job: 'api' }, values: [150] }]);
  const range = commands[3] as RangeEval;
  t.match(range, { mode: 'range', startMs: 0, endMs: 10 * MIN, stepMs: 5 * MIN, expr: 'rate(http_requests[5m])' });
  t.same(range.expected[0]!.values, [null, 0.0333, 0.0333]);
  t.match(commands[4], { mode: 'instant', atMs: 0, expr: 'foo(', fail: true, expected: [] });
});

t.test('eval_ordered, expect lines, bare scalars and metric names in expected lines', async (t) => {
  const [ordered, failing, scalar, named] = parseTestfile(`
eval_ordered instant at 1m topk(2, x)
  x{a="1"} 3
  x{a="2"} 2

eval instant at 0 foo(
  expect fail msg: "unclosed left parenthesis"

eval instant at 0 1 + 1
  2

eval instant at 1h30m x
  expect ordered
  x 1
`) as EvalCommand[];
  t.match(ordered, { ordered: true, expected: [{ labels: { __name__: 'x', a: '1' }, values: [3] }, { labels: { __name__: 'x', a: '2' } }] });
  t.match(failing, { fail: true, failMessage: 'unclosed left parenthesis' });
  t.same(scalar!.expected, [{ line: 10, labels: null, values: [2] }]);
  t.match(named, { atMs: 90 * MIN, ordered: true, expected: [{ labels: { __name__: 'x' }, values: [1] }] });
});

t.test('durations', async (t) => {
  t.equal(parseDurationMs('0'), 0);
  t.equal(parseDurationMs('5m'), 5 * MIN);
  t.equal(parseDurationMs('1h30m'), 90 * MIN);
  t.equal(parseDurationMs('250ms'), 250);
  t.equal(parseDurationMs('1d2h'), 26 * 60 * MIN);
  t.equal(parseDurationMs('1y'), 365 * 24 * 60 * MIN);
  for (const bad of ['', '5', 'm', '1m1h', '1.5m', '-1m', '5M']) t.throws(() => parseDurationMs(bad), { message: /bad duration/ }, bad);
});

t.test('series notation, by the documented examples', async (t) => {
  t.same(expandSeriesValues('-2+4x3'), [-2, 2, 6, 10]);
  t.same(expandSeriesValues('1-2x4'), [1, -1, -3, -5, -7]);
  t.same(expandSeriesValues('1x4'), [1, 1, 1, 1, 1], 'axn is n+1 copies');
  t.same(expandSeriesValues('1 _x3 _'), [1, null, null, null, null], '_xn is n gaps');
  t.same(expandSeriesValues('0.1+0.1x2'), [0.1, 0.2, 0.30000000000000004], 'increments accumulate, as in Prometheus');
  t.same(expandSeriesValues('1e3 .5 5. +3 -Inf inf 2e-3+1e+1x1'), [1000, 0.5, 5, 3, -Infinity, Infinity, 0.002, 10.002]);
  t.ok(isStaleNaN(expandSeriesValues('stale')[0]!));
  t.same(expandSeriesValues('0x2'), [0, 0, 0], 'no hex numbers: 0x2 is 0 repeated, as in Prometheus');
  for (const bad of ['1+', 'x3', '1+2x', 'abc', 'stale+1x2', '1+2x-1']) t.throws(() => expandSeriesValues(bad), { message: /bad series value/ }, bad);
  t.throws(() => expandSeriesValues('1x1000000'), { message: /more than 1000000 points/ });
});

t.test('series descriptions: names, quoting and escapes', async (t) => {
  t.same(parseSeriesDescription('m 1').labels, { __name__: 'm' });
  t.same(parseSeriesDescription('ns:m_1{a="x"} 1').labels, { __name__: 'ns:m_1', a: 'x' });
  t.same(parseSeriesDescription('{__name__="m", b=\'y\',} 1').labels, { __name__: 'm', b: 'y' });
  t.same(parseSeriesDescription('m{a="x, }{ y", b="q\\"\\\\\\n\\x41\\u00e9", c=`raw\\n`} 1').labels, { __name__: 'm', a: 'x, }{ y', b: 'q"\\\nAé', c: 'raw\\n' });
  t.equal(parseSeriesDescription('m{} 1 2').rest, ' 1 2');
  t.throws(() => parseSeriesDescription('m{a="x"'), { message: /expected a label name|unterminated|expected ","/ });
  t.throws(() => parseSeriesDescription('m{a="x" b="y"} 1'), { message: /expected "," or "}"/ });
  t.throws(() => parseSeriesDescription('m{a="x", a="y"} 1'), { message: /label a given twice/ });
  t.throws(() => parseSeriesDescription('m{a="\\q"} 1'), { message: /unknown escape/ });
  t.throws(() => parseSeriesDescription('m{a=x} 1'), { message: /quoted label value/ });
  t.throws(() => parseSeriesDescription('m{a="x"}1'), { message: /expected a space/ });
});

t.test('errors name the file and line', async (t) => {
  const cases: [string, number, RegExp][] = [
    ['load 5m\n  m 1 2\n  m 1 two\n', 3, /bad series value "two"/],
    ['\n\nload five\n', 3, /bad duration "five"/],
    ['load 0\n', 1, /interval must be positive/],
    ['# c\n  m 1\n', 2, /expected load, clear or eval/],
    ['clear now\n', 1, /clear takes no arguments/],
    ['eval instant 5m x\n', 1, /expected "eval/],
    ['eval_ordered range from 0 to 1m step 1m x\n', 1, /instant queries only/],
    ['eval_warn instant at 0 x\n', 1, /not supported/],
    ['eval range from 0 to 2m step 1m x\n  x 1 2\n', 2, /expected 3 values for this range eval, got 2/],
    ['eval range from 2m to 0 step 1m x\n', 1, /end at or after its start/],
    ['eval range from 0 to 1m step 0 x\n', 1, /step of a range eval must be positive/],
    ['eval range from 0 to 1d step 1s x\n', 1, /at most 11000 steps/],
    ['eval instant at 0 x\n  x 1 2\n', 2, /expected 1 value for this instant eval/],
    ['eval instant at 0 x\n  x _\n', 2, /cannot expect a missing value/],
    ['eval_fail instant at 0 x\n  x 1\n', 2, /takes no expected result lines/],
    ['eval instant at 0 x\n  expect warn\n', 2, /unsupported expect line/],
    ['load 1m\n  # c\n  m{a="1"} {{schema:1}}\n', 3, /native histograms/],
    ['load 1m\n  m{a="1} 1\n', 2, /unterminated label value/],
  ];
  for (const [text, line, message] of cases) {
    t.throws(() => parseTestfile(text, 'f.test'), { name: 'TestfileSyntaxError', file: 'f.test', line, message: new RegExp(`^f\\.test:${line}: .*${message.source}`) }, JSON.stringify(text));
  }
});

t.test('a block ends at a blank line or the next command; comments are skipped anywhere', async (t) => {
  const commands = parseTestfile('load 1m\n  a 1\n  # note\n  b 2\neval instant at 0 a\n  a 1\nload 1m\n  c 3\n\neval instant at 0 c\n');
  t.same(commands.map((c) => c.kind), ['load', 'eval', 'load', 'eval']);
  t.same((commands[0] as LoadCommand).series.map((s) => s.labels.__name__), ['a', 'b']);
  t.same((commands[3] as EvalCommand).expected, []);
});

t.test('checkEvalResult compares results with expected lines', async (t) => {
  const [instant, ordered, range, scalar, fail] = parseTestfile(`
eval instant at 0 x
  x{a="1"} 1
  x{a="2"} NaN

eval_ordered instant at 0 x
  x{a="1"} 1
  x{a="2"} 2

eval range from 0 to 2m step 1m x
  x{a="1"} 1 _ 3

eval range from 0 to 1m step 1m 1
  1 1

eval_fail instant at 0 foo(
`) as EvalCommand[];
  const vector = (...points: [string, number][]): PromqlResult => ({ status: 'success', resultType: 'vector', result: points.map(([a, v]) => ({ labels: { __name__: 'x', a }, t: 0, v })) });
  t.same(checkEvalResult(instant!, vector(['2', NaN], ['1', 1 + 1e-9])), [], 'NaN equals NaN; order free; relative tolerance');
  t.match(checkEvalResult(instant!, vector(['1', 1.01], ['2', NaN])), [/line 3: \{__name__="x", a="1"\} is 1.01 at step 0, expected 1/]);
  t.match(checkEvalResult(instant!, vector(['1', 1])), [/expected 2 series, got 1/, /line 4: no result/]);
  t.match(checkEvalResult(instant!, vector(['1', 1], ['2', NaN], ['3', 0])), [/expected 2 series, got 3/, /unexpected result/]);
  t.match(checkEvalResult(ordered!, vector(['2', 2], ['1', 1])), [/position 2, expected 1/, /position 1, expected 2/]);
  const matrix = (samples: [number, number][]): PromqlResult => ({ status: 'success', resultType: 'matrix', result: [{ labels: { __name__: 'x', a: '1' }, samples: samples.map(([t, v]) => ({ t, v })) }] });
  t.same(checkEvalResult(range!, matrix([[0, 1], [2 * MIN, 3]])), []);
  t.match(checkEvalResult(range!, matrix([[0, 1], [MIN, 2], [2 * MIN, 3]])), [/has 2 at step 1, expected no point/]);
  t.match(checkEvalResult(range!, matrix([[0, 1]])), [/no point at step 2, expected 3/]);
  t.match(checkEvalResult(range!, matrix([[0, 1], [2 * MIN, 3], [30_000, 9]])), [/off the expected steps \(0.5\)/]);
  t.same(checkEvalResult(scalar!, { status: 'success', resultType: 'matrix', result: [{ labels: {}, samples: [{ t: 0, v: 1 }, { t: MIN, v: 1 }] }] }), [], 'a range scalar is a label-less series');
  t.same(checkEvalResult(fail!, { status: 'error', errorType: 'bad_data', error: 'parse error' }), []);
  t.match(checkEvalResult(fail!, vector()), [/expected the query to fail/]);
  t.match(checkEvalResult(instant!, { status: 'error', errorType: 'bad_data', error: 'boom' }), [/unexpected error \(bad_data\): boom/]);
  t.ok(valuesAgree(Infinity, Infinity) && !valuesAgree(Infinity, -Infinity) && !valuesAgree(0, 1e-300) && !valuesAgree(NaN, 0));
});

// Property: the parser's expansion equals a direct model of the documented rules.
type Item = { kind: 'number'; a: number } | { kind: 'sequence'; a: number; b: number; n: number } | { kind: 'repeat'; a: number; n: number } | { kind: 'gap' } | { kind: 'gaps'; n: number } | { kind: 'stale' };
const show = (v: number): string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Inf' : v === -Infinity ? '-Inf' : Object.is(v, -0) ? '-0' : String(v));
const signed = (v: number): string => (v < 0 || Object.is(v, -0) || show(v).startsWith('-') ? show(v) : `+${show(v)}`);
const render = (item: Item): string => {
  switch (item.kind) {
    case 'number': return show(item.a);
    case 'sequence': return `${show(item.a)}${signed(item.b)}x${item.n}`;
    case 'repeat': return `${show(item.a)}x${item.n}`;
    case 'gap': return '_';
    case 'gaps': return `_x${item.n}`;
    case 'stale': return 'stale';
  }
};
/**
 * The model pushes into one array: V8's Array.prototype.flat/flatMap and Array.from drop a NaN's
 * payload, which would turn a staleness marker into a plain NaN (this property found that).
 */
const expand = (items: Item[]): (number | null)[] => {
  // Generic elements from the start, as in the parser: a fresh double array may drop a NaN's payload.
  const out: (number | null)[] = [null];
  out.length = 0;
  for (const item of items) {
    if (item.kind === 'number') out.push(item.a);
    else if (item.kind === 'sequence') for (let i = 0, v = item.a; i <= item.n; i++, v += item.b) out.push(v);
    // `axn` is `a+0xn`: the value is built by adding 0, so −0 becomes 0 after the first (as in Prometheus).
    else if (item.kind === 'repeat') for (let i = 0, v = item.a; i <= item.n; i++, v += 0) out.push(v);
    else if (item.kind === 'gap') out.push(null);
    else if (item.kind === 'gaps') for (let i = 0; i < item.n; i++) out.push(null);
    else out.push(STALE_NAN);
  }
  return out;
};
const same = (a: number | null, b: number | null): boolean => (a === null || b === null ? a === b : Number.isNaN(a) ? Number.isNaN(b) && isStaleNaN(a) === isStaleNaN(b) : Object.is(a, b));
const count = fc.integer({ min: 0, max: 20 });
const item: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ kind: fc.constant('number' as const), a: fc.double() }),
  fc.record({ kind: fc.constant('sequence' as const), a: fc.double(), b: fc.double(), n: count }),
  fc.record({ kind: fc.constant('repeat' as const), a: fc.double(), n: count }),
  fc.constant({ kind: 'gap' as const }),
  fc.record({ kind: fc.constant('gaps' as const), n: count }),
  fc.constant({ kind: 'stale' as const }),
);

t.test('property: series notation expands as the documented rules say', async (t) => {
  fc.assert(fc.property(fc.array(item, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 3_600_000 }), (items, intervalMs) => {
    const text = items.map(render).join(' ');
    const expected = expand(items);
    const values = expandSeriesValues(text);
    if (values.length !== expected.length || !values.every((v, i) => same(v, expected[i]!))) return false;
    // The same notation in a load block: one sample per non-missing slot, at slot × interval.
    const [load] = parseTestfile(`load ${intervalMs}ms\n  m{a="b"} ${text}\n`) as [LoadCommand];
    const samples = load.series[0]!.samples;
    const slots: Sample[] = [];
    expected.forEach((v, i) => v !== null && slots.push({ t: i * intervalMs, v }));
    return samples.length === slots.length && samples.every((s, i) => s.t === slots[i]!.t && same(s.v, slots[i]!.v));
  }), { numRuns: 300 });
  t.pass('expansions match the model');
});
