/**
 * The Prometheus oracle (test/helpers/prometheus-oracle.ts) against Debian's real `prometheus`:
 * data at 1970-01-01, NaN and ±Inf values, staleness markers, both loaders, the lookback option,
 * errors, and a small test file whose expected lines Prometheus must agree with. Values are
 * derived by hand in the comments. Skipped, saying so, when `prometheus` is not installed.
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { STALE_NAN } from '../core/model.js';
import { checkEvalResult, readTestfile, valuesAgree, type PromqlResult, type SeriesData } from './helpers/promql-testfile.js';
import { oracleUnavailableReason, runTestfileAgainstOracle, startPrometheusOracle, type OracleOptions, type PrometheusOracle } from './helpers/prometheus-oracle.js';

const MIN = 60_000;
const skip = oracleUnavailableReason() ?? false;
const skipOpenMetrics = oracleUnavailableReason('openmetrics') ?? false;

const samples = (...points: [number, number][]) => points.map(([t, v]) => ({ t, v }));
const SERIES: SeriesData[] = [
  { labels: { __name__: 'x', a: '1' }, samples: samples([0, 1], [MIN, 3]) },
  { labels: { __name__: 'x', a: '2' }, samples: samples([0, 10]) },
  { labels: { __name__: 'weird', k: 'nan' }, samples: samples([0, NaN]) },
  { labels: { __name__: 'weird', k: 'inf' }, samples: samples([0, Infinity]) },
  { labels: { __name__: 'weird', k: 'minus-inf' }, samples: samples([0, -Infinity]) },
  // A counter rising by 60 a minute, i.e. 1 per second, from 0 at t=0 to 600 at 10m.
  { labels: { __name__: 'c', job: 'j' }, samples: Array.from({ length: 11 }, (_, i) => ({ t: i * MIN, v: i * 60 })) },
];
const STALE_SERIES: SeriesData = { labels: { __name__: 's' }, samples: [{ t: 0, v: 1 }, { t: MIN, v: STALE_NAN }, { t: 2 * MIN, v: 3 }] };

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const start = (t: Test, series: SeriesData[], options: OracleOptions = {}): Promise<PrometheusOracle> => startPrometheusOracle(series, { ...options, test: t });

const vectorValues = (result: PromqlResult): Record<string, number> => {
  if (result.status !== 'success' || result.resultType !== 'vector') throw new Error(`expected a vector, got ${JSON.stringify(result)}`);
  return Object.fromEntries(result.result.map((s) => [JSON.stringify(s.labels), s.v]));
};

/** The same checks for both loaders: what they load must answer the same. */
async function checkQueries(t: Test, oracle: PrometheusOracle): Promise<void> {
  // x{a="1"} is 1 and x{a="2"} 10 at t=0 (1970-01-01T00:00:00Z); at 1m x{a="1"} is 3.
  t.same(await oracle.query('sum(x)', 0), { status: 'success', resultType: 'vector', result: [{ labels: {}, t: 0, v: 11 }] });
  t.same(vectorValues(await oracle.query('sum(x)', MIN)), { '{}': 13 });
  t.same(vectorValues(await oracle.query('weird', 30_000)), {
    '{"__name__":"weird","k":"nan"}': NaN,
    '{"__name__":"weird","k":"inf"}': Infinity,
    '{"__name__":"weird","k":"minus-inf"}': -Infinity,
  }, 'NaN and ±Inf come back as numbers');
  t.same(await oracle.query('scalar(x{a="2"}) / 4', 1_500), { status: 'success', resultType: 'scalar', result: { t: 1_500, v: 2.5 } }, 'a scalar, at a millisecond time');
  t.same(await oracle.query('x{a="1"} @ 0', 4 * MIN), { status: 'success', resultType: 'vector', result: [{ labels: { __name__: 'x', a: '1' }, t: 4 * MIN, v: 1 }] }, '@ needs no feature flag');
  t.same(vectorValues(await oracle.query('x{a="1"} offset -1m', 0)), { '{"__name__":"x","a":"1"}': 3 }, 'a negative offset needs no feature flag');
  // Before the 5m window is full the counter, starting at 0, is not extrapolated below zero:
  // rate = value / 300 s. From 5m on the window holds 5 minutes of a 1/s rise: rate = 1.
  const range = await oracle.queryRange('rate(c[5m])', 2 * MIN, 6 * MIN, MIN);
  t.match(range, { status: 'success', resultType: 'matrix', result: [{ labels: { job: 'j' } }] });
  if (range.status === 'success' && range.resultType === 'matrix') {
    const got = range.result[0]!.samples;
    t.same(got.map((p) => p.t), [2, 3, 4, 5, 6].map((m) => m * MIN));
    t.ok([0.4, 0.6, 0.8, 1, 1].every((v, i) => valuesAgree(v, got[i]!.v)), `rate 0.4 0.6 0.8 1 1: ${got.map((p) => p.v).join(' ')}`);
  }
  t.match(await oracle.query('sum(x', 0), { status: 'error', errorType: 'bad_data', error: /unclosed left parenthesis/ });
  t.match(await oracle.queryRange('x', 10 * MIN, 0, MIN), { status: 'error', errorType: 'bad_data', error: /end timestamp must not be before start/ });
}

