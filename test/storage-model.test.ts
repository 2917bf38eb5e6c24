/**
 * Every `storage.engine` plugin, on every `storage.kv` engine, equals the reference model of
 * core/slots/storage.ts under random sequences of appends (repeats, out-of-order times,
 * server stamps, NaN, ±Inf, −0, staleness markers), selects with random matchers and
 * ranges, label queries, deletes, and close + reopen.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { STALE_NAN, type LabelMatcher, type WireSample } from '../core/model.js';
import type { SampleStore } from '../core/slots/storage.js';
import { tempDir } from './helpers/nats.js';
import { StorageModel, appendAll, openStore, sameSeries } from './helpers/storage.js';
import { rollupSeries } from '../core/storage/rollup.js';

/** JSON that tells −0, NaN and ±Inf apart. */
const windowJson = (_key: string, value: unknown): unknown => (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0)) ? String(Object.is(value, -0) ? '-0' : value) : value);

const { registry } = await PluginRegistry.load();
const ENGINES = registry.list().filter((p) => p.slot === 'storage.engine').map((p) => p.id);
const KVS = registry.list().filter((p) => p.slot === 'storage.kv').map((p) => p.id);
/** Options that make small data exercise a plugin's flush, cut and compaction paths. */
const SMALL: Record<string, Record<string, unknown>> = {
  'storage.gorilla': { chunkSamplesMax: 8, checkpointWalBytes: 512 },
  'storage.label-index': { chunkSamplesMax: 8, checkpointWalBytes: 512, blockMs: 10, blockBloomBits: 1_024 },
  'storage.time-index': { chunkSamplesMax: 6, chunkRangeMs: 20, checkpointWalBytes: 256, blockMs: 10, blockBloomBits: 1_024, decodedCacheBytes: 2_000 },
};

