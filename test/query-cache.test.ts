/**
 * Phase 4, the cache: a range query asked again is answered from cached blocks (fewer storage
 * reads) with exactly phase 1's answer; a late sample forgets the blocks it changes; blocks still
 * filling and queries with `@` are not cached. And Prometheus rule files: parsed with line-numbered
 * errors.
 */
import t from 'tap';
import { PluginRegistry } from '../core/plugins/registry.js';
import { ManualClock } from '../core/clock.js';
import type { SampleSource } from '../core/slots/query.js';
import { parseRuleFile } from '../core/rules/rule-file.js';
import { appendAll } from './helpers/storage.js';
import { loadStore, makeEvaluator } from './helpers/promql-engine.js';

const { registry } = await PluginRegistry.load();
const HOUR = 3_600_000;
const series = ['a', 'b', 'c'].map((instance, i) => ({ labels: { __name__: 'x_total', instance }, samples: Array.from({ length: 6 * 240 }, (_, k) => ({ t: k * 15_000, v: k * (i + 1) })) }));
const local = await loadStore(registry, 'storage.time-index', series);
t.teardown(() => local.dispose());
let selects = 0;
const counting: SampleSource = {
  querier: (min, max) => {
    const querier = local.store.querier(min, max);
    return { ...querier, select: (m, h) => ((selects += 1), querier.select(m, h)) };
  },
};
const clock = new ManualClock(7 * HOUR);
const interpreter = makeEvaluator({ registry, evaluator: 'query.interpreter' });
const cache = makeEvaluator({ registry, evaluator: 'query.cache', clock, evaluatorOptions: { blockMs: HOUR, freshnessMs: 30 * 60_000 } });
type Stats = { hits: number; misses: number; entries: number; invalidations: number };
const stats = (): Stats => (cache as unknown as { cacheStats(): Stats }).cacheStats();

const request = { expr: 'sum by (instance) (rate(x_total[5m]))', startMs: 0, endMs: 6 * HOUR, stepMs: 60_000 };

t.test('a range query asked twice: the second answer comes from cached blocks, equal to phase 1', async (t) => {
  const expected = await interpreter.evaluate(request, counting);
  selects = 0;
  t.same(await cache.evaluate(request, counting), expected, 'first answer');
  const firstSelects = selects;
  t.equal(stats().entries, 6, 'six settled one-hour blocks cached (the last is within the freshness window)');
  selects = 0;
  t.same(await cache.evaluate(request, counting), expected, 'second answer');
  t.ok(selects < firstSelects, `${selects} selects the second time, ${firstSelects} the first`);
  t.ok(stats().hits >= 6, `${stats().hits} block hits`);
  const shifted = { ...request, startMs: 30 * 60_000, endMs: 6 * HOUR + 60_000 };
  t.same(await cache.evaluate(shifted, counting), await interpreter.evaluate(shifted, counting), 'a shifted range reuses the blocks it overlaps and equals phase 1');
});

t.test('a late sample forgets the blocks it can change, and the answer follows the data', async (t) => {
  await appendAll(local.store, [[{ __name__: 'x_total', instance: 'a' }, 2 * HOUR + 7_000, 1e6]], { '1:0': 1_000_000 });
  const before = stats().invalidations;
  cache.dataChanged!(2 * HOUR + 7_000, 2 * HOUR + 7_000);
  const dropped = stats().invalidations - before;
  t.ok(dropped >= 1 && dropped <= 2, `${dropped} block(s) forgotten: the one holding the sample, and the next one its window reaches`);
  t.same(await cache.evaluate(request, counting), await interpreter.evaluate(request, counting), 'equal to phase 1 on the new data');
});

t.test('queries with @ and unaligned starts are evaluated, not cached', async (t) => {
  const entries = stats().entries;
  const pinned = { ...request, expr: 'sum(x_total @ 3600)' };
  t.same(await cache.evaluate(pinned, counting), await interpreter.evaluate(pinned, counting));
  const unaligned = { ...request, startMs: 1_000 };
  t.same(await cache.evaluate(unaligned, counting), await interpreter.evaluate(unaligned, counting));
  t.equal(stats().entries, entries, 'nothing new cached');
});

t.test('rule files: groups of recording and alerting rules, errors with file and line', async (t) => {
  const groups = parseRuleFile(['groups:', '  - name: g', '    interval: 30s', '    rules:', '      - record: job:x:rate5m', '        expr: sum by (job) (rate(x[5m]))', '      - alert: High', '        expr: job:x:rate5m > 1', '        for: 5m'].join('\n'), 'rules.yaml');
  t.equal(groups[0]!.interval, 30_000);
  t.match(groups[0]!.rules, [{ record: 'job:x:rate5m' }, { alert: 'High', for: 300_000 }]);
  t.throws(() => parseRuleFile('groups:\n  - name: g\n    rules:\n      - record: ok\n        expr: sum(rate(x[5m])\n', 'bad.yaml'), { code: 'CRAFT_CONFIG_INVALID', message: /bad\.yaml:5:\d+: groups\[0\]\.rules\[0\]\.expr: invalid PromQL/ });
  t.throws(() => parseRuleFile('groups:\n  - name: g\n    interval: soon\n    rules: []\n', 'bad.yaml'), { message: /bad\.yaml:3:\d+: groups\[0\]\.interval: not a duration/ });
  t.throws(() => parseRuleFile('groups:\n  - name: g\n    rules:\n      - record: "not a name"\n        expr: x\n', 'bad.yaml'), { message: /bad\.yaml:4:\d+: .*valid metric name/ });
  t.throws(() => parseRuleFile('groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n', 'bad.yaml'), { message: /used twice/ });
});
