/**
 * Cardinality limits per tenant (core/ingestion/tenant-series.ts): the limiter equals a plain
 * model under random writes, tenants and time; each limit is accepted at its boundary and refused
 * one past it; series hashes do not depend on label order; and through a real platform a
 * cardinality bomb is refused (400/429 naming the limit) while a well-behaved tenant is served.
 */
import t from 'tap';
import fc from 'fast-check';
import { seriesHashes, TenantSeriesLimiter, type TenantSeriesLimits } from '../core/ingestion/tenant-series.js';
import { decodePrepared, encodePrepared } from '../plugins/ingestion/shared/prepare-codec.js';
import type { WireSample } from '../core/model.js';
import { startPlatform } from './helpers/platform.js';
import { eventually } from './helpers/nats.js';
import { StorageClient } from '../core/storage/client.js';

const labels = fc.dictionary(fc.constantFrom('a', 'b', 'host', 'job', 'x'), fc.string({ maxLength: 4 }), { minKeys: 0, maxKeys: 4 });

t.test('series hashes do not depend on label order; different series differ', async (t) => {
  fc.assert(
    fc.property(labels, (l) => {
      const entries = Object.entries({ __name__: 'm', ...l });
      const reversed = Object.fromEntries([...entries].reverse());
      const [a, b] = seriesHashes([[Object.fromEntries(entries), 0, 0], [reversed, 0, 0]]);
      if (a !== b) throw new Error('order changed the hash');
      if (!Number.isSafeInteger(a)) throw new Error('not a safe integer');
    }),
  );
  const many: WireSample[] = Array.from({ length: 200_000 }, (_, i) => [{ __name__: 'bomb', id: String(i) }, 0, 0]);
  t.equal(new Set(seriesHashes(many)).size, 200_000, 'no collision among 200,000 series');
});

t.test('the prepared append keeps its series hashes across the thread codec', async (t) => {
  const series = seriesHashes([[{ __name__: 'a' }, 0, 0], [{ __name__: 'b', c: 'd' }, 0, 0]]);
  const { prepared } = decodePrepared(encodePrepared(7, { kind: 'append', client: 'c', parts: [new Uint8Array([1, 2, 3])], okReply: { status: 204, body: '', contentType: 'x' }, metrics: 2, series }));
  t.equal(prepared.kind, 'append');
  if (prepared.kind === 'append') {
    t.same([...prepared.series!], [...series]);
    t.same([...prepared.parts[0]!], [1, 2, 3]);
  }
});

t.test('limiter = model under random writes, tenants and time (property)', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), tenant: fc.constantFrom('t1', 't2', 't3'), series: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 }) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 200_000 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 60 }), fc.array(op, { maxLength: 60 }), (perTenant, perMinute, total, ops) => {
      const limits: TenantSeriesLimits = { seriesPerTenantMax: perTenant, newSeriesPerTenantPerMinute: perMinute, activeSeriesMax: total, activeSeriesWindowMs: 120_000 };
      const limiter = new TenantSeriesLimiter(limits);
      // The model: per tenant, series → last seen; a bucket; everything recomputed from scratch.
      const seen = new Map<string, Map<number, number>>();
      const bucket = new Map<string, { tokens: number; atMs: number }>();
      let now = 1_000_000;
      let lastSweep = 0;
      for (const o of ops) {
        if (o.kind === 'advance') {
          now += o.ms;
          continue;
        }
        // The limiter forgets idle series once a minute; the model does at the same moments.
        if (now - lastSweep >= 60_000) {
          lastSweep = now;
          for (const m of seen.values()) for (const [s, at] of m) if (at < now - limits.activeSeriesWindowMs) m.delete(s);
        }
        const mine = seen.get(o.tenant) ?? new Map<number, number>();
        const fresh = new Set(o.series.filter((s) => !mine.has(s))).size;
        const b = bucket.get(o.tenant) ?? { tokens: perMinute, atMs: now };
        const tokens = Math.min(perMinute, b.tokens + ((now - b.atMs) * perMinute) / 60_000);
        const active = [...seen.values()].reduce((n, m) => n + m.size, 0);
        let expected: string | undefined;
        if (fresh > 0 && mine.size + fresh > perTenant) expected = 'series_per_tenant';
        else if (fresh > 0 && fresh > tokens) expected = 'new_series_per_minute';
        else if (fresh > 0 && active + fresh > total) expected = 'series_total';
        const got = limiter.admit(o.tenant, o.series, now)?.reason;
        if (got !== expected) throw new Error(`write ${JSON.stringify(o)} at ${now}: limiter ${got}, model ${expected}`);
        if (fresh > 0 && expected !== 'series_per_tenant') bucket.set(o.tenant, { tokens: expected === undefined ? tokens - fresh : tokens, atMs: now });
        if (expected === undefined) {
          for (const s of o.series) mine.set(s, now);
          seen.set(o.tenant, mine);
        }
        if (limiter.activeSeries !== [...seen.values()].reduce((n, m) => n + m.size, 0)) throw new Error('active series differ');
      }
    }),
    { numRuns: 400 },
  );
  t.pass();
});