const labelsArb = fc.record(
  { __name__: fc.constantFrom('cpu', 'mem'), host: fc.constantFrom('a', 'b', ''), dc: fc.constantFrom('x', 'y') },
  { requiredKeys: ['__name__'] },
).map((l) => Object.fromEntries(Object.entries(l).filter(([, v]) => v !== '')) as Record<string, string>);
// Values stay below 1e300 so no exact partial sum of a rollup leaves the float64 range (core/storage/rollup.ts).
const valueArb = fc.oneof({ weight: 6, arbitrary: fc.double({ min: -1e300, max: 1e300 }) }, fc.constantFrom(NaN, STALE_NAN, Infinity, -Infinity, -0, 0, 1e300));
const sampleArb = fc.tuple(labelsArb, fc.integer({ min: 0, max: 60 }), valueArb, fc.boolean()).map(([l, ts, v, stamped]): WireSample => (stamped ? [l, ts, v, 1] : [l, ts, v]));
const matcherArb: fc.Arbitrary<LabelMatcher> = fc.oneof(
  fc.record({ name: fc.constant('__name__'), op: fc.constantFrom('=', '!=') as fc.Arbitrary<LabelMatcher['op']>, value: fc.constantFrom('cpu', 'mem', 'disk') }),
  fc.record({ name: fc.constantFrom('host', 'dc', 'missing'), op: fc.constantFrom('=', '!=', '=~', '!~') as fc.Arbitrary<LabelMatcher['op']>, value: fc.constantFrom('a', 'b', '', 'x', 'a|b', '.*', '.+', 'x|') }),
);
const rangeArb = fc.tuple(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 70 })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
type Step =
  | { kind: 'append'; samples: WireSample[] }
  | { kind: 'select'; matchers: LabelMatcher[]; range: readonly [number, number]; stepMs: number }
  | { kind: 'delete'; matchers: LabelMatcher[]; range: readonly [number, number] }
  | { kind: 'reopen' };
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.array(sampleArb, { maxLength: 25 }).map((samples) => ({ kind: 'append' as const, samples })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('select' as const), matchers: fc.array(matcherArb, { minLength: 1, maxLength: 3 }), range: rangeArb, stepMs: fc.integer({ min: 1, max: 30 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), matchers: fc.array(matcherArb, { minLength: 1, maxLength: 2 }), range: rangeArb }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

/** `alignMs`: half of the selects get a step and a start on multiples of it (to line up with downsampling levels). */
async function checkAgainstModel(t: Test, engine: string, kv: string, options: Record<string, unknown> = SMALL[engine] ?? {}, alignMs = 0): Promise<void> {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 14 }), async (steps) => {
      const dir = join(tempDir(t), `r${run++}`);
      let store: SampleStore = await openStore(registry, engine, kv, dir, options);
      const model = new StorageModel();
      // Every other run passes back the series references appends return (see Appender.append).
      const refs = run % 2 === 0 ? new Map<string, number>() : undefined;
      let offset = 0;
      const fail = (why: string): never => {
        throw new Error(`${engine}@${kv}: ${why}`);
      };
      try {
        for (const step of steps) {
          if (step.kind === 'append') {
            offset += 1;
            await appendAll(store, step.samples, { '1:0': offset }, refs);
            model.append(step.samples);
          } else if (step.kind === 'select') {
            let [min, max] = step.range;
            if (alignMs > 0 && step.stepMs % 2 === 0) {
              min = Math.floor(min / alignMs) * alignMs;
              max = Math.max(max, min);
              step.stepMs = Math.ceil(step.stepMs / alignMs) * alignMs;
            }
            const querier = store.querier(min, max);
            const problem = sameSeries(await querier.select(step.matchers), model.select(step.matchers, min, max));
            if (problem !== undefined) fail(`select ${JSON.stringify(step.matchers)} [${min},${max}]: ${problem}`);
            const names = await querier.labelNames(step.matchers);
            if (JSON.stringify(names) !== JSON.stringify(model.labelNames(step.matchers, min, max))) fail(`labelNames ${JSON.stringify(names)}`);
            const hosts = await querier.labelValues('host', step.matchers);
            if (JSON.stringify(hosts) !== JSON.stringify(model.labelValues('host', step.matchers, min, max))) fail(`labelValues ${JSON.stringify(hosts)}`);
            const series = await querier.series(step.matchers);
            if (series.length !== model.select(step.matchers, min, max).length) fail(`series: ${series.length}`);
            const rollup = JSON.stringify(await querier.rollup(step.matchers, step.stepMs), windowJson);
            const expectedRollup = JSON.stringify(rollupSeries(model.select(step.matchers, min, max), min, max, step.stepMs), windowJson);
            if (rollup !== expectedRollup) fail(`rollup step ${step.stepMs} [${min},${max}]: ${rollup} expected ${expectedRollup}`);
          } else if (step.kind === 'delete') {
            const [min, max] = step.range;
            const deleted = await store.deleteSeries(step.matchers, min, max);
            const expected = model.delete(step.matchers, min, max);
            if (deleted !== expected) fail(`delete ${JSON.stringify(step.matchers)} [${min},${max}]: ${deleted} deleted, expected ${expected}`);
          } else {
            await store.close();
            store = await openStore(registry, engine, kv, dir, options);
          }
          const stats = store.stats();
          if (stats.samples !== model.samples) fail(`after ${step.kind}: stats.samples ${stats.samples}, expected ${model.samples}`);
          if (stats.series !== model.series.size) fail(`after ${step.kind}: stats.series ${stats.series}, expected ${model.series.size}`);
        }
        if (offset > 0 && store.positions()['1:0'] !== offset) fail(`positions ${JSON.stringify(store.positions())}, expected offset ${offset}`);
        const everything = [{ name: '__name__', op: '=~', value: '.+' }] as LabelMatcher[];
        const problem = sameSeries(await store.querier(0, Number.MAX_SAFE_INTEGER).select(everything), model.select(everything, 0, Number.MAX_SAFE_INTEGER));
        if (problem !== undefined) fail(`final select: ${problem}`);
        let scanned = 0;
        for await (const chunk of store.scan()) scanned += chunk.length;
        // The JSON-lines store keeps repeated samples as later lines: its scan yields every line.
        if (engine === 'craft0.jsonl-store' ? scanned < model.samples : scanned !== model.samples) fail(`scan yielded ${scanned}, expected ${model.samples}`);
        return true;
      } finally {
        await store.close();
      }
    }),
    { numRuns: Number(process.env.STORAGE_MODEL_RUNS ?? (engine === 'craft0.jsonl-store' ? 25 : 60)) },
  );
}

