/**
 * Phase 4: a rollup over whole chunks is answered from their summaries (no decode), equals
 * the rollup of the samples bit for bit, survives a reopen (summaries are stored), and the
 * decoded-chunk cache keeps to its byte limit.
 */
import t from 'tap';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { rollupSeries } from '../core/storage/rollup.js';
import type { WireSample } from '../core/model.js';
import type { SampleStore } from '../core/slots/storage.js';
import { DecodedChunkCache } from '../plugins/storage/p4-time-index/decoded-cache.js';
import { SUMMARY_TAG, decodeSummary, splitTrailer } from '../plugins/storage/p4-time-index/summaries.js';
import { readTime } from '../plugins/storage/shared/keys.js';
import { createLogger } from '../core/log.js';
import type { KvOp } from '../core/slots/kv.js';
import { tempDir } from './helpers/nats.js';
import { appendAll, openStore } from './helpers/storage.js';

const { registry } = await PluginRegistry.load();
const DAY_MS = 86_400_000;
type CacheStats = { misses: number; hits: number };
const cacheOf = (store: SampleStore): CacheStats => (store as unknown as { cacheStats(): CacheStats }).cacheStats();

async function loadDay(store: SampleStore): Promise<void> {
  const samples: WireSample[] = [];
  for (let i = 0; i < DAY_MS / 15_000; i++) {
    for (let s = 0; s < 3; s++) samples.push([{ __name__: 'g', s: String(s) }, i * 15_000 + ((i * 7) % 5), Math.round(Math.sin(i / 50) * 10_000) / 100 + s]);
  }
  for (let at = 0; at < samples.length; at += 5_000) await appendAll(store, samples.slice(at, at + 5_000), { '1:0': at + 1 });
  await store.flush();
}

t.test('storage.time-index: a 24-hour rollup decodes only the chunks at its edges and equals the samples’ rollup', async (t) => {
  const dir = join(tempDir(t), 'store');
  let store = await openStore(registry, 'storage.time-index', 'kv.level', dir);
  await loadDay(store);
  const matchers = [{ name: '__name__', op: '=' as const, value: 'g' }];
  const querier = store.querier(0, DAY_MS - 1);
  const before = cacheOf(store).misses;
  const fast = await querier.rollup(matchers, DAY_MS);
  const decodedChunks = cacheOf(store).misses - before;
  t.ok(decodedChunks <= 3 * 2, `decoded ${decodedChunks} chunks for 3 series × 48 chunks (only edges)`);
  const expected = rollupSeries(await querier.select(matchers), 0, DAY_MS - 1, DAY_MS);
  t.same(fast, expected, 'same count, exact sum, min, max, first, last');
  t.equal(fast[0]?.windows[0]?.count, 5_760);
  const hourly = await querier.rollup(matchers, 3_600_000);
  t.same(hourly, rollupSeries(await querier.select(matchers), 0, DAY_MS - 1, 3_600_000), 'hourly windows (chunks cross window edges) equal too');
  await store.close();
  store = await openStore(registry, 'storage.time-index', 'kv.level', dir);
  const reopened = cacheOf(store).misses;
  t.same(await store.querier(0, DAY_MS - 1).rollup(matchers, DAY_MS), expected, 'after reopen');
  t.ok(cacheOf(store).misses - reopened <= 6, 'summaries were loaded from disk, not recomputed by decoding');
  await store.close();
});

