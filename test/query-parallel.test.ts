/**
 * Phase 3, parallel: a streamed aggregation really runs its shards in worker threads, an instant
 * *_over_time really comes from storage's rollup, both answer exactly what phase 1 answers, and
 * the pool's threads stop when the evaluator closes.
 */
import t from 'tap';
import { PluginRegistry } from '../core/plugins/registry.js';
import type { SampleSource } from '../core/slots/query.js';
import { loadStore, makeEvaluator } from './helpers/promql-engine.js';

const { registry } = await PluginRegistry.load();
const series = [];
for (let i = 0; i < 60; i++) {
  series.push({ labels: { __name__: 'requests_total', job: i % 2 === 0 ? 'api' : 'db', instance: `h${i}` }, samples: Array.from({ length: 240 }, (_, k) => ({ t: k * 15_000 + (i % 7), v: k * (i + 1) + (k > 120 && i % 5 === 0 ? -k : 0) })) });
}
const local = await loadStore(registry, 'storage.time-index', series);
t.teardown(() => local.dispose());
let rollups = 0;
let selects = 0;
const counting: SampleSource = {
  querier: (min, max) => {
    const querier = local.store.querier(min, max);
    return { ...querier, select: (m, h) => ((selects += 1), querier.select(m, h)), rollup: (m, s) => ((rollups += 1), querier.rollup(m, s)) };
  },
};
const interpreter = makeEvaluator({ registry, evaluator: 'query.interpreter' });
const parallel = makeEvaluator({ registry, evaluator: 'query.parallel', evaluatorOptions: { workers: 2, shards: 6, inlineSamplesMax: 0 } });
t.teardown(() => parallel.close?.());

t.test('sum by (job) (rate(…)) is scattered over six shards, gathered from workers, equal to phase 1', async (t) => {
  const request = { expr: 'sum by (job) (rate(requests_total[5m]))', startMs: 600_000, endMs: 3_000_000, stepMs: 30_000 };
  selects = 0;
  const expected = await interpreter.evaluate(request, counting);
  t.equal(selects, 1, 'phase 1: one select');
  selects = 0;
  const got = await parallel.evaluate(request, counting);
  t.equal(selects, 6, 'phase 3: one select per shard');
  t.same(got, expected);
  const pool = (parallel as unknown as { pool: { tasksRun: number } }).pool;
  t.ok(pool.tasksRun >= 6, `${pool.tasksRun} shard tasks ran in workers`);
});

t.test('an instant max_over_time comes from storage’s rollup', async (t) => {
  const request = { expr: 'max_over_time(requests_total{job="api"}[30m])', timeMs: 3_000_000 };
  rollups = 0;
  const expected = await interpreter.evaluate(request, counting);
  t.equal(rollups, 0);
  const got = await parallel.evaluate(request, counting);
  t.equal(rollups, 1, 'one rollup, no raw select of the samples');
  t.same(got, expected);
});

t.test('two series with one labelset after rate: the same error as phase 1', async (t) => {
  const clash = await loadStore(registry, 'storage.time-index', [
    { labels: { __name__: 'a_total', x: '1' }, samples: [{ t: 0, v: 1 }, { t: 60_000, v: 2 }] },
    { labels: { __name__: 'b_total', x: '1' }, samples: [{ t: 0, v: 1 }, { t: 60_000, v: 3 }] },
  ]);
  t.teardown(() => clash.dispose());
  const request = { expr: 'sum(rate({__name__=~"a_total|b_total"}[5m]))', timeMs: 60_000 };
  await t.rejects(interpreter.evaluate(request, clash.store), { message: /same labelset/ });
  await t.rejects(parallel.evaluate(request, clash.store), { message: /same labelset/ });
});
