/**
 * Phase 3's parts on their own: postings answer exactly what a linear match answers, for
 * random series and matchers (empty values, regexes matching "" or not, negations); the
 * bloom filter never says "no" to a key it holds and keeps its false-positive rate near the
 * formula's; cardinality statistics count series per name and pair.
 */
import t from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { compileMatchers, type LabelMatcher } from '../core/model.js';
import { Postings, differenceSorted, intersectSorted, unionAll } from '../plugins/storage/shared/postings.js';
import { StringBloom } from '../plugins/storage/shared/bloom.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import { tempDir } from './helpers/nats.js';
import { appendAll, openStore } from './helpers/storage.js';

const value = fc.constantFrom('', 'a', 'b', 'ab', 'web-1', 'web-2');
const labels = fc.record({ __name__: fc.constantFrom('up', 'cpu', 'mem'), job: value, pod: value, zone: value });
const matcher: fc.Arbitrary<LabelMatcher> = fc.record({
  name: fc.constantFrom('__name__', 'job', 'pod', 'zone', 'absent'),
  op: fc.constantFrom('=', '!=', '=~', '!~') as fc.Arbitrary<LabelMatcher['op']>,
  value: fc.constantFrom('', 'a', 'b', 'up', 'web-.*', 'a|b', '.*', '.+', 'a|', 'x'),
});

t.test('property: postings match exactly what a linear match does', async (t) => {
  fc.assert(
    fc.property(fc.array(labels, { maxLength: 60 }), fc.array(matcher, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(59), { maxLength: 10 }), (all, matchers, removed) => {
      const postings = new Postings();
      const live = new Map<number, Record<string, string>>();
      all.forEach((l, id) => {
        postings.add(id + 1, l);
        live.set(id + 1, l);
      });
      for (const index of removed) {
        const l = live.get(index + 1);
        if (l === undefined) continue;
        postings.remove(index + 1, l);
        live.delete(index + 1);
      }
      // Labels with empty values are absent, as Prometheus has it.
      const test = compileMatchers(matchers);
      const expected = [...live.entries()].filter(([, l]) => test(Object.fromEntries(Object.entries(l).filter(([, v]) => v !== '')))).map(([id]) => id);
      return JSON.stringify(postings.match(matchers)) === JSON.stringify(expected);
    }),
    { numRuns: 2_000 },
  );
});

t.test('property: sorted-list set operations', async (t) => {
  const sorted = fc.uniqueArray(fc.nat(100)).map((a) => a.sort((x, y) => x - y));
  fc.assert(
    fc.property(sorted, sorted, (a, b) => {
      const inB = new Set(b);
      return (
        JSON.stringify(intersectSorted(a, b)) === JSON.stringify(a.filter((x) => inB.has(x))) &&
        JSON.stringify(differenceSorted(a, b)) === JSON.stringify(a.filter((x) => !inB.has(x))) &&
        JSON.stringify(unionAll([a, b])) === JSON.stringify([...new Set([...a, ...b])].sort((x, y) => x - y))
      );
    }),
  );
});

t.test('bloom filter: no false negatives, false positives near (1 − e^(−kn/m))^k', async (t) => {
  const m = 1 << 16;
  const k = 7;
  const n = 5_000;
  const bloom = new StringBloom(m, k);
  for (let i = 0; i < n; i++) bloom.add(`pod\u0000web-${i}`);
  let missing = 0;
  for (let i = 0; i < n; i++) if (!bloom.mayContain(`pod\u0000web-${i}`)) missing += 1;
  t.equal(missing, 0, 'every added key answers maybe');
  let falsePositives = 0;
  const probes = 20_000;
  for (let i = 0; i < probes; i++) if (bloom.mayContain(`pod\u0000db-${i}`)) falsePositives += 1;
  const expected = (1 - Math.exp((-k * n) / m)) ** k;
  t.ok(falsePositives / probes < expected * 2 + 0.001, `false-positive rate ${(falsePositives / probes).toFixed(4)} vs formula ${expected.toFixed(4)}`);
  t.throws(() => new StringBloom(8, 3), RangeError);
});

t.test('storage.label-index: block blooms answer an absent pair empty; cardinality counts series', async (t) => {
  const { registry } = await PluginRegistry.load();
  const store = await openStore(registry, 'storage.label-index', 'kv.level', join(tempDir(t), 'store'), { blockMs: 1_000 });
  t.teardown(() => store.close());
  // pod web-1 lives in the first second, web-2 in the third.
  await appendAll(store, [[{ __name__: 'up', pod: 'web-1', job: 'api' }, 100, 1], [{ __name__: 'up', pod: 'web-2', job: 'api' }, 2_100, 1], [{ __name__: 'up', pod: 'web-3', job: 'db' }, 2_200, 0]]);
  t.same((await store.querier(2_000, 2_999).select([{ name: 'pod', op: '=', value: 'web-1' }])).length, 0, 'web-1 has nothing in block 2');
  t.same((await store.querier(0, 999).select([{ name: 'pod', op: '=', value: 'web-1' }])).map((s) => s.labels.pod), ['web-1']);
  t.same((await store.querier(0, 5_000).select([{ name: 'job', op: '=', value: 'api' }, { name: 'pod', op: '!=', value: 'web-1' }])).map((s) => s.labels.pod), ['web-2']);
  const stats = store.cardinality(2);
  t.equal(stats.series, 3);
  t.same(stats.labelNames.map((n) => [n.name, n.series, n.values]), [['__name__', 3, 1], ['job', 3, 2]]);
  t.same(stats.labelPairs.slice(0, 2).map((p) => [p.name, p.value, p.series]), [['__name__', 'up', 3], ['job', 'api', 2]]);
});
