/**
 * Retention on every storage phase: samples older than a series' retention are dropped
 * durably — by the global age or the first matching rule — counts follow, series left empty
 * disappear, and the pass runs by itself on the store's clock. The chunk stores (phases 2–4)
 * drop whole chunks; phase 1 (raw samples as keys) drops exactly the expired samples.
 */
import t from 'tap';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { ManualClock } from '../core/clock.js';
import type { WireSample } from '../core/model.js';
import { tempDir, eventually } from './helpers/nats.js';
import { appendAll, openStore } from './helpers/storage.js';

const { registry } = await PluginRegistry.load();
const HOUR = 3_600_000;

for (const engine of ['storage.lsm', 'storage.gorilla', 'storage.label-index', 'storage.time-index']) {
  t.test(`${engine}: retention by age and by rule`, async (t) => {
    const clock = new ManualClock(10 * HOUR);
    const dir = join(tempDir(t), 'store');
    const retention = { retentionMs: 3 * HOUR, retentionRules: [{ selector: '{env="dev"}', retentionMs: HOUR }], retentionIntervalMs: 60_000 };
    const options = engine === 'storage.lsm' ? retention : { chunkSamplesMax: 12, chunkRangeMs: HOUR, ...retention };
    let store = await openStore(registry, engine, 'kv.level', dir, options, clock);
    // 6 hours of samples every 5 minutes, ending at "now" (10 h): prod and dev, one series each.
    const samples: WireSample[] = [];
    for (let tMs = 4 * HOUR; tMs < 10 * HOUR; tMs += 5 * 60_000) {
      samples.push([{ __name__: 'm', env: 'prod' }, tMs, 1], [{ __name__: 'm', env: 'dev' }, tMs, 2]);
    }
    await appendAll(store, samples, { '1:0': 1 });
    // A series that stopped 5 hours ago: all of it expires.
    await appendAll(store, [[{ __name__: 'old' }, 4 * HOUR, 1]], { '1:0': 2 });
    await store.flush();
    const enforce = (store as unknown as { enforceRetention(): Promise<number> }).enforceRetention.bind(store);
    const dropped = await enforce();
    const q = store.querier(0, 11 * HOUR);
    const [dev] = await q.select([{ name: 'env', op: '=', value: 'dev' }]);
    const [prod] = await q.select([{ name: 'env', op: '=', value: 'prod' }]);
    t.ok(dev!.timestampsMs[0]! >= 10 * HOUR - 2 * HOUR, `dev keeps about its hour (oldest ${(10 * HOUR - dev!.timestampsMs[0]!) / 60_000} min ago)`);
    t.ok(prod!.timestampsMs[0]! >= 10 * HOUR - 4 * HOUR && prod!.timestampsMs[0]! < 10 * HOUR - 2 * HOUR, `prod keeps about 3 hours (oldest ${(10 * HOUR - prod!.timestampsMs[0]!) / 60_000} min ago)`);
    if (engine === 'storage.lsm') {
      t.equal(dev!.timestampsMs[0], 9 * HOUR, 'raw samples expire exactly: dev keeps t ≥ now − 1 h');
      t.equal(prod!.timestampsMs[0], 7 * HOUR, 'raw samples expire exactly: prod keeps t ≥ now − 3 h');
    }
    t.same(await q.series([{ name: '__name__', op: '=', value: 'old' }]), [], 'a series left empty disappears');
    t.equal(store.stats().samples, dev!.timestampsMs.length + prod!.timestampsMs.length, 'counts follow');
    t.equal(dropped, samples.length + 1 - store.stats().samples, 'the pass reports what it dropped');
    await store.close();
    store = await openStore(registry, engine, 'kv.level', dir, options, clock);
    t.equal(store.stats().samples, dev!.timestampsMs.length + prod!.timestampsMs.length, 'durable across reopen');
    t.equal(store.stats().series, 2);
    // The pass runs by itself: two hours later, on the store's clock, prod loses more.
    const before = store.stats().samples;
    clock.advance(2 * HOUR);
    t.ok(await eventually(() => store.stats().samples < before), 'the timer dropped newly expired chunks');
    await store.close();
  });
}

t.test('a retention rule with a bad selector is refused before the store starts', async (t) => {
  t.throws(() => registry.checkOptions('storage.engine', 'storage.gorilla', { retentionRules: [{ selector: 'm{', retentionMs: 1 }] }), { code: 'CRAFT_PLUGIN_OPTIONS' });
});
