/**
 * Phase 4's parallel scans: a large select decodes its chunks in worker threads and answers
 * exactly what the one-thread read answers — over packed and Gorilla chunks, out-of-order
 * samples, a delete and the open heads — and the workers stop with the store.
 */
import t from 'tap';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { STALE_NAN, type WireSample } from '../core/model.js';
import type { SampleStore } from '../core/slots/storage.js';
import { tempDir } from './helpers/nats.js';
import { appendAll, openStore } from './helpers/storage.js';

const { registry } = await PluginRegistry.load();
const HOUR = 3_600_000;
const matchers = [{ name: '__name__', op: '=~' as const, value: 'g|c' }];
const poolOf = (store: SampleStore): { tasksRun: number } | undefined => (store as unknown as { scanPool?: { tasksRun: number } }).scanPool;

async function load(store: SampleStore): Promise<void> {
  const samples: WireSample[] = [];
  for (let i = 0; i < (6 * HOUR) / 15_000; i++) {
    for (let s = 0; s < 20; s++) {
      // Gauges with two decimals pack; the odd series' irrational values stay Gorilla.
      const value = s % 2 === 0 ? Math.round(Math.sin(i / 40 + s) * 10_000) / 100 : Math.sin(i / 40 + s);
      samples.push([{ __name__: s < 10 ? 'g' : 'c', s: String(s) }, i * 15_000 + (i % 3), i === 100 && s === 3 ? STALE_NAN : value]);
    }
  }
  // Late samples between the first hours' scrapes.
  for (let s = 0; s < 20; s += 5) samples.push([{ __name__: s < 10 ? 'g' : 'c', s: String(s) }, 7_500 + s, -1]);
  for (let at = 0; at < samples.length; at += 4_000) await appendAll(store, samples.slice(at, at + 4_000), { '1:0': at + 1 });
  await store.flush();
}

t.test('a select decoded in scan workers equals the one-thread read', async (t) => {
  const dir = tempDir(t);
  const serial = await openStore(registry, 'storage.time-index', 'kv.level', join(dir, 'serial'), { scanWorkers: 0 });
  const parallel = await openStore(registry, 'storage.time-index', 'kv.level', join(dir, 'parallel'), { scanWorkers: 2, scanWorkersSamplesMin: 1_000, decodedCacheBytes: 100_000 });
  for (const store of [serial, parallel]) {
    await load(store);
    await store.deleteSeries([{ name: 's', op: '=', value: '7' }], HOUR, 2 * HOUR);
  }
  for (const [min, max] of [[0, 6 * HOUR], [HOUR + 1, 3 * HOUR - 7], [5 * HOUR, 7 * HOUR]] as const) {
    const expected = await serial.querier(min, max).select(matchers);
    const got = await parallel.querier(min, max).select(matchers);
    t.same(got.map((s) => ({ ...s, values: Array.from(s.values, (v) => (Number.isNaN(v) ? 'NaN' : v)) })), expected.map((s) => ({ ...s, values: Array.from(s.values, (v) => (Number.isNaN(v) ? 'NaN' : v)) })), `[${min}, ${max}]: the same series and samples`);
  }
  t.ok((poolOf(parallel)?.tasksRun ?? 0) > 0, `chunks were decoded in workers (${poolOf(parallel)?.tasksRun} tasks)`);
  t.equal(poolOf(serial), undefined, 'scanWorkers 0 starts no pool');
  // A second read of a range the cache could hold comes from the cache, equal again.
  const again = await parallel.querier(5 * HOUR, 7 * HOUR).select(matchers);
  t.same(again.length, 20, 'cached chunks answer the second read');
  await serial.close();
  await parallel.close();
});
