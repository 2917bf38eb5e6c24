/**
 * Storage's own bounds (issue 10): `storage.selectSeriesMax` and `storage.selectSamplesMax`
 * refuse a select over them with CRAFT_QUERY_LIMIT naming the limit — the chunk stores before
 * decoding anything, every other store before sending — at exactly the boundary (limit
 * accepted, limit + 1 refused), through the storage subject and through the query API.
 */
import t from 'tap';
import fc from 'fast-check';
import { StorageClient } from '../core/storage/client.js';
import { CraftError } from '../core/errors.js';
import { eventually } from './helpers/nats.js';
import { postJson, startPlatform } from './helpers/platform.js';

const SERIES = 12;
const SAMPLES_PER_SERIES = 5;
const SERIES_MAX = 6;
const SAMPLES_MAX = 20;

for (const engine of ['storage.time-index', 'storage.lsm']) {
  t.test(`${engine}: a select is refused exactly above its series and samples bounds`, async (t) => {
    const platform = await startPlatform(t, {
      plugins: { 'storage.engine': engine, 'ingestion.server': 'craft0.http' },
      storage: { selectSeriesMax: SERIES_MAX, selectSamplesMax: SAMPLES_MAX },
    });
    const startMs = Date.now() - 60_000;
    const metrics = [];
    for (let i = 0; i < SERIES; i++) {
      for (let k = 0; k < SAMPLES_PER_SERIES; k++) metrics.push({ name: 'bounded', value: k, tags: { i: String(i) }, timestamp: startMs + k * 1_000 });
    }
    const posted = await postJson(platform.ingestionPort, '/metrics', { metrics });
    t.equal(posted.status, 200, JSON.stringify(posted.body));
    const storage = new StorageClient(platform.bus);
    const range = { startMs: startMs - 1_000, endMs: Date.now() + 60_000 };
    t.ok(await eventually(async () => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: 'bounded' }], ...range })).samples === SERIES * SAMPLES_PER_SERIES, 15_000), 'all samples stored');

    // k series of 5 samples each: refused iff k > 6 series or 5k > 20 samples.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: SERIES }), fc.integer({ min: 1, max: SAMPLES_PER_SERIES }), async (k, samples) => {
        const matchers = [
          { name: '__name__', op: '=' as const, value: 'bounded' },
          { name: 'i', op: '=~' as const, value: Array.from({ length: k }, (_, i) => String(i)).join('|') },
        ];
        // The last `samples` seconds of each series (the chunk stores count whole chunks: one chunk here, so all 5).
        const within = engine === 'storage.time-index' ? k * SAMPLES_PER_SERIES : k * samples;
        const request = { matchers, startMs: startMs + (SAMPLES_PER_SERIES - samples) * 1_000, endMs: range.endMs };
        const refusedFor = k > SERIES_MAX ? 'storage.selectSeriesMax' : within > SAMPLES_MAX ? 'storage.selectSamplesMax' : undefined;
        try {
          const series = await storage.select(request);
          if (refusedFor !== undefined) throw new Error(`k=${k} samples=${samples}: answered ${series.length} series, expected ${refusedFor}`);
          if (series.length !== k) throw new Error(`k=${k}: ${series.length} series`);
        } catch (error) {
          if (!(error instanceof CraftError)) throw error;
          if (refusedFor === undefined || error.code !== 'CRAFT_QUERY_LIMIT' || !error.message.includes(refusedFor)) {
            throw new Error(`k=${k} samples=${samples}: ${error.code} ${error.message}, expected ${refusedFor ?? 'an answer'}`);
          }
        }
      }),
      { numRuns: 40 },
    );

    // Through the query API: a clear 4xx naming the limit; hints from a client cannot raise it.
    const res = await fetch(`http://127.0.0.1:${platform.queryPort}/api/v1/query?query=${encodeURIComponent('bounded')}`);
    const body = (await res.json()) as { status: string; errorType?: string; error?: string };
    t.equal(res.status, 422, JSON.stringify(body));
    t.match(body.error, /storage\.selectSeriesMax \(6\)/);
    await t.rejects(storage.select({ matchers: [{ name: '__name__', op: '=', value: 'bounded' }], ...range, hints: { limits: { seriesMax: 1e9, samplesMax: 1e12 } } }), /storage\.selectSeriesMax/);
  });
}