t.test('each limit at its boundary: the limit accepted, one more refused', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 500 }), (max) => {
      const ids = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
      const big = 1_000_000;
      const perTenant = new TenantSeriesLimiter({ seriesPerTenantMax: max, newSeriesPerTenantPerMinute: big, activeSeriesMax: big, activeSeriesWindowMs: 60_000 });
      if (perTenant.admit('a', ids(0, max), 0) !== undefined) throw new Error('series_per_tenant refused at the limit');
      if (perTenant.admit('a', ids(max, 1), 0)?.reason !== 'series_per_tenant') throw new Error('series_per_tenant not refused past it');
      if (perTenant.admit('b', ids(0, max), 0) !== undefined) throw new Error('another tenant has its own budget');
      const perMinute = new TenantSeriesLimiter({ seriesPerTenantMax: big, newSeriesPerTenantPerMinute: max, activeSeriesMax: big, activeSeriesWindowMs: 60_000 });
      if (perMinute.admit('a', ids(0, max), 0) !== undefined) throw new Error('new_series_per_minute refused at the limit');
      const over = perMinute.admit('a', ids(max, 1), 0);
      if (over?.reason !== 'new_series_per_minute' || over.status !== 429 || over.retryAfterS === undefined) throw new Error(`new_series_per_minute: ${JSON.stringify(over)}`);
      if (perMinute.admit('a', ids(max, 1), 60_000) !== undefined) throw new Error('a minute later the bucket has refilled');
      const total = new TenantSeriesLimiter({ seriesPerTenantMax: big, newSeriesPerTenantPerMinute: big, activeSeriesMax: max, activeSeriesWindowMs: 60_000 });
      if (total.admit('a', ids(0, max), 0) !== undefined) throw new Error('series_total refused at the limit');
      if (total.admit('b', ids(max, 1), 0)?.reason !== 'series_total') throw new Error('series_total not refused past it');
      if (total.admit('a', ids(0, max), 0) !== undefined) throw new Error('known series are always admitted');
    }),
    { numRuns: 100 },
  );
  t.pass();
});

t.test('through the platform: a cardinality bomb is refused with the limit named, a well-behaved tenant is served, nothing refused is stored', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' }, ingestion: { seriesPerTenantMax: 2_000, newSeriesPerTenantPerMinute: 1_500 } });
  const post = (tenant: string, body: unknown): Promise<Response> => fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`, { method: 'POST', headers: { authorization: tenant, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const statuses: number[] = [];
  let lastBody: Record<string, unknown> = {};
  for (let r = 0; r < 10; r++) {
    const response = await post('bomber', { metrics: Array.from({ length: 500 }, (_, i) => ({ name: 'bomb', value: 1, tags: { id: `${r}-${i}` }, timestamp: 1_000 + r })) });
    statuses.push(response.status);
    if (response.status !== 200) lastBody = (await response.json()) as Record<string, unknown>;
    else await response.text();
    const good = await post('good', { metrics: [{ name: 'steady', value: r, tags: { host: 'a' }, timestamp: 1_000 + r }] });
    t.equal(good.status, 200, `the well-behaved tenant is served (round ${r})`);
    await good.text();
  }
  t.same(statuses.slice(0, 3), [200, 200, 200], '1,500 new series: within the minute\'s budget');
  t.equal(statuses[3], 429, 'the fourth 500 is over newSeriesPerTenantPerMinute');
  t.match(lastBody, { reason: 'new_series_per_minute', limit: 'newSeriesPerTenantPerMinute', max: 1_500 });
  const metrics = await (await fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`)).text();
  t.match(metrics, /craft_ingestion_rejected_total\{phase="craft0.http",reason="new_series_per_minute"\} 7/);
  const storage = new StorageClient(platform.bus);
  const stored = async (): Promise<number> => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: 'bomb' }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples;
  t.ok(await eventually(async () => (await stored()) === 1_500, 20_000), 'stored: exactly the three accepted requests');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await stored(), 1_500, 'and nothing of the refused ones');
});
