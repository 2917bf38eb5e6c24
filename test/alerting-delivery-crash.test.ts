/**
 * The durable delivery queue (actors/notifier-queue.ts) with the real `alerting.channels`
 * plugin, a real nats-server and a local receiver that answers 200, 500, 429 or hangs past the
 * channel's timeout, following a generated script. Mid-delivery, the notifier is killed — its
 * NATS connection closed without a goodbye, sends in flight abandoned — and a new one started on
 * a new connection, any number of times — also while it expands queued notifications into
 * their channels. Property: every notification queued is delivered (a
 * 2xx answer) at least once on every channel, every copy of a notification carries its id
 * (webhook `Idempotency-Key`) and its group's dedup key (PagerDuty), and nothing else arrives.
 */
import t from 'tap';
import fc from 'fast-check';
import { createServer, type ServerResponse } from 'node:http';
import { DeliveryQueue, DELIVERY_STREAM, NOTIFICATION_STREAM, queueNotification } from '../actors/notifier-queue.js';
import { Bus } from '../core/nats/bus.js';
import { createLogger, setLogLevel } from '../core/log.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import type { AlertDelivery, Notification } from '../core/slots/alerting.js';
import { pagerDutyDedupKey } from '../plugins/alerting/p3-delivery/pagerduty.js';
import { eventually, startNats } from './helpers/nats.js';

const { registry } = await PluginRegistry.load();
const log = createLogger('test');
setLogLevel('error');

type Answer = 200 | 500 | 429 | 'hang';

t.test('killing the notifier mid-delivery, any number of times: every notification delivered at least once, copies keep their id and dedup key', async (t) => {
  const nats = await startNats(t);
  // The receiver: a script of answers, taken in turn by every request of the run.
  let script: Answer[] = [200];
  let turn = 0;
  const got: { channel: 'webhook' | 'pagerduty'; n: string; id: string; key: string; ok: boolean }[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer((request, response) => {
    let text = '';
    request.on('data', (d: Buffer) => (text += d.toString()));
    request.on('end', () => {
      const answer = script[turn++ % script.length]!;
      const body = JSON.parse(text) as { dedup_key?: string; groupKey?: string; alerts?: { labels: Record<string, string> }[]; payload?: { custom_details: { firing: { labels: Record<string, string> }[] } } };
      const pd = request.url === '/pd';
      // Which notification a copy is: the `n` label of its one alert.
      const entry = pd
        ? { channel: 'pagerduty' as const, n: body.payload!.custom_details.firing[0]!.labels.n!, id: '', key: body.dedup_key!, ok: answer === 200 }
        : { channel: 'webhook' as const, n: body.alerts![0]!.labels.n!, id: String(request.headers['idempotency-key']), key: body.groupKey!, ok: answer === 200 };
      got.push(entry);
      if (answer === 'hang') {
        hanging.add(response);
        setTimeout(() => (hanging.delete(response), response.destroy()), 1_500);
        return;
      }
      response.writeHead(answer, answer === 429 ? { 'retry-after': '0' } : {}).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  t.teardown(async () => {
    for (const r of hanging) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const delivery: AlertDelivery = registry.instantiate('alerting.delivery', 'alerting.channels', { log }, {
    receivers: [{ name: 'default', webhook: [{ url: `${url}/hook` }], pagerduty: [{ routingKey: 'K', url: `${url}/pd` }], ratePerMinute: 60_000 }],
    backoffBaseMs: 50,
    backoffMaxMs: 200,
    timeoutMs: 400,
  });
  t.teardown(() => delivery.close());
  const admin = await Bus.connect(nats.url, 'admin');
  t.teardown(() => admin.close());

  let run = 0;
  let kills = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 6 }),
      fc.array(fc.constantFrom<Answer>(200, 200, 500, 429, 'hang'), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 600 }), { maxLength: 3 }),
      async (count, answers, killAfterMs) => {
        run += 1;
        // A fresh queue each run; the receiver eventually answers 200 (the script ends with it).
        const jsm = await admin.jetstreamManager();
        await jsm.streams.delete(DELIVERY_STREAM).catch(() => undefined);
        await jsm.streams.delete(NOTIFICATION_STREAM).catch(() => undefined);
        script = [...answers, 200];
        turn = 0;
        got.length = 0;
        const notifications: Notification[] = Array.from({ length: count }, (_, i) => ({
          id: `g${i % 2}/${run}-${i}`,
          groupKey: `g${i % 2}`,
          receiver: 'default',
          groupLabels: { alertname: `A${i % 2}` },
          status: 'firing',
          alerts: [{ fingerprint: `f${i}`, status: 'firing', labels: { alertname: `A${i % 2}`, n: `${run}-${i}` }, annotations: {}, startsAtMs: 1, endsAtMs: 0, value: 1 }],
          atMs: Date.now(),
        }));
        const open = async (): Promise<{ bus: Bus; queue: DeliveryQueue }> => {
          const bus = await Bus.connect(nats.url, `notifier-${run}`);
          const queue = new DeliveryQueue(bus, log, () => delivery, 1_000);
          await queue.start();
          return { bus, queue };
        };
        let current = await open();
        for (const n of notifications) await queueNotification(admin, n);
        for (const delay of killAfterMs) {
          await new Promise((r) => setTimeout(r, delay));
          // The crash: the connection goes without draining; acknowledgements not yet sent are lost.
          await current.bus.nc.close();
          void current.queue.stop();
          kills += 1;
          current = await open();
        }
        const copies = (n: Notification, channel: 'webhook' | 'pagerduty'): typeof got => got.filter((g) => g.channel === channel && g.n === n.alerts[0]!.labels.n);
        const delivered = (): boolean => notifications.every((n) => copies(n, 'webhook').some((g) => g.ok) && copies(n, 'pagerduty').some((g) => g.ok));
        const ok = await eventually(delivered, 30_000, 50);
        await current.queue.stop();
        await current.bus.close();
        if (!ok) throw new Error(`not everything delivered: ${JSON.stringify(got)}`);
        for (const n of notifications) {
          for (const g of copies(n, 'webhook')) if (g.id !== n.id) throw new Error(`a webhook copy of ${n.id} with Idempotency-Key ${g.id}`);
          for (const g of copies(n, 'pagerduty')) if (g.key !== pagerDutyDedupKey(n.groupKey)) throw new Error(`a PagerDuty copy of ${n.id} with dedup key ${g.key}`);
        }
        const known = new Set(notifications.map((n) => n.alerts[0]!.labels.n));
        for (const g of got) if (!known.has(g.n)) throw new Error(`a copy of no notification queued in this run: ${JSON.stringify(g)}`);
      },
    ),
    { numRuns: 12 },
  );
  t.ok(kills > 0, `the notifier was killed ${kills} time(s) over the runs`);
});
