/**
 * Craft #5, phase 3 (`alerting.channels`) through a real platform, against local HTTP servers
 * standing in for a webhook receiver, Slack and PagerDuty: they fail, throttle and recover.
 * Retries happen on 5xx and 429 (after its Retry-After) only, a 400 is given up on at once,
 * every copy of a notification carries the same id and dedup key, a delivery cut by a crash
 * of the notifier actor is made again after the restart, a crash of the alerting actor cuts no
 * delivery, and notifications queued while no notifier runs are delivered once one starts.
 */
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { startPlatform } from './helpers/platform.js';
import { eventually } from './helpers/nats.js';
import { SUBJECTS, killSubject } from '../core/subjects.js';
import type { ChannelStats } from '../core/slots/alerting.js';
import type { NotifierStats } from '../actors/notifier.js';
import { pagerDutyDedupKey } from '../plugins/alerting/p3-delivery/pagerduty.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  atMs: number;
}

/** A local receiver whose answer to each request `respond` decides (status, headers; 'hang' never answers). */
async function receiver(t: Test, respond: (r: Received, index: number) => { status: number; headers?: Record<string, string> } | 'hang'): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.on('data', (d: Buffer) => (text += d.toString()));
    request.on('end', () => {
      const r: Received = { path: request.url ?? '/', headers: request.headers, body: JSON.parse(text) as Record<string, unknown>, atMs: Date.now() };
      received.push(r);
      const answer = respond(r, received.length - 1);
      if (answer === 'hang') {
        hanging.push(response);
        return;
      }
      response.writeHead(answer.status, answer.headers ?? {}).end(answer.status >= 400 ? '{"error":"refused"}' : '{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const response of hanging) response.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, received };
}

async function postAlerts(port: number, alerts: unknown[]): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
  if (response.status !== 200) throw new Error(`posting alerts answered ${response.status}`);
}

const LIFECYCLE = { id: 'alerting.lifecycle', options: { groupWaitMs: 0, groupIntervalMs: 1_000, repeatIntervalMs: 3_600_000 } };
const FAST = { backoffBaseMs: 100, backoffMaxMs: 400 };

t.test('webhook, Slack and PagerDuty: retried on 5xx and 429 only, given up on a 400, one dedup key per group', async (t) => {
  // The webhook fails twice with 503, then takes it; Slack throttles once (429, Retry-After 1 s); PagerDuty takes everything.
  const webhook = await receiver(t, (_r, i) => ({ status: i < 2 ? 503 : 200 }));
  const slack = await receiver(t, (_r, i) => (i === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 }));
  const pagerduty = await receiver(t, () => ({ status: 202 }));
  const refusing = await receiver(t, () => ({ status: 400 }));
  const platform = await startPlatform(t, {
    plugins: {
      'ingestion.server': 'craft0.http',
      'alerting.lifecycle': LIFECYCLE,
      'alerting.delivery': {
        id: 'alerting.channels',
        options: {
          ...FAST,
          externalUrl: 'http://craft.example:9093',
          receivers: [{ name: 'default', webhook: [{ url: `${webhook.url}/hook` }, { url: `${refusing.url}/hook` }], slack: [{ url: `${slack.url}/slack`, channel: '#ops' }], pagerduty: [{ routingKey: 'R0UT1NG', url: `${pagerduty.url}/v2/enqueue` }] }],
        },
      },
    },
  });
  await postAlerts(platform.alertingPort, [{ labels: { alertname: 'DiskFull', instance: 'db-1', severity: 'warning' }, annotations: { summary: 'disk 99%' }, endsAt: new Date(Date.now() + 600_000).toISOString() }]);

  t.ok(await eventually(() => webhook.received.length >= 3 && slack.received.length >= 2 && pagerduty.received.length >= 1, 20_000), 'every channel got it in the end');
  t.equal(webhook.received.length, 3, 'the webhook: two 503s, then accepted — nothing after that');
  const ids = new Set(webhook.received.map((r) => r.headers['idempotency-key']));
  t.equal(ids.size, 1, 'every attempt carries the same notification id');
  t.match(webhook.received[2]!.body, { version: '4', status: 'firing', receiver: 'default', groupKey: '{}:{alertname="DiskFull"}', externalURL: 'http://craft.example:9093', alerts: [{ status: 'firing', labels: { alertname: 'DiskFull', instance: 'db-1' } }] });
  t.ok(slack.received[1]!.atMs - slack.received[0]!.atMs >= 900, `Slack retried after its Retry-After (${slack.received[1]!.atMs - slack.received[0]!.atMs} ms)`);
  t.match(slack.received[1]!.body, { channel: '#ops', text: '[FIRING:1] DiskFull', attachments: [{ color: 'danger' }] });
  t.match(pagerduty.received[0]!.body, { routing_key: 'R0UT1NG', event_action: 'trigger', dedup_key: pagerDutyDedupKey('default:{alertname="DiskFull"}'), payload: { severity: 'warning', source: 'db-1', summary: '[FIRING:1] DiskFull — disk 99%' } });
  await new Promise((r) => setTimeout(r, 1_000));
  t.equal(refusing.received.length, 1, 'a 400 is not retried');

  // Resolved by its sender: PagerDuty gets a resolve with the same dedup key.
  await postAlerts(platform.alertingPort, [{ labels: { alertname: 'DiskFull', instance: 'db-1', severity: 'warning' }, endsAt: new Date(Date.now() - 1_000).toISOString() }]);
  t.ok(await eventually(() => pagerduty.received.length >= 2, 20_000), 'resolve delivered');
  t.same(pagerduty.received[1]!.body, { routing_key: 'R0UT1NG', event_action: 'resolve', dedup_key: pagerduty.received[0]!.body.dedup_key });

  const stats = (await platform.bus.request<NotifierStats>(SUBJECTS.notifierStats, {})).channels;
  const of = (name: string): ChannelStats => stats.find((s) => s.channel === name)!;
  t.match(of('default/0:webhook'), { sent: 2, retried: 2, failed: 0 });
  t.match(of('default/1:webhook'), { sent: 0, failed: 2 });
  t.match(of('default/2:slack'), { sent: 2, retried: 1 });
  t.match(of('default/3:pagerduty'), { sent: 2, retried: 0, failed: 0 });
});

