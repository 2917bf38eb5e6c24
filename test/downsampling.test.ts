/**
 * Downsampling in phase 4: rollups whose windows line up with a level are answered from its
 * buckets (no chunk decoded), equal to the rollup of the samples; a delete rewrites the buckets
 * it touches; and after the raw samples expire, the buckets still answer for their time.
 */
import t from 'tap';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { ManualClock } from '../core/clock.js';
import type { WireSample } from '../core/model.js';
import type { SampleStore } from '../core/slots/storage.js';
import { rollupSeries } from '../core/storage/rollup.js';
import { tempDir } from './helpers/nats.js';
import { appendAll, openStore } from './helpers/storage.js';

const { registry } = await PluginRegistry.load();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const FIVE_MINUTES = 300_000;
type CacheStats = { misses: number };
const misses = (store: SampleStore): number => (store as unknown as { cacheStats(): CacheStats }).cacheStats().misses;
const matchers = [{ name: '__name__', op: '=' as const, value: 'g' }];

async function loadDay(store: SampleStore, startMs = 0): Promise<void> {
  const samples: WireSample[] = [];
  for (let i = 0; i < DAY / 15_000; i++) {
    for (let s = 0; s < 3; s++) samples.push([{ __name__: 'g', s: String(s) }, startMs + i * 15_000 + ((i * 7) % 5), Math.round(Math.sin(i / 50) * 10_000) / 100 + s]);
  }
  for (let at = 0; at < samples.length; at += 5_000) await appendAll(store, samples.slice(at, at + 5_000), { '1:0': at + 1 });
  await store.flush();
}

t.test('aligned rollups come from buckets and equal the samples’ rollups', async (t) => {
  const options = { downsampling: [{ resolutionMs: FIVE_MINUTES }, { resolutionMs: HOUR }] };
  const store = await openStore(registry, 'storage.time-index', 'kv.level', join(tempDir(t), 'store'), options);
  await loadDay(store);
  const querier = store.querier(0, DAY - 1);
  const samples = await querier.select(matchers);
  for (const stepMs of [FIVE_MINUTES, 15 * 60_000, HOUR, 6 * HOUR]) {
    const before = misses(store);
    const rollup = await querier.rollup(matchers, stepMs);
    t.same(rollup, rollupSeries(samples, 0, DAY - 1, stepMs), `step ${stepMs / 60_000} min: equal to the samples' rollup`);
    // The newest chunk of each series is still the open head, so only its time is read from samples.
    t.ok(misses(store) - before <= 3, `step ${stepMs / 60_000} min: ${misses(store) - before} chunks decoded`);
  }
  const unaligned = store.querier(7_000, DAY - 1);
  t.same(await unaligned.rollup(matchers, FIVE_MINUTES), rollupSeries(await unaligned.select(matchers), 7_000, DAY - 1, FIVE_MINUTES), 'an unaligned rollup of short windows is computed from chunks, equal too');
  await store.deleteSeries([{ name: 's', op: '=', value: '1' }], 3 * HOUR + 12_345, 5 * HOUR);
  const afterDelete = store.querier(0, DAY - 1);
  t.same(await afterDelete.rollup(matchers, FIVE_MINUTES), rollupSeries(await afterDelete.select(matchers), 0, DAY - 1, FIVE_MINUTES), 'after a delete, the buckets follow the samples');
  await store.close();
});

t.test('a long window at any time over raw chunks reads their summaries, as without levels', async (t) => {
  // An instant query's window, [t − 20h, t] at an odd t, with no decoded-chunk cache to hide decodes.
  const endMs = DAY - 1 - 17 * 60_000 - 4_321;
  const rollups: string[] = [];
  const decodes: number[] = [];
  for (const downsampling of [[], [{ resolutionMs: FIVE_MINUTES }, { resolutionMs: HOUR }]]) {
    const store = await openStore(registry, 'storage.time-index', 'kv.level', join(tempDir(t), `store${downsampling.length}`), { downsampling, decodedCacheBytes: 0 });
    await loadDay(store);
    const querier = store.querier(endMs - 20 * HOUR, endMs);
    const before = misses(store);
    const rollup = await querier.rollup(matchers, 20 * HOUR + 1);
    decodes.push(misses(store) - before);
    t.same(rollup, rollupSeries(await querier.select(matchers), endMs - 20 * HOUR, endMs, 20 * HOUR + 1), `${downsampling.length} levels: equal to the samples' rollup`);
    rollups.push(JSON.stringify(rollup));
    await store.close();
  }
  t.equal(rollups[1], rollups[0], 'the same windows with and without downsampling');
  // Raw chunks are all there, so their summaries answer (in memory) and only the edge chunks are decoded.
  t.ok(decodes[1]! <= decodes[0]! && decodes[1]! <= 2 * 3, `only edge chunks decoded (${decodes[1]} with levels, ${decodes[0]} without)`);
});

t.test('buckets outlive the raw samples’ retention', async (t) => {
  const clock = new ManualClock(2 * DAY);
  const options = { retentionMs: 12 * HOUR, retentionIntervalMs: 3_600_000, downsampling: [{ resolutionMs: HOUR, retentionMs: 30 * DAY }] };
  const dir = join(tempDir(t), 'store');
  let store = await openStore(registry, 'storage.time-index', 'kv.level', dir, options, clock);
  await loadDay(store, DAY);
  const before = await store.querier(DAY, 2 * DAY - 1).rollup(matchers, HOUR);
  // One unaligned 20-hour window (an instant query) over what will be expired and kept hours.
  const endMs = DAY + 20 * HOUR + 17 * 60_000;
  const expected = await store.querier(endMs - 20 * HOUR, endMs).rollup(matchers, 20 * HOUR + 1);
  const enforce = (store as unknown as { enforceRetention(): Promise<number> }).enforceRetention.bind(store);
  t.ok((await enforce()) > 0, 'retention dropped raw samples');
  const raw = await store.querier(DAY, DAY + 6 * HOUR).select(matchers);
  t.same(raw, [], 'the first hours have no raw samples left');
  await store.close();
  store = await openStore(registry, 'storage.time-index', 'kv.level', dir, options, clock);
  const after = await store.querier(DAY, 2 * DAY - 1).rollup(matchers, HOUR);
  t.same(after.map((s) => s.windows.slice(0, 6)), before.map((s) => s.windows.slice(0, 6)), 'hourly rollups of the expired hours come from the buckets, as before');
  // The same window now: hourly buckets where raw samples expired, chunks after.
  const long = await store.querier(endMs - 20 * HOUR, endMs).rollup(matchers, 20 * HOUR + 1);
  const ends = (r: typeof long) => r.map((s) => s.windows.map((w) => ({ lastMs: w.lastMs, last: w.last })));
  t.same(ends(long), ends(expected), 'a long unaligned window over expired hours ends as the raw rollup did');
  t.ok(long.every((s, i) => s.windows[0]!.count < expected[i]!.windows[0]!.count && s.windows[0]!.count >= expected[i]!.windows[0]!.count - 60 * 4), 'and counts every sample but the expired part of the first hour (< 60 minutes lost, not 12 hours)');
  await store.close();
});
