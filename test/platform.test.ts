/**
 * The whole platform in one process: POST /metrics to a query answer for Craft #0 and the
 * durable defaults; the supervision tree; an actor killed and restarted; plugin choices
 * that survive a restart of the platform.
 */
import t from 'tap';
import { startPlatform, postJson, getJson, CRAFT0_PLUGINS } from './helpers/platform.js';
import { eventually, tempDir } from './helpers/nats.js';
import { StorageClient } from '../core/storage/client.js';
import { QueryClient } from '../core/query/client.js';
import { SUBJECTS, killSubject } from '../core/subjects.js';
import type { HandoverReply } from '../core/platform-context.js';

for (const [name, plugins] of [
  ['Craft #0 plugins', CRAFT0_PLUGINS],
  ['durable defaults', { 'ingestion.server': 'craft0.http' }],
] as const) {
  t.test(`${name}: from POST /metrics to a query answer`, async (t) => {
    const platform = await startPlatform(t, { plugins });
    const port = platform.ingestionPort;
    t.same((await postJson(port, '/metrics', { name: 'cpu_usage', value: 85 })).body, { status: 'accepted' });
    const batch = await postJson(port, '/metrics', { metrics: [{ name: 'cpu_usage', value: 90, tags: { host: 'a' }, timestamp: 1_000 }, { name: 'mem', value: 1, timestamp: 1_000 }] });
    t.same(batch.body, { success: true, metrics_processed: 2 });
    t.equal(batch.status, 200);
    const storage = new StorageClient(platform.bus);
    t.ok(await eventually(async () => (await storage.info()).stats.samples === 3), 'three samples stored');
    const rows = (await getJson(port, '/query?name=cpu_usage')).body as { name: string; value: number; timestamp: number }[];
    t.equal(rows.length, 2);
    t.match(rows[0], { name: 'cpu_usage', value: 90, timestamp: 1_000 });
    const viaQueryPort = (await getJson(platform.queryPort, '/query?name=cpu_usage&start=0&end=2000')).body as unknown[];
    t.equal(viaQueryPort.length, 1);
    const result = await new QueryClient(platform.bus).query({ expr: 'cpu_usage{host="a"}', startMs: 0, endMs: 5_000 });
    t.match(result, { resultType: 'matrix', result: [{ labels: { __name__: 'cpu_usage', host: 'a' }, timestampsMs: [1_000], values: [90] }] });
    t.match((await getJson(port, '/health')).body, { status: 'healthy', service: 'ingestion', phase: 'craft0.http' });
    t.match((await getJson(port, '/stats')).body, { metrics_received: 3, batches_processed: 2, validation_errors: 0 });
    const exposition = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
    t.match(exposition, /craft_ingestion_metrics_received_total\{phase="craft0.http"\} 3/);
    const bad = await postJson(port, '/metrics', '{"metrics":[]}');
    t.same(bad, { status: 400, body: { error: 'Batch cannot be empty' }, headers: bad.headers });
    t.equal((await getJson(port, '/nope')).status, 404);
  });
}

t.test('the supervision tree answers status, and a killed actor is restarted and catches up', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' } });
  const status = platform.processStatus();
  t.same(status.tree.children?.map((c) => c.id), ['control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion']);
  t.ok(status.tree.children?.every((c) => c.state === 'running'));
  t.match(status.tree.children?.find((c) => c.id === 'storage'), { plugins: { 'storage.engine': 'storage.gorilla', 'storage.kv': 'kv.level' }, mailbox: { capacity: 10_000 } });

  platform.bus.publish(killSubject('storage'), {});
  t.ok(await eventually(() => platform.processStatus().tree.children?.find((c) => c.id === 'storage')?.restarts === 1), 'storage restarted once');
  // While storage was down the queue kept acknowledging; after the restart it catches up.
  for (let i = 0; i < 5; i++) t.equal((await postJson(platform.ingestionPort, '/metrics', { metrics: [{ name: 'x', value: i, timestamp: i }] })).status, 200);
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.info().catch(() => undefined))?.stats.samples === 5), 'the restarted storage applies what the queue held');
});