for (const engine of ENGINES) {
  for (const kv of engine.startsWith('craft0.') ? KVS.slice(0, 1) : KVS) {
    t.test(`${engine} on ${kv} equals the model`, async (t) => {
      await checkAgainstModel(t, engine, kv);
      t.pass('every step matched');
    });
  }
}

t.test('storage.time-index with downsampling (5 ms and 10 ms buckets) equals the model', async (t) => {
  // Rollups whose windows line up with a level read its buckets; every rollup must still equal the samples'.
  await checkAgainstModel(t, 'storage.time-index', KVS[0]!, { ...SMALL['storage.time-index'], downsampling: [{ resolutionMs: 5 }, { resolutionMs: 10 }] }, 5);
  t.pass('every step matched');
});

t.test('storage.time-index decoding every select in scan workers equals the model', async (t) => {
  // scanWorkersSamplesMin 1: every select with a stored chunk goes through the worker threads.
  await checkAgainstModel(t, 'storage.time-index', KVS[0]!, { ...SMALL['storage.time-index'], scanWorkers: 2, scanWorkersSamplesMin: 1 });
  t.pass('every step matched');
});

t.test('acknowledged samples never collapse: three server-stamped metrics of one series in one batch are three samples', async (t) => {
  for (const engine of ENGINES) {
    const store = await openStore(registry, engine, KVS[0]!, join(tempDir(t), engine));
    const labels = { __name__: 'cpu_usage', host: 'a' };
    const result = await appendAll(store, [[labels, 1_000, 1, 1], [labels, 1_000, 2, 1], [labels, 1_000, 3, 1]], { '1:0': 1 });
    t.match(result, { added: 3, restamped: 2 }, `${engine}: commit result`);
    const [series] = await store.querier(0, 10_000).select([{ name: '__name__', op: '=', value: 'cpu_usage' }]);
    t.same(series?.timestampsMs, [1_000, 1_001, 1_002], `${engine}: stored at t, t+1, t+2`);
    t.same(series?.values, [1, 2, 3], `${engine}: in arrival order`);
    // A later batch stamped in the same millisecond still lands after them.
    await appendAll(store, [[labels, 1_000, 4, 1]], { '1:0': 2 });
    t.equal(store.stats().samples, 4, `${engine}: a fourth sample in the same millisecond is kept`);
    // A client timestamp is an upsert: the same time again replaces, it does not add.
    await appendAll(store, [[labels, 1_001, 20]], { '1:0': 3 });
    t.equal(store.stats().samples, 4, `${engine}: client-stamped repeat replaces`);
    await store.close();
  }
});

t.test('stats report bytes on disk once data is flushed', async (t) => {
  for (const engine of ENGINES) {
    const store = await openStore(registry, engine, KVS[0]!, join(tempDir(t), engine));
    const samples: WireSample[] = [];
    for (let i = 0; i < 2_000; i++) samples.push([{ __name__: 'm', i: String(i % 20) }, i * 15_000, i % 7]);
    await appendAll(store, samples, { '1:0': 1 });
    await store.flush();
    const stats = store.stats();
    t.equal(stats.samples, 2_000, `${engine}: samples`);
    t.ok(stats.bytes > 0, `${engine}: bytes on disk ${stats.bytes} > 0`);
    t.equal(stats.bytesPerSample, stats.bytes / stats.samples, `${engine}: bytes per sample`);
    await store.close();
  }
});

t.test('destroy removes the files', async (t) => {
  for (const engine of ENGINES) {
    const dir = join(tempDir(t), engine);
    const store = await openStore(registry, engine, KVS[0]!, dir);
    await appendAll(store, [[{ __name__: 'm' }, 1, 1]]);
    await store.close({ destroy: true });
    const again = await openStore(registry, engine, KVS[0]!, dir);
    t.equal(again.stats().samples, 0, `${engine}: empty after destroy`);
    await again.close();
  }
});
