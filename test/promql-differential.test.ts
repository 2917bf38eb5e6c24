/**
 * Differential test: our query engine and a real Prometheus 2.42 answer the same queries over
 * the same data, and must agree (values within a relative 1e-6; vectors as sets unless sorted).
 *
 * The data has what trips engines up: counters with resets, gauges that go negative, a series
 * with a gap longer than the lookback, one ended by a staleness marker, NaN and ±Inf values,
 * classic histogram buckets, two metric names with the same other labels, jittered timestamps.
 * The queries are a hand-written list covering every operator, aggregation, modifier and
 * function Prometheus 2.42 has, each as instant queries at several times and as a range query,
 * plus random expressions built from the same pieces (fast-check).
 *
 * Every Craft #4 evaluator (query.interpreter, query.planner, …) answers every query; each must
 * agree with Prometheus, and every later phase must give exactly the answer of phase 1 — the
 * same series, the same points, the same bits.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { PluginRegistry } from '../core/plugins/registry.js';
import { STALE_NAN } from '../core/model.js';
import { ManualClock } from '../core/clock.js';
import type { SeriesData } from './helpers/promql-testfile.js';
import { oracleUnavailableReason, startPrometheusOracle } from './helpers/prometheus-oracle.js';
import { compareAnswers, loadStore, makeEvaluator, runEval } from './helpers/promql-engine.js';
import { random } from '../cli/bench/storage-dataset.js';
import { QUERIES, RANDOM_PIECES } from './fixtures/promql/differential-queries.js';

const missing = oracleUnavailableReason();
if (missing !== undefined) {
  t.comment(`skipped: ${missing}`);
  process.exit(0);
}

const { registry } = await PluginRegistry.load();
const MINUTE = 60_000;
const END_MS = 120 * MINUTE;

/** The data set, deterministic. */
function dataset(): SeriesData[] {
  const next = random(42);
  const out: SeriesData[] = [];
  const jitter = (): number => Math.floor(next() * 7) - 3;
  const series = (labels: Record<string, string>, intervalMs: number, value: (i: number, t: number) => number | undefined, fromMs = 0, toMs = END_MS): void => {
    const samples: { t: number; v: number }[] = [];
    for (let i = 0, t = fromMs; t <= toMs; i++, t += intervalMs) {
      const v = value(i, t);
      if (v !== undefined) samples.push({ t: Math.max(0, t + jitter()), v });
    }
    out.push({ labels, samples });
  };
  for (const job of ['api', 'db']) {
    for (const instance of ['a', 'b', 'c']) {
      let counter = Math.floor(next() * 100);
      series({ __name__: 'requests_total', job, instance }, 15_000, (i) => {
        if (instance === 'b' && i === 200) counter = 0; // a counter reset
        counter += Math.floor(next() * 20);
        return counter;
      });
      let gauge = next() * 10 - 5;
      series({ __name__: 'temperature', job, instance }, 30_000, () => (gauge += next() * 2 - 1));
      series({ __name__: 'errors_total', job, instance, code: instance === 'a' ? '500' : '404' }, 60_000, (i) => i * (instance === 'c' ? 0 : 1));
    }
    // Classic histogram: cumulative buckets.
    let total = 0;
    const bounds = ['0.1', '0.5', '1', '5', '+Inf'];
    const counts = [0, 0, 0, 0, 0];
    for (const le of bounds) series({ __name__: 'latency_seconds_bucket', job, le }, 30_000, () => undefined);
    out.splice(out.length - bounds.length, bounds.length);
    const bucketSamples = bounds.map(() => [] as { t: number; v: number }[]);
    for (let t = 0; t <= END_MS; t += 30_000) {
      for (let k = 0; k < 10; k++) {
        const observation = next() * next() * 6;
        total += 1;
        bounds.forEach((le, b) => {
          if (observation <= Number(le === '+Inf' ? Infinity : le)) counts[b]! += 1;
        });
      }
      bounds.forEach((_, b) => bucketSamples[b]!.push({ t, v: counts[b]! }));
    }
    bounds.forEach((le, b) => out.push({ labels: { __name__: 'latency_seconds_bucket', job, le }, samples: bucketSamples[b]! }));
    out.push({ labels: { __name__: 'latency_seconds_count', job }, samples: bucketSamples[4]!.map((p) => ({ ...p })) });
  }
  // Same labels, other name: operators that drop the name must refuse to merge them.
  series({ __name__: 'disk_used_bytes', device: 'sda' }, 60_000, (i) => 1e9 + i * 1e6);
  series({ __name__: 'disk_free_bytes', device: 'sda' }, 60_000, (i) => 5e9 - i * 1e6);
  // A gap of 20 minutes, longer than the lookback.
  series({ __name__: 'gappy', job: 'api' }, 60_000, (i) => (i >= 30 && i < 50 ? undefined : i));
  // Ended by a staleness marker at 60 minutes.
  series({ __name__: 'ended', job: 'api' }, 60_000, (i, t) => (t < 60 * MINUTE ? i : t === 60 * MINUTE ? STALE_NAN : undefined));
  // Odd values.
  series({ __name__: 'odd', kind: 'nan' }, 60_000, (i) => (i % 3 === 0 ? NaN : i));
  series({ __name__: 'odd', kind: 'inf' }, 60_000, (i) => (i % 4 === 0 ? Infinity : i % 4 === 1 ? -Infinity : i));
  series({ __name__: 'odd', kind: 'zero' }, 60_000, () => 0);
  series({ __name__: 'info', job: 'api', version: 'v1.2.3', host: 'web-01.example.com' }, 60_000, () => 1);
  return out;
}

