/**
 * The webhook payload (Alertmanager's version 4) built from our notification, compared field by
 * field with what Debian's `prometheus-alertmanager` 0.25 sends to a local receiver for the same
 * alerts: same keys, same values — fingerprints, group key, common labels and annotations, Go's
 * time format. Skipped, saying so, when no Alertmanager binary is found; `.ci/run` installs it.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary } from './helpers/binaries.js';
import { freePort } from '../actors/platform.js';
import { pdeathsigPrefix } from '../core/nats/server.js';
import { stopChild } from '../core/child-process.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import type { Notification } from '../core/slots/alerting.js';
import { foldLifecycle, initialLifecycleState } from '../plugins/alerting/shared/lifecycle.js';
import { GO_ZERO_TIME, goTime, webhookPayload, type WebhookPayload } from '../plugins/alerting/p3-delivery/webhook-payload.js';
import { eventually, tempDir } from './helpers/nats.js';
import { handleAlertingApi } from '../actors/alerting-api.js';

const { registry } = await PluginRegistry.load();

const alertmanager = findBinary('ALERTMANAGER_BIN', 'prometheus-alertmanager', 'alertmanager');

t.test("Go's time format", async (t) => {
  t.equal(goTime(Date.parse('2026-12-04T20:40:00.000Z')), '2026-12-04T20:40:00Z');
  t.equal(goTime(Date.parse('2026-12-04T20:40:00.120Z')), '2026-12-04T20:40:00.12Z');
  t.equal(goTime(0), GO_ZERO_TIME);
});

t.test('our webhook payload equals Alertmanager 0.25\'s for the same alerts', { skip: alertmanager === undefined ? 'prometheus-alertmanager not installed (apt-get install -y prometheus-alertmanager)' : false }, async (t) => {
  const dir = tempDir(t, 'craft-alertmanager-');
  const bodies: WebhookPayload[] = [];
  const receiver = createServer((request, response) => {
    let text = '';
    request.on('data', (d: Buffer) => (text += d.toString()));
    request.on('end', () => {
      bodies.push(JSON.parse(text) as WebhookPayload);
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  const receiverPort = (receiver.address() as { port: number }).port;
  const amPort = await freePort();
  const externalUrl = `http://127.0.0.1:${amPort}`;
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    [
      'route:',
      '  receiver: hook',
      '  group_by: [alertname]',
      '  group_wait: 1s',
      '  group_interval: 1s',
      '  repeat_interval: 1h',
      'receivers:',
      '  - name: hook',
      '    webhook_configs:',
      `      - url: http://127.0.0.1:${receiverPort}/hook`,
      '        send_resolved: true',
      '',
    ].join('\n'),
  );
  const [command, ...prefix] = [...pdeathsigPrefix(), alertmanager!];
  const child = spawn(command!, [...prefix, `--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${amPort}`, `--web.external-url=${externalUrl}`, '--cluster.listen-address='], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8_000)));
  t.teardown(() => stopChild(child, 10_000));
  t.ok(await eventually(async () => (await fetch(`${externalUrl}/-/ready`).catch(() => undefined))?.status === 200, 20_000), 'Alertmanager ready', { log });

  const startsAtMs = Math.floor(Date.now() / 1_000) * 1_000 - 10_120;
  const alerts = [
    { labels: { alertname: 'DiskFull', instance: 'db-1', severity: 'page' }, annotations: { summary: 'disk 99%', runbook: 'r/disk' }, startsAt: new Date(startsAtMs).toISOString(), generatorURL: 'http://prom:9090/graph?g0.expr=disk' },
    { labels: { alertname: 'DiskFull', instance: 'db-2', severity: 'page' }, annotations: { summary: 'disk 97%', runbook: 'r/disk' }, startsAt: new Date(startsAtMs + 500).toISOString(), generatorURL: 'http://prom:9090/graph?g0.expr=disk' },
  ];
  const posted = await fetch(`${externalUrl}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
  t.equal(posted.status, 200);
  t.ok(await eventually(() => bodies.length > 0, 20_000), 'Alertmanager sent its webhook', { log });
  const theirs = bodies[0]!;

  // Ours: the same alerts through our lifecycle (as if posted to our API), grouped the same way.
  const notifications: Notification[] = [];
  let state = initialLifecycleState();
  const lifecycle = registry.instantiate('alerting.lifecycle', 'alerting.lifecycle', { log: createLogger('test') }, { receiver: 'hook', groupBy: ['alertname'], groupWaitMs: 0 });
  lifecycle.start(state, {
    clock: systemClock,
    log: createLogger('test'),
    emit: (event) => {
      state = foldLifecycle(state, event);
      if (event.type === 'notified' && event.notification.alerts.length > 0) notifications.push(event.notification);
    },
  });
  t.teardown(() => lifecycle.stop());
  lifecycle.receive(alerts.map((a) => ({ labels: a.labels, annotations: a.annotations, startsAtMs: Date.parse(a.startsAt), generatorUrl: a.generatorURL })));
  t.ok(await eventually(() => notifications.length > 0, 5_000), 'we notified');
  const ours = webhookPayload(notifications[0]!, externalUrl);

  const byFingerprint = (p: WebhookPayload): WebhookPayload => ({ ...p, alerts: [...p.alerts].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1)) });
  t.same(Object.keys(ours).sort(), Object.keys(theirs).sort(), 'the same top-level fields');
  t.same(byFingerprint(ours), byFingerprint(theirs), 'the same values, field by field');

  // The read side of the API v2 (what Grafana's Alertmanager pages and amtool read): the same answers for the same alerts.
  const host = { lifecycle: () => lifecycle, rules: () => ({}), reloadRules: async () => ({}), config: () => ({ receiver: 'hook' }), nowMs: () => Date.now(), startedAtMs: Date.now(), version: '0.25.0' };
  const ask = async (path: string): Promise<{ theirs: unknown; ours: unknown }> => {
    const answer = await handleAlertingApi(host, 'GET', new URL(`http://localhost${path}`), undefined);
    t.equal(answer.status, 200, `ours: GET ${path}`);
    return { theirs: await (await fetch(`${externalUrl}${path}`)).json(), ours: JSON.parse(answer.body) };
  };
  type Gettable = Record<string, unknown> & { fingerprint: string; startsAt: string };
  // Times are compared as instants (Go and JavaScript print fractions differently); updatedAt and endsAt (now + resolve timeout) are each side's own.
  const comparable = (a: Gettable): Record<string, unknown> => ({ ...a, startsAt: Date.parse(a.startsAt), updatedAt: undefined, endsAt: undefined });
  const groups = await ask('/api/v2/alerts/groups');
  type Group = { labels: Record<string, string>; receiver: { name: string }; alerts: Gettable[] };
  const shape = (gs: unknown): unknown => (gs as Group[]).map((g) => ({ keys: Object.keys(g).sort(), labels: g.labels, receiver: g.receiver, alerts: [...g.alerts].sort((x, y) => (x.fingerprint < y.fingerprint ? -1 : 1)).map((a) => ({ keys: Object.keys(a).sort(), ...comparable(a) })) }));
  t.same((groups.theirs as Group[]).map((g) => g.alerts.length), [2], 'Alertmanager has one group of both alerts');
  t.same(shape(groups.ours), shape(groups.theirs), 'GET /api/v2/alerts/groups: the same groups, labels, receiver and alerts, field by field');
  const filtered = await ask(`/api/v2/alerts?filter=${encodeURIComponent('instance="db-1"')}&filter=${encodeURIComponent('severity=~"pa.*"')}`);
  const fingerprints = (list: unknown): string[] => (list as Gettable[]).map((a) => a.fingerprint).sort();
  t.same(fingerprints(filtered.ours), fingerprints(filtered.theirs), 'filter matchers select the same alerts');
  t.equal(fingerprints(filtered.ours).length, 1);
  const none = await ask('/api/v2/alerts?receiver=nobody');
  t.same([none.ours, none.theirs], [[], []], 'a receiver regex matching no receiver: nothing, on both');
  const silenced = await ask('/api/v2/alerts?active=false');
  t.same([silenced.ours, silenced.theirs], [[], []], 'active=false: nothing (none is silenced or inhibited), on both');
  const receivers = await ask('/api/v2/receivers');
  t.same(receivers.ours, receivers.theirs, 'GET /api/v2/receivers');
});
