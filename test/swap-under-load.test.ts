/**
 * Hot swap under load loses nothing: while clients post batches, every slot that holds
 * data is swapped (store, queue, ingestion server), and afterwards every acknowledged
 * sample is stored exactly once.
 */
import t from 'tap';
import { startPlatform } from './helpers/platform.js';
import { LoadRun } from '../cli/load/generator.js';
import { StorageClient } from '../core/storage/client.js';
import { QueueClient } from '../core/queue/protocol.js';
import { SUBJECTS } from '../core/subjects.js';
import { eventually } from './helpers/nats.js';
import type { HandoverReply } from '../core/platform-context.js';

t.test('swap store, queue and server under load: stored = acknowledged', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' } });
  const load = new LoadRun({
    id: 'swap',
    url: `http://127.0.0.1:${platform.ingestionPort}`,
    clients: 8,
    mode: 'closed',
    durationMs: 6_000,
    batch: 5,
    keepAlive: true,
    metric: { name: 'swapped', value: 1, jitter: 1, type: 'gauge', tags: {}, timestamps: 'client' },
    timeoutMs: 10_000,
    runLabel: 'swap-test',
  });
  const swap = (slot: string, plugin: string, options: Record<string, unknown> = {}) =>
    platform.bus.request<HandoverReply>(SUBJECTS.controlSwap, { slot, plugin, options }, { timeoutMs: 60_000 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  await sleep(800);
  t.match(await swap('storage.engine', 'craft0.jsonl-store'), { from: 'storage.gorilla', to: 'craft0.jsonl-store' });
  await sleep(700);
  t.match(await swap('queue.log', 'craft0.memory-queue'), { from: 'queue.jetstream' });
  await sleep(700);
  t.match(await swap('ingestion.server', 'craft0.http', { generation: 2 }), { to: 'craft0.http' });
  await sleep(700);
  t.match(await swap('queue.log', 'queue.jetstream'), { from: 'craft0.memory-queue' });
  await sleep(700);
  t.match(await swap('storage.engine', 'storage.time-index'), { from: 'craft0.jsonl-store', to: 'storage.time-index' });
  const result = await load.done;
  t.ok(result.ok > 100, `load ran (${result.ok} acknowledged requests)`);
  t.equal(result.samplesAmbiguous, 0, 'no request ended without an answer or with a 5xx');

  const storage = new StorageClient(platform.bus);
  let stored = -1;
  const settled = await eventually(async () => {
    stored = (await storage.count({ matchers: [{ name: 'run', op: '=', value: 'swap-test' }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples;
    return stored === result.samplesAcknowledged;
  }, 20_000, 200);
  t.ok(settled, `stored ${stored} = acknowledged ${result.samplesAcknowledged}`);
  const queue = await new QueueClient(platform.bus).info();
  t.equal(queue.epochs.length, 1, 'old queue epochs drained and closed');
  t.equal(queue.epoch, 3);
});

t.test('regression: an old queue epoch filled by direct appends is kept until it is consumed', async (t) => {
  // No storage yet: nothing consumes. Batches go straight to JetStream (epoch 1), the actor never sees them.
  const platform = await startPlatform(t, { actors: ['control', 'queue', 'ingestion'], plugins: { 'ingestion.server': 'ingestion.event-driven' } });
  for (let i = 0; i < 20; i++) {
    const response = await fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`, { method: 'POST', body: JSON.stringify({ metrics: [{ name: 'kept', value: i, timestamp: 1_000 + i }] }) });
    t.equal(response.status, 200);
  }
  await platform.bus.request(SUBJECTS.controlSwap, { slot: 'queue.log', plugin: 'craft0.memory-queue' });
  const queue = new QueueClient(platform.bus);
  const info = await queue.info();
  t.match(info.epochs, [{ epoch: 1, draining: true }, { epoch: 2, draining: false }], 'epoch 1 is kept, draining');
  t.ok(info.epochs[0]!.depth >= 20 || info.depth >= 20, JSON.stringify(info));
  // Storage joins from another platform process on the same NATS: it reads epoch 1 out, then the epoch goes away.
  const storageHost = await startPlatform(t, { actors: ['storage'], nats: platform.natsToJoin(), processName: 'store' });
  const storage = new StorageClient(storageHost.bus);
  t.ok(await eventually(async () => (await storage.info()).stats.samples === 20, 20_000), 'all 20 samples stored');
  t.ok(await eventually(async () => (await queue.info()).epochs.length === 1, 20_000), 'epoch 1 drained and closed after it was consumed');
});
