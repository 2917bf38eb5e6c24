/**
 * Issue 9, found when measured: restarting on a data directory with a long backlog, the queue
 * actor crashed five times (`TimeoutError: timeout`) — JetStream purging the consumed prefix of
 * a long stream outlasted the request timeout, and the trim ran inside the commit handler, where
 * an error that is not a CraftError is a crash. Trimming is housekeeping now: off the commit's
 * path, and a failure is logged and retried.
 *
 * The log here is the real JetStream log, on a real nats-server, whose trims fail the way a
 * timed-out purge does (a plain Error, not a CraftError): the only thing changed is that.
 */
import t from 'tap';
import { Platform } from '../actors/platform.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import { makeConfig } from '../core/config/schema.js';
import type { QueueLog } from '../core/slots/queue.js';
import { QueueClient } from '../core/queue/protocol.js';
import { StorageClient } from '../core/storage/client.js';
import { eventually, tempDir } from './helpers/nats.js';
import { postJson } from './helpers/platform.js';

t.test('trims that time out neither fail commits nor crash the queue actor; storage gets everything', async (t) => {
  const { registry } = await PluginRegistry.load();
  const jetstream = registry.get('queue.jetstream')!;
  let trimsFailed = 0;
  registry.register({
    ...jetstream,
    id: 'test.jetstream-slow-purge',
    summary: 'queue.jetstream whose purges time out',
    create: (context: unknown, options: unknown) => {
      const log = (jetstream.create as (c: unknown, o: unknown) => QueueLog)(context, options);
      log.trim = async () => {
        trimsFailed += 1;
        throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
      };
      return log;
    },
  });
  const config = makeConfig({
    dataDir: tempDir(t),
    http: { host: '127.0.0.1', ingestionPort: 0, queryPort: 0, alertingPort: 0 },
    plugins: { 'queue.log': { id: 'test.jetstream-slow-purge', options: {} }, 'ingestion.server': 'craft0.http' },
  });
  const platform = await Platform.start(config, { registry });
  t.teardown(() => platform.stop());

  const now = Date.now();
  for (let request = 0; request < 30; request++) {
    const metrics = Array.from({ length: 10 }, (_, i) => ({ name: 'trimmed', value: i, tags: { i: String(i) }, timestamp: now - 60_000 + request * 100 }));
    t.equal((await postJson(platform.ingestionPort, '/metrics', { metrics })).status, 200);
    await new Promise((r) => setTimeout(r, 40)); // spread over more than one trim interval
  }
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.info()).stats.samples === 300, 20_000), 'all 300 samples stored: every commit was answered');
  t.ok(await eventually(() => trimsFailed > 0, 10_000), 'trims were tried and failed');
  const info = await new QueueClient(platform.bus).info();
  t.ok(info.trimFailures > 0, `the queue counts them (${info.trimFailures})`);
  const queue = platform.processStatus().tree.children?.find((c) => c.id === 'queue');
  t.equal(queue?.restarts, 0, 'the queue actor never crashed');
  t.equal(queue?.state, 'running');
});