t.test('decoded-chunk cache: a scan cannot evict the chunks asked for twice; the byte limit holds', async (t) => {
  const entry = 2 * 8 * 10 + 96;
  const cache = new DecodedChunkCache(8 * entry);
  const chunk = (): { timestampsMs: Float64Array; values: Float64Array } => ({ timestampsMs: new Float64Array(10), values: new Float64Array(10) });
  for (const key of ['a', 'b', 'c']) {
    cache.set(key, chunk());
    t.ok(cache.get(key) !== undefined, `${key} asked for again: protected`);
  }
  for (let i = 0; i < 100; i++) cache.set(`scan-${i}`, chunk());
  t.ok(['a', 'b', 'c'].every((key) => cache.get(key) !== undefined), 'a scan of 100 chunks left the working set alone');
  t.ok(cache.get('scan-99') !== undefined, 'the newest scanned chunk is on probation');
  t.equal(cache.get('scan-0'), undefined, 'the oldest scanned chunk went');
  t.ok(cache.bytesUsed <= cache.bytesMax, `bytes ${cache.bytesUsed} ≤ ${cache.bytesMax}`);
  for (let i = 0; i < 20; i++) {
    cache.set(`hot-${i}`, chunk());
    cache.get(`hot-${i}`);
  }
  t.ok(cache.bytesUsed <= cache.bytesMax, 'protected entries evict the least recently used past the limit');
  t.equal(cache.get('a'), undefined, 'the oldest protected chunk went');
  cache.set('huge', { timestampsMs: new Float64Array(1_000), values: new Float64Array(1_000) });
  t.equal(cache.get('huge'), undefined, 'an entry larger than the probation share is not kept');
});

t.test('storage.time-index: a store of the first layout (summaries under Z keys) is migrated on open and answers the same', async (t) => {
  const dir = join(tempDir(t), 'store');
  let store = await openStore(registry, 'storage.time-index', 'kv.level', dir);
  await loadDay(store);
  const matchers = [{ name: '__name__', op: '=' as const, value: 'g' }];
  const expected = await store.querier(0, DAY_MS - 1).rollup(matchers, DAY_MS);
  const samples = await store.querier(0, DAY_MS - 1).select(matchers);
  await store.close();
  // Rewrite the store into the first layout: C values without trailers, summaries under Z keys, no Mlayout.
  const kv = registry.instantiate('storage.kv', 'kv.level', { dataDir: join(dir, 'kv'), log: createLogger('test') }, {});
  await kv.open();
  const ops: KvOp[] = [];
  let chunks = 0;
  for await (const entries of kv.iterate({ gte: Uint8Array.of(0x43), lt: Uint8Array.of(0x44) })) {
    for (const [key, value] of entries) {
      const { end, summary } = splitTrailer(value);
      ops.push({ type: 'put', key, value: value.slice(0, end) });
      const zKey = key.slice();
      zKey[0] = SUMMARY_TAG;
      if (summary.length > 0) ops.push({ type: 'put', key: zKey, value: firstLayoutSummary(decodeSummary(summary, readTime(key, 5), readTime(value, 0))) });
      chunks += 1;
    }
  }
  ops.push({ type: 'del', key: new TextEncoder().encode('Mlayout') });
  await kv.batch(ops, { sync: true });
  await kv.close();
  t.ok(chunks >= 30, `${chunks} chunks rewritten to the first layout`);
  store = await openStore(registry, 'storage.time-index', 'kv.level', dir);
  t.same(await store.querier(0, DAY_MS - 1).rollup(matchers, DAY_MS), expected, 'rollup from the migrated summaries');
  t.same(await store.querier(0, DAY_MS - 1).select(matchers), samples, 'every sample');
  await store.close();
  store = await openStore(registry, 'storage.time-index', 'kv.level', dir);
  t.same(await store.querier(0, DAY_MS - 1).rollup(matchers, DAY_MS), expected, 'and again after a second open (migrated once)');
  await store.close();
});

/** A summary in the first layout: count u32, min max first firstMs last lastMs special (f64), parts u8, parts. */
function firstLayoutSummary(summary: ReturnType<typeof decodeSummary>): Uint8Array {
  const parts = summary.exact.parts;
  const bytes = new Uint8Array(61 + parts.length * 8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, summary.count);
  [summary.min, summary.max, summary.first, summary.firstMs, summary.last, summary.lastMs, summary.exact.special].forEach((v, i) => view.setFloat64(4 + i * 8, v));
  view.setUint8(60, parts.length);
  parts.forEach((p, i) => view.setFloat64(61 + i * 8, p));
  return bytes;
}