t.test('swaps are journaled: a restarted platform comes back with the same plugins and data', async (t) => {
  const dataDir = tempDir(t);
  const first = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' } }, dataDir);
  for (let i = 0; i < 10; i++) await postJson(first.ingestionPort, '/metrics', { metrics: [{ name: 'm', value: i, timestamp: 100 + i }] });
  const reply = await first.bus.request<HandoverReply>(SUBJECTS.controlSwap, { slot: 'storage.engine', plugin: 'craft0.jsonl-store' });
  t.match(reply, { from: 'storage.gorilla', to: 'craft0.jsonl-store' });
  await t.rejects(first.bus.request(SUBJECTS.controlSwap, { slot: 'storage.engine', plugin: 'craft0.jsonl-store' }), { code: 'CRAFT_SWAP_FAILED' });
  await t.rejects(first.bus.request(SUBJECTS.controlSwap, { slot: 'storage.engine', plugin: 'craft0.http' }), { code: 'CRAFT_PLUGIN_WRONG_SLOT' });
  await first.stop();

  const second = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' } }, dataDir);
  t.match(second.processStatus().tree.children?.find((c) => c.id === 'storage'), { plugins: { 'storage.engine': 'craft0.jsonl-store' } });
  const storage = new StorageClient(second.bus);
  t.equal((await storage.info()).stats.samples, 10, 'the handed-over samples are there');
  await second.stop();

  // A changed configuration wins over the journaled swap.
  const third = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'storage.engine': 'craft0.jsonl-store' } }, dataDir);
  t.match(third.processStatus().tree.children?.find((c) => c.id === 'storage'), { plugins: { 'storage.engine': 'craft0.jsonl-store' } });
});

t.test('regression: server-stamped samples of one series in one request are all stored (they used to collapse into one)', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'ingestion.event-driven' } });
  const metric = { name: 'collapse_probe', value: 1, tags: { host: 'a' } };
  for (let i = 0; i < 3; i++) {
    const reply = await postJson(platform.ingestionPort, '/metrics', { metrics: [metric, { ...metric, value: 2 }, { ...metric, value: 3 }] });
    t.match(reply, { status: 200, body: { metrics_processed: 3 } });
  }
  const line = await fetch(`http://127.0.0.1:${platform.ingestionPort}/write`, { method: 'POST', body: 'collapse_line,host=a v=1\ncollapse_line,host=a v=2' });
  t.equal(line.status, 204);
  const storage = new StorageClient(platform.bus);
  const count = async (name: string): Promise<number> => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: name }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples;
  t.ok(await eventually(async () => (await count('collapse_probe')) === 9), 'nine acknowledged seed samples, nine stored');
  t.ok(await eventually(async () => (await count('collapse_line_v')) === 2), 'two acknowledged line-protocol samples, two stored');
  const info = await storage.info();
  t.ok(info.samplesRestamped >= 6, `re-stamped ${info.samplesRestamped}`);
  t.ok(info.lag.batches > 0 && info.lag.p99Ms >= info.lag.p50Ms, 'lag percentiles over applied batches');
  t.ok(await eventually(async () => (await storage.info()).lag.currentMs === 0), 'caught up: the lag reads 0 while idle');
  const later = await storage.info();
  await new Promise((resolve) => setTimeout(resolve, 700));
  t.equal((await storage.info()).lag.currentMs, 0, 'and stays 0 (it used to keep rising while idle)');
  t.equal(later.lag.currentMs, 0);
});

t.test('regression: large batches on several partitions at once — fetch replies stay under the NATS payload limit (the queue actor crashed)', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'ingestion.event-driven' } });
  const pad = 'x'.repeat(600);
  const body = (client: string) => ({ metrics: Array.from({ length: 1_000 }, (_, i) => ({ name: 'big_probe', value: i, timestamp: i, tags: { client, i: String(i), pad } })) });
  // Clients whose ids hash to different partitions, each request ~700 KB.
  const clients = ['tenant-0', 'tenant-1', 'tenant-2', 'tenant-3', 'tenant-4', 'tenant-5'];
  for (let round = 0; round < 2; round++) {
    const replies = await Promise.all(clients.map((client) => postJson(platform.ingestionPort, '/metrics', body(client), { authorization: client })));
    t.same(replies.map((r) => r.status), clients.map(() => 200), `round ${round}: all acknowledged`);
  }
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.info().catch(() => undefined))?.stats.samples === clients.length * 1_000, 30_000), 'every sample stored (distinct series per client, same timestamps each round)');
  const queue = platform.processStatus().tree.children?.find((c) => c.id === 'queue');
  t.equal(queue?.restarts, 0, 'the queue actor never crashed');
});

t.test('a swap to a slot whose actor does not run here is refused with a clear error', async (t) => {
  const platform = await startPlatform(t, { actors: ['control', 'queue'], plugins: { 'ingestion.server': 'craft0.http' } });
  await t.rejects(platform.bus.request(SUBJECTS.controlSwap, { slot: 'query.evaluator', plugin: 'craft0.full-scan', options: { x: 1 } }), { code: 'CRAFT_SLOT_NOT_HOSTED' });
});