const data = dataset();
const oracle = await startPrometheusOracle(data, { test: t });
const local = await loadStore(registry, 'storage.time-index', data);
t.teardown(() => local.dispose());
const phases = registry.list().filter((p) => p.slot === 'query.evaluator' && p.craft === 4).sort((a, b) => a.phase - b.phase);
/** Options that make each phase do its own work on this small data set: workers for every shard, small cached blocks. */
const PHASE_OPTIONS: Record<string, Record<string, unknown>> = {
  'query.parallel': { inlineSamplesMax: 0, shards: 5 },
  'query.cache': { blockMs: 600_000, freshnessMs: 0 },
};
const evaluators = phases.map((p) => ({ id: p.id, evaluator: makeEvaluator({ registry, evaluator: p.id, clock: new ManualClock(END_MS + 86_400_000), evaluatorOptions: PHASE_OPTIONS[p.id] ?? {} }) }));
t.teardown(() => Promise.all(evaluators.map(({ evaluator }) => evaluator.close?.())));
const INSTANTS = [0, 7 * MINUTE + 30_000, 45 * MINUTE, 61 * MINUTE, END_MS];

type Eval = Parameters<typeof runEval>[2];

/** Problems of every phase's answer: against Prometheus, and against phase 1 exactly. */
async function problemsOf(command: Eval, theirs: Awaited<ReturnType<typeof oracle.query>>, ordered: boolean, ties: boolean): Promise<string[]> {
  const problems: string[] = [];
  let first: string | undefined;
  for (const { id, evaluator } of evaluators) {
    const ours = await runEval(evaluator, local.store, command);
    problems.push(...compareAnswers(ours, theirs, ordered, ties).map((p) => `${id}: ${p}`));
    const exact = JSON.stringify(ours, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    if (first === undefined) first = exact;
    else if (exact !== first) problems.push(`${id}: not identical to ${evaluators[0]!.id}`);
  }
  return problems;
}

async function check(t: Test, expr: string): Promise<void> {
  const ordered = /^\s*sort(_desc)?\(/.test(expr);
  const ties = /topk|bottomk/.test(expr);
  for (const atMs of INSTANTS) {
    const command: Eval = { kind: 'eval', mode: 'instant', atMs, expr, expected: [], line: 0 };
    t.same(await problemsOf(command, await oracle.query(expr, atMs), ordered, ties), [], `${expr} @ ${atMs / 1000}s`);
  }
  const command: Eval = { kind: 'eval', mode: 'range', startMs: 0, endMs: END_MS, stepMs: 70_000, expr, expected: [], line: 0 };
  t.same(await problemsOf(command, await oracle.queryRange(expr, 0, END_MS, 70_000), false, ties), [], `${expr} over 0–2 h, step 70 s`);
}

t.test('hand-written queries agree with Prometheus', async (t) => {
  for (const expr of QUERIES) await check(t, expr);
});

t.test('random expressions agree with Prometheus', async (t) => {
  const { vectors, scalars, ranges } = RANDOM_PIECES;
  const vector: fc.Memo<string> = fc.memo((n) =>
    n <= 1
      ? fc.constantFrom(...vectors)
      : fc.oneof(
          fc.constantFrom(...vectors),
          fc.tuple(fc.constantFrom('sum', 'avg', 'min', 'max', 'count', 'stddev', 'group'), fc.constantFrom('', ' by (job)', ' without (instance)', ' by (instance, job)'), vector(n - 1)).map(([op, by, e]) => `${op}${by} (${e})`),
          fc.tuple(fc.constantFrom('+', '-', '*', '/', '>', '<=', '== bool', '!= bool'), vector(n - 1), fc.constantFrom(...scalars)).map(([op, e, s]) => `(${e}) ${op} ${s}`),
          fc.tuple(fc.constantFrom('abs', 'ceil', 'floor', 'sqrt', 'exp', 'ln', 'sgn', 'timestamp'), vector(n - 1)).map(([f, e]) => `${f}(${e})`),
          fc.tuple(fc.constantFrom('rate', 'irate', 'delta', 'deriv', 'avg_over_time', 'max_over_time', 'changes', 'resets', 'stddev_over_time', 'count_over_time'), fc.constantFrom(...ranges)).map(([f, r]) => `${f}(${r})`),
          fc.tuple(fc.constantFrom('max_over_time', 'avg_over_time', 'last_over_time', 'min_over_time'), vector(n - 1), fc.constantFrom('5m:1m', '10m:', '3m:30s')).map(([f, e, s]) => `${f}((${e})[${s}])`),
          fc.tuple(fc.constantFrom('and', 'or', 'unless', '+ on(job, instance)', '/ ignoring(code)'), vector(n - 1), vector(n - 1)).map(([op, a, b]) => `(${a}) ${op} (${b})`),
          fc.tuple(fc.constantFrom('topk', 'bottomk'), fc.integer({ min: 1, max: 3 }), vector(n - 1)).map(([op, k, e]) => `${op}(${k}, ${e})`),
        ),
  );
  await fc.assert(
    fc.asyncProperty(vector(3), async (expr) => {
      const ties = /topk|bottomk/.test(expr);
      for (const atMs of [45 * MINUTE, END_MS]) {
        const problems = await problemsOf({ kind: 'eval', mode: 'instant', atMs, expr, expected: [], line: 0 }, await oracle.query(expr, atMs), false, ties);
        if (problems.length > 0) throw new Error(`${expr} @ ${atMs / 1000}s: ${problems.slice(0, 5).join('; ')}`);
      }
      const problems = await problemsOf({ kind: 'eval', mode: 'range', startMs: 30 * MINUTE, endMs: END_MS, stepMs: 90_000, expr, expected: [], line: 0 }, await oracle.queryRange(expr, 30 * MINUTE, END_MS, 90_000), false, ties);
      if (problems.length > 0) throw new Error(`${expr} range: ${problems.slice(0, 5).join('; ')}`);
    }),
    { numRuns: 150, seed: 20261203 },
  );
  t.pass('150 random expressions agreed');
});