/** One webhook receiver as the delivery plugin's only channel. */
const webhookDelivery = (url: string, options: Record<string, unknown> = {}): { id: string; options: Record<string, unknown> } => ({
  id: 'alerting.channels',
  options: { ...FAST, ...options, receivers: [{ name: 'default', webhook: [{ url: `${url}/hook` }] }] },
});

/**
 * A platform whose webhook receiver holds the first attempt of an alert's notification; once it
 * has it, `actor` is killed and has restarted. Then the receiver answers 200.
 */
async function crashMidDelivery(t: Test, actor: 'notifier' | 'alerting', alertname: string, delivery: Record<string, unknown>, config: Record<string, unknown> = {}) {
  let hang = true;
  const webhook = await receiver(t, () => (hang ? 'hang' : { status: 200 }));
  const platform = await startPlatform(t, { ...config, plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': LIFECYCLE, 'alerting.delivery': webhookDelivery(webhook.url, delivery) } });
  await postAlerts(platform.alertingPort, [{ labels: { alertname, instance: 'a' }, endsAt: new Date(Date.now() + 600_000).toISOString() }]);
  t.ok(await eventually(() => webhook.received.length === 1, 20_000), 'the first attempt reached the receiver, which holds it');
  platform.bus.publish(killSubject(actor), {});
  t.ok(await eventually(() => platform.processStatus().tree.children?.find((c) => c.id === actor)?.restarts === 1, 20_000), `${actor} restarted`);
  hang = false;
  return { webhook, platform };
}

t.test('a delivery cut by a crash of the notifier is made again after the restart, with the same id', async (t) => {
  const { webhook } = await crashMidDelivery(t, 'notifier', 'Crash', { timeoutMs: 60_000 }, { alerting: { deliveryAckWaitMs: 2_000 } });
  t.ok(await eventually(() => webhook.received.length >= 2, 20_000), 'delivered again after the restart');
  const ids = new Set(webhook.received.map((r) => r.headers['idempotency-key']));
  t.equal(ids.size, 1, 'with the same notification id');
  t.equal((webhook.received.at(-1)!.body as { alerts: unknown[] }).alerts.length, 1);
  // The restarted lifecycle did not make a second notification of its own for the unchanged group.
  await new Promise((r) => setTimeout(r, 2_500));
  t.equal(new Set(webhook.received.map((r) => r.headers['idempotency-key'])).size, 1, 'no new notification after the restart');
});

t.test('a crash of the alerting actor cuts no delivery: the notifier goes on sending', async (t) => {
  const { webhook, platform } = await crashMidDelivery(t, 'alerting', 'Apart', { timeoutMs: 4_000 });
  // The held attempt times out after 4 s and the notifier retries on its own; it never restarted.
  t.ok(await eventually(() => webhook.received.length >= 2, 20_000), 'retried by the notifier after the held attempt timed out');
  t.equal(platform.processStatus().tree.children?.find((c) => c.id === 'notifier')?.restarts, 0, 'the notifier did not restart');
  t.equal(new Set(webhook.received.map((r) => r.headers['idempotency-key'])).size, 1, 'one notification, its copies with one id');
  const stats = await platform.bus.request<NotifierStats>(SUBJECTS.notifierStats, {});
  t.match(stats.channels.find((c) => c.channel === 'default/0:webhook'), { sent: 1, retried: 1, failed: 0 });
  t.equal(stats.expanded, 1);
});

t.test('with no notifier running, notifications wait in the delivery queue; a notifier started in another process delivers them', async (t) => {
  const webhook = await receiver(t, () => ({ status: 200 }));
  const delivery = webhookDelivery(webhook.url);
  const platform = await startPlatform(t, {
    actors: ['control', 'queue', 'storage', 'query', 'alerting', 'ingestion'],
    plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': LIFECYCLE, 'alerting.delivery': delivery },
  });
  await postAlerts(platform.alertingPort, [
    { labels: { alertname: 'Waiting', instance: 'a' }, endsAt: new Date(Date.now() + 600_000).toISOString() },
    { labels: { alertname: 'Waiting2', instance: 'b' }, endsAt: new Date(Date.now() + 600_000).toISOString() },
  ]);
  t.ok(await eventually(async () => (await platform.bus.request<{ notifications: number }>(SUBJECTS.alertingRules, {})).notifications === 2, 10_000), 'two notifications made and queued');
  await new Promise((r) => setTimeout(r, 1_000));
  t.equal(webhook.received.length, 0, 'nothing sent without a notifier');
  const notifier = await startPlatform(t, { actors: ['notifier'], nats: platform.natsToJoin(), processName: 'notifier', plugins: { 'alerting.delivery': delivery } });
  t.ok(await eventually(() => webhook.received.length === 2, 20_000), 'both delivered by the late notifier');
  t.same(webhook.received.map((r) => (r.body as { groupLabels: { alertname: string } }).groupLabels.alertname).sort(), ['Waiting', 'Waiting2']);
  t.equal((await notifier.bus.request<NotifierStats>(SUBJECTS.notifierStats, {})).expanded, 2);
});

t.test('email over SMTP to a local server: a 4xx reply is retried, a 5xx is not', async (t) => {
  const { SMTPServer } = await import('smtp-server');
  const mails: { to: string[]; raw: string }[] = [];
  let tempFailures = 1;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (address.address === 'nobody@example.com') return callback(Object.assign(new Error('no such user'), { responseCode: 550 }));
      callback();
    },
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (d: Buffer) => (raw += d.toString()));
      stream.on('end', () => {
        if (tempFailures > 0) {
          tempFailures -= 1;
          return callback(Object.assign(new Error('try again later'), { responseCode: 451 }));
        }
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.server.address() as { port: number }).port;
  const smtp = { host: '127.0.0.1', port };
  const platform = await startPlatform(t, {
    plugins: {
      'ingestion.server': 'craft0.http',
      'alerting.lifecycle': LIFECYCLE,
      'alerting.delivery': { id: 'alerting.channels', options: { ...FAST, receivers: [{ name: 'default', email: [{ to: ['oncall@example.com'], from: 'alerts@example.com', smtp }, { to: 'nobody@example.com', from: 'alerts@example.com', smtp }] }] } },
    },
  });
  await postAlerts(platform.alertingPort, [{ labels: { alertname: 'Mail', instance: 'm-1' }, annotations: { summary: 'mail me' }, endsAt: new Date(Date.now() + 600_000).toISOString() }]);
  t.ok(await eventually(() => mails.length === 1, 20_000), 'delivered after a 451');
  t.same(mails[0]!.to, ['oncall@example.com']);
  t.match(mails[0]!.raw, /Subject: \[FIRING:1\] Mail/);
  t.match(mails[0]!.raw, /mail me/);
  t.match(mails[0]!.raw, /X-Craft-Notification: /);
  const stats = await eventually(async () => {
    const channels = (await platform.bus.request<NotifierStats>(SUBJECTS.notifierStats, {})).channels;
    return channels.find((c) => c.channel === 'default/1:email')?.failed === 1;
  }, 10_000);
  t.ok(stats, 'a 550 for the recipient is a permanent failure');
  const channels = (await platform.bus.request<NotifierStats>(SUBJECTS.notifierStats, {})).channels;
  t.match(channels.find((c) => c.channel === 'default/0:email'), { sent: 1, retried: 1, failed: 0 });
});
