/**
 * Data model and wire codecs: canonical series keys, batch and fetch-frame round trips,
 * select-result chunking, selector parsing, partitioning.
 */
import t from 'tap';
import fc from 'fast-check';
import { decodeBatch, encodeBatch, seriesKey, compileMatchers, type IngestBatch, type SeriesSamples } from '../core/model.js';
import { decodeFetchFrame, encodeFetchFrame, encodeFetchError, partitionFor } from '../core/queue/protocol.js';
import { chunkSeries, mergeSeriesParts } from '../core/series-chunks.js';
import { parseSelector } from '../core/query/selector.js';

const labelName = fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/);
const labels = fc.dictionary(labelName, fc.string({ maxLength: 12 }), { maxKeys: 4 }).map((l) => ({ ...l, __name__: 'm' }));
const sampleValue = fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, 0, -0));

t.test('series keys do not depend on label order and escape values', async (t) => {
  t.equal(seriesKey({ __name__: 'cpu', b: '2', a: '1' }), 'cpu{a="1",b="2"}');
  t.equal(seriesKey({ __name__: 'cpu', a: 'x"y\\z\n' }), 'cpu{a="x\\"y\\\\z\\n"}');
  fc.assert(
    fc.property(labels, (l) => {
      const reversed = Object.fromEntries(Object.entries(l).reverse());
      return seriesKey(l) === seriesKey(reversed);
    }),
  );
});

t.test('property: batches survive the queue encoding, non-finite values included', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(labels, fc.nat(), sampleValue), { maxLength: 20 }), fc.string(), (samples, client) => {
      const batch: IngestBatch = { client, receivedAtMs: 1, samples };
      const back = decodeBatch(encodeBatch(batch));
      return back.client === client && back.samples.length === samples.length && back.samples.every((s, i) => Object.is(s[2], samples[i]![2]) || (Number.isNaN(s[2]) && Number.isNaN(samples[i]![2])) || (s[2] === 0 && samples[i]![2] === 0));
    }),
  );
});

t.test('property: fetch frames round-trip deliveries byte for byte', async (t) => {
  const delivery = fc.record({ epoch: fc.nat(100), partition: fc.nat(63), offset: fc.nat(), payload: fc.uint8Array({ maxLength: 64 }) });
  fc.assert(
    fc.property(fc.nat(1000), fc.array(delivery, { maxLength: 20 }), (generation, deliveries) => {
      const back = decodeFetchFrame(encodeFetchFrame(generation, deliveries));
      return back.generation === generation && JSON.stringify(back.deliveries.map((d) => ({ ...d, payload: [...d.payload] }))) === JSON.stringify(deliveries.map((d) => ({ ...d, payload: [...d.payload] })));
    }),
  );
  t.throws(() => decodeFetchFrame(encodeFetchError({ code: 'CRAFT_BAD_REQUEST', message: 'stale', details: { reason: 'stale-generation' } })), { code: 'CRAFT_BAD_REQUEST' });
});

t.test('property: chunked select results merge back to the same series, each part under the limit', async (t) => {
  const series = fc.array(
    fc.record({ labels, n: fc.nat(400) }).map(({ labels: l, n }): SeriesSamples => ({ labels: l, timestampsMs: Array.from({ length: n }, (_, i) => i), values: Float64Array.from({ length: n }, (_, i) => i / 3) })),
    { maxLength: 6 },
  );
  fc.assert(
    fc.property(series, fc.integer({ min: 2_000, max: 20_000 }), (input, limit) => {
      const unique = [...new Map(input.map((s) => [seriesKey(s.labels), s])).values()];
      const parts = chunkSeries(unique, limit);
      const sizesOk = parts.every((p) => JSON.stringify(p).length <= limit * 1.2 + 500);
      const merged = mergeSeriesParts(parts).filter((s) => s.timestampsMs.length > 0);
      const expected = unique.filter((s) => s.timestampsMs.length > 0);
      const same = merged.length === expected.length && expected.every((s) => {
        const m = merged.find((x) => seriesKey(x.labels) === seriesKey(s.labels));
        return m !== undefined && JSON.stringify(m.timestampsMs) === JSON.stringify(s.timestampsMs) && JSON.stringify(m.values) === JSON.stringify(s.values);
      });
      return sizesOk && same;
    }),
    { numRuns: 200 },
  );
});

t.test('selectors', async (t) => {
  t.same(parseSelector('cpu_usage'), [{ name: '__name__', op: '=', value: 'cpu_usage' }]);
  t.same(parseSelector(' cpu{host="a", region!~"us-.*",} '), [
    { name: '__name__', op: '=', value: 'cpu' },
    { name: 'host', op: '=', value: 'a' },
    { name: 'region', op: '!~', value: 'us-.*' },
  ]);
  t.same(parseSelector(`{__name__=~"cpu.*", job='x\\'y'}`), [
    { name: '__name__', op: '=~', value: 'cpu.*' },
    { name: 'job', op: '=', value: "x'y" },
  ]);
  for (const bad of ['', 'cpu{', 'cpu{host}', 'cpu{host="a"', '{host=""}', 'cpu{a=~"("}', 'cpu extra']) {
    t.throws(() => parseSelector(bad), { code: 'CRAFT_BAD_REQUEST' }, `rejects ${JSON.stringify(bad)}`);
  }
  const match = compileMatchers(parseSelector('cpu{host=~"a|b"}'));
  t.ok(match({ __name__: 'cpu', host: 'a' }));
  t.notOk(match({ __name__: 'cpu', host: 'ab' }), 'regex matchers are anchored');
});

t.test('partitioning is stable and in range', async (t) => {
  t.equal(partitionFor('default', 4), partitionFor('default', 4));
  fc.assert(fc.property(fc.string(), fc.integer({ min: 1, max: 64 }), (client, n) => {
    const p = partitionFor(client, n);
    return Number.isInteger(p) && p >= 0 && p < n;
  }));
});