t.test('the remote-write loader answers queries over 1970 data, NaN and ±Inf, and stops cleanly', { skip }, async (t) => {
  const began = Date.now();
  const oracle = await start(t, [...SERIES, STALE_SERIES]);
  t.comment(`started and loaded in ${Date.now() - began} ms`);
  await checkQueries(t, oracle);
  // s is 1 at 0, stale at 1m, 3 at 2m: at 90 s it is gone, not 1 (which 5m of lookback would give).
  t.same(vectorValues(await oracle.query('s', 30_000)), { '{"__name__":"s"}': 1 });
  t.same(vectorValues(await oracle.query('s', 90_000)), {}, 'the staleness marker ends the series at once');
  t.same(vectorValues(await oracle.query('s', 150_000)), { '{"__name__":"s"}': 3 });
  t.same(await oracle.query('count_over_time(s[5m])', 3 * MIN), { status: 'success', resultType: 'vector', result: [{ labels: {}, t: 3 * MIN, v: 2 }] }, 'range selectors skip the marker');

  t.ok(processExists(oracle.pid) && existsSync(oracle.dir), 'running, with its directory');
  await oracle.stop();
  t.notOk(processExists(oracle.pid), 'the process is gone after stop');
  t.notOk(existsSync(oracle.dir), 'its directory is removed');
  await oracle.stop();
  t.pass('stop is idempotent');
});

t.test('the openmetrics loader (promtool blocks) answers the same, and refuses staleness markers', { skip: skipOpenMetrics }, async (t) => {
  const oracle = await start(t, SERIES, { loader: 'openmetrics' });
  await checkQueries(t, oracle);
  await t.rejects(start(t, [STALE_SERIES], { loader: 'openmetrics' }), { name: 'OracleStartError', message: /staleness markers, which OpenMetrics text cannot carry/ });
});

t.test('the lookback delta is configurable', { skip }, async (t) => {
  // With 1m of lookback, at 90 s x{a="2"} (last seen at 0) has gone and x{a="1"} (1m) has not.
  const oracle = await start(t, SERIES, { lookbackDeltaMs: MIN });
  t.same(vectorValues(await oracle.query('sum(x)', 90_000)), { '{}': 3 });
});

t.test('refused data and missing binaries fail with named errors, leaving nothing behind', { skip }, async (t) => {
  // A series whose only label is empty has no labels at all, which Prometheus refuses.
  await t.rejects(start(t, [{ labels: { a: '' }, samples: samples([0, 1]) }]), { name: 'OracleStartError', message: /refused the remote write \(500\): empty labelset/ });
  // Prometheus keeps one of two samples at one time without saying so; the helper refuses them.
  const twice: SeriesData[] = [{ labels: { __name__: 'd' }, samples: samples([0, 1]) }, { labels: { __name__: 'd' }, samples: samples([0, 2]) }];
  await t.rejects(start(t, twice), { name: 'OracleStartError', message: /has two samples at 0 ms/ });
  const saved = process.env.PROMETHEUS_BIN;
  process.env.PROMETHEUS_BIN = '/nonexistent/prometheus';
  t.teardown(() => (saved === undefined ? delete process.env.PROMETHEUS_BIN : (process.env.PROMETHEUS_BIN = saved)));
  await t.rejects(start(t, SERIES), { name: 'OracleUnavailableError', message: /prometheus not installed/ });
});

t.test('a test file run through Prometheus agrees with its expected lines', { skip }, async (t) => {
  const commands = readTestfile(fileURLToPath(new URL('../../test/fixtures/promql/basic.test.txt', import.meta.url)));
  const began = Date.now();
  const answers = await runTestfileAgainstOracle(commands);
  t.comment(`${answers.length} evals, two Prometheus starts, in ${Date.now() - began} ms`);
  t.equal(answers.length, commands.filter((c) => c.kind === 'eval').length, 'one answer per eval');
  for (const { command, actual } of answers) t.same(checkEvalResult(command, actual), [], `line ${command.line}: ${command.expr}`);
  // The checker does see a disagreement with Prometheus's real answer.
  const [first] = answers;
  const wrong = { ...first!.command, expected: [{ ...first!.command.expected[0]!, values: [301] }, first!.command.expected[1]!] };
  t.match(checkEvalResult(wrong, first!.actual), [/is 300 at step 0, expected 301/]);
});
