/**
 * One API suite, run against every ingestion phase (and Craft #0's server): the same
 * requests get the same answers whatever the concurrency design. The phases are swapped
 * in turn on one running platform, so every swap is exercised too.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { startPlatform } from './helpers/platform.js';
import { eventually } from './helpers/nats.js';
import { encodeRemoteWrite } from '../core/ingestion/remote-write.js';
import { StorageClient } from '../core/storage/client.js';
import { SUBJECTS } from '../core/subjects.js';
import type { Platform } from '../actors/platform.js';
import { PluginRegistry } from '../core/plugins/registry.js';

// Every registered ingestion server: Craft #0's and the eight Craft #1 phases.
const PHASES = process.env.CRAFT_TEST_PHASES?.split(',') ?? (await PluginRegistry.load()).registry.list().filter((p) => p.slot === 'ingestion.server').map((p) => p.id);
const KEEP_ALIVE = new Set(['ingestion.keep-alive', 'ingestion.event-driven']);
const RATE_LIMIT = 10;
const BODY_MAX = 256 * 1024;

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

async function send(port: number, path: string, body: string | Uint8Array, client: string, extra: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers: { authorization: client, ...extra } });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? '' : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

async function suite(t: Test, platform: Platform, phase: string): Promise<void> {
  const port = platform.ingestionPort;
  let lapStart = performance.now();
  const lap = (label: string): void => {
    t.comment(`${label}: ${(performance.now() - lapStart).toFixed(0)} ms`);
    lapStart = performance.now();
  };
  const tag = phase.replace(/\W/g, '_');
  let client = 0;
  const nextClient = () => `${tag}-${client++}`;
  const storage = new StorageClient(platform.bus);
  const stored = async (name: string) => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: name }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples;

  // Seed JSON: batch and single forms, exact answers.
  const batch = await send(port, '/metrics', JSON.stringify({ metrics: [{ name: `seed_${tag}`, value: 75.5, type: 'gauge', tags: { host: 'server1' }, timestamp: 1_000 }, { name: `seed_${tag}`, value: 2, tags: { host: 'server2' }, timestamp: 1_000 }] }), nextClient());
  t.same([batch.status, batch.body], [200, { success: true, metrics_processed: 2 }], 'batch answered 200');
  t.equal(batch.headers.get('connection'), KEEP_ALIVE.has(phase) ? 'keep-alive' : 'close', 'connection handling of the phase');
  const single = await send(port, '/metrics', `{"name":"seed_${tag}","value":85}`, nextClient());
  t.same([single.status, single.body], [202, { status: 'accepted' }], 'single metric answered 202');

  lap('seed forms');
  // Validation, word for word.
  const bad = async (body: string) => (await send(port, '/metrics', body, nextClient())).body;
  t.same(await bad('{"metrics":[]}'), { error: 'Batch cannot be empty' });
  t.same(await bad(JSON.stringify({ metrics: Array.from({ length: 1_001 }, () => ({ name: 'a', value: 1 })) })), { error: 'Batch size exceeds maximum (1000 metrics)' });
  t.same(await bad(JSON.stringify({ metrics: [{ name: 'n'.repeat(256), value: 1 }] })), { error: 'Invalid metric: Metric name too long (max 255 characters)', metric_index: 0 });
  t.same(await bad('{"metrics":[{"name":"a","value":"NaN"}]}'), { error: 'Invalid metric: Metric value must be a finite number', metric_index: 0 });
  t.same(await bad('{"metrics": [ {"name": "a", "value": 1'), { error: 'invalid JSON format' });

  lap('validation');
  // Prometheus remote write.
  const rw = encodeRemoteWrite([{ labels: { __name__: `rw_${tag}`, job: 'node' }, samples: [[2_000, 1.5], [3_000, NaN]] }]);
  const rwAnswer = await send(port, '/api/v1/write', rw, nextClient(), { 'content-encoding': 'snappy', 'content-type': 'application/x-protobuf' });
  t.equal(rwAnswer.status, 204, 'remote write answered 204');
  t.equal((await send(port, '/api/v1/write', new Uint8Array([9, 9, 9]), nextClient())).status, 400, 'malformed remote write answered 400');

  lap('remote write');
  // Influx line protocol v1 and v2.
  t.equal((await send(port, '/write?precision=s', `lp_${tag},host=a temp=21.5,count=3i 1700000000\nlp_${tag},host=b temp=22`, nextClient())).status, 204);
  const v2bad = await send(port, '/api/v2/write?org=o&bucket=b&precision=ns', `lp_${tag} temp=1\nlp_${tag} temp=`, nextClient());
  t.match(v2bad, { status: 400, body: { code: 'invalid', line: 2, message: /line 2/ } }, 'bad line named');
  t.match(await send(port, '/write?precision=hours', 'm v=1', nextClient()), { status: 400, body: { error: /precision/ } });

  lap('line protocol');
  // Limits: body size and rate.
  t.match(await send(port, '/metrics', 'x'.repeat(BODY_MAX + 1), nextClient()), { status: 413, body: { error: /too large/ } });
  const limited = nextClient();
  const burst = await Promise.all(Array.from({ length: RATE_LIMIT + 20 }, () => send(port, '/metrics', '{"name":"burst","value":1,"timestamp":5}', limited)));
  const tooMany = burst.filter((a) => a.status === 429);
  t.ok(tooMany.length >= 5, `${tooMany.length} of ${burst.length} answered 429`);
  t.same(tooMany[0]?.body, { error: 'Rate limit exceeded' });
  t.equal(tooMany[0]?.headers.get('retry-after'), '1');
  t.ok(burst.every((a) => a.status === 202 || a.status === 429));

  lap('limits');
  // Reads.
  const health = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json());
  t.match(health, { status: 'healthy', service: 'ingestion', phase });
  const stats = (await fetch(`http://127.0.0.1:${port}/stats`).then((r) => r.json())) as Record<string, number>;
  t.ok(stats.metrics_received! >= 6 && stats.validation_errors! >= 5 && stats.rate_limited_requests! >= 5, JSON.stringify(stats));
  t.match(await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()), /# TYPE craft_ingestion_requests_total counter/);
  t.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);

  lap('reads');
  // Fuzzed bodies on every write endpoint: always an answer, always 2xx or 4xx.
  const body = fc.oneof(fc.string({ maxLength: 300 }), fc.json(), fc.uint8Array({ maxLength: 300 }), fc.constant('{"metrics":[{"name":"f","value":1}'));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('/metrics', '/api/v1/write', '/write', '/api/v2/write'), body, async (path, b) => {
      const answer = await send(port, path, b, nextClient());
      return (answer.status >= 200 && answer.status < 300) || (answer.status >= 400 && answer.status < 500);
    }),
    { numRuns: 25 },
  );

  lap('fuzz');
  // What was acknowledged is stored: 3 seed, 2 remote write, 3 line protocol (of which 2 temp, 1 count).
  t.ok(await eventually(async () => (await stored(`seed_${tag}`)) === 3), 'seed samples stored');
  t.ok(await eventually(async () => (await stored(`rw_${tag}`)) === 2), 'remote-write samples stored');
  t.ok(await eventually(async () => (await stored(`lp_${tag}_temp`)) === 2 && (await stored(`lp_${tag}_count`)) === 1), 'line-protocol samples stored');
  lap('stored');
}

t.test('the API suite, against every phase', async (t) => {
  const platform = await startPlatform(t, { ingestion: { rateLimitPerSecond: RATE_LIMIT, bodyBytesMax: BODY_MAX, workers: 2 } });
  t.equal(PHASES.length >= 9 || process.env.CRAFT_TEST_PHASES !== undefined, true, `phases under test: ${PHASES.join(', ')}`);
  let active = 'ingestion.event-driven';
  for (const phase of PHASES) {
    if (phase !== active) await platform.bus.request(SUBJECTS.controlSwap, { slot: 'ingestion.server', plugin: phase }, { timeoutMs: 60_000 });
    active = phase;
    await t.test(phase, (t) => suite(t, platform, phase));
  }
});

t.test('the bounded pool answers 503 with Retry-After when its task queue is full', async (t) => {
  const platform = await startPlatform(t, { ingestion: { rateLimitPerSecond: 0, workQueueCapacity: 2, workers: 1 }, plugins: { 'ingestion.server': 'ingestion.worker-pool' } });
  const body = JSON.stringify({ metrics: Array.from({ length: 1_000 }, (_, i) => ({ name: 'pool', value: i, tags: { i: String(i) } })) });
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => send(platform.ingestionPort, '/metrics', body, `c${i}`)));
  const overloaded = answers.filter((a) => a.status === 503);
  t.ok(overloaded.length > 0, `${overloaded.length} of 40 answered 503`);
  t.same(overloaded[0]?.body, { error: 'Server overloaded, try again later' });
  t.equal(overloaded[0]?.headers.get('retry-after'), '1');
  t.ok(answers.every((a) => a.status === 200 || a.status === 503));
  const storage = new StorageClient(platform.bus);
  const acknowledged = answers.filter((a) => a.status === 200).length * 1_000;
  t.ok(await eventually(async () => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: 'pool' }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples >= Math.min(acknowledged, 1_000)));
});

t.test('regression: clients that hang up before their turn do not stall Craft #0\'s one-at-a-time server', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' } });
  const { connect } = await import('node:net');
  const body = '{"name":"hangup","value":1}';
  await Promise.all(
    Array.from({ length: 30 }, () =>
      new Promise<void>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: platform.ingestionPort }, () => {
          socket.write(`POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          socket.destroy();
          resolve();
        });
        socket.on('error', () => resolve());
      }),
    ),
  );
  const started = Date.now();
  const answer = await send(platform.ingestionPort, '/metrics', body, 'after');
  t.equal(answer.status, 202, `answered after the hang-ups in ${Date.now() - started} ms`);
});
