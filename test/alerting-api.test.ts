/**
 * The alerting API (Alertmanager's v2 subset and our own), over HTTP against a real platform:
 * alerts posted as Prometheus posts them fire, group and notify, resolve when their sender says
 * so; silences through the v2 API mute them; bad input gets a 4xx naming the problem.
 *
 * Then Debian's `prometheus` 2.42 itself, with an `alerting:` section pointing at the platform:
 * a rule it evaluates fires and its notification comes out of our lifecycle. Skipped, saying so,
 * when no `prometheus` binary is found.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary } from './helpers/binaries.js';
import { startPlatform } from './helpers/platform.js';
import { eventually, tempDir } from './helpers/nats.js';
import { freePort } from '../actors/platform.js';
import { pdeathsigPrefix } from '../core/nats/server.js';
import { stopChild } from '../core/child-process.js';
import { SUBJECTS } from '../core/subjects.js';
import type { Notification, Silence } from '../core/slots/alerting.js';

async function call(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: response.status, body: text };
  }
}

const LIFECYCLE = { id: 'alerting.lifecycle', options: { groupWaitMs: 100, groupIntervalMs: 500, repeatIntervalMs: 3_600_000, groupBy: ['alertname'] } };

t.test('Alertmanager API v2: posted alerts fire and resolve, silences mute them, bad input is refused', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': LIFECYCLE } });
  const port = platform.alertingPort;
  const notifications: Notification[] = [];
  const subscription = platform.bus.listen<Notification>(SUBJECTS.alertingNotifications, (n) => notifications.push(n));
  t.teardown(() => subscription.unsubscribe());

  t.same(await call(port, 'GET', '/-/ready'), { status: 200, body: 'OK' });
  t.match((await call(port, 'GET', '/api/v2/status')).body, { cluster: { status: 'disabled' }, versionInfo: { version: '0.25.0' } });

  const soon = new Date(Date.now() + 60_000).toISOString();
  const posted = await call(port, 'POST', '/api/v2/alerts', [
    { labels: { alertname: 'DiskFull', instance: 'db-1' }, annotations: { summary: 'disk 99%' }, startsAt: new Date().toISOString(), endsAt: soon, generatorURL: 'http://prom/graph' },
    { labels: { alertname: 'DiskFull', instance: 'db-2' }, endsAt: soon },
  ]);
  t.equal(posted.status, 200);
  t.ok(await eventually(() => notifications.length === 1, 10_000), 'one notification for the group');
  t.same(notifications[0]!.alerts.map((a) => a.labels.instance).sort(), ['db-1', 'db-2']);
  const listed = (await call(port, 'GET', '/api/v2/alerts')).body as { labels: Record<string, string>; status: { state: string }; generatorURL: string; fingerprint: string }[];
  t.equal(listed.length, 2);
  t.match(listed.find((a) => a.labels.instance === 'db-1'), { status: { state: 'active' }, generatorURL: 'http://prom/graph' });

  // A silence through the v2 API.
  const created = await call(port, 'POST', '/api/v2/silences', { matchers: [{ name: 'instance', value: 'db-2', isRegex: false, isEqual: true }], startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), createdBy: 'ops', comment: 'replacing the disk' });
  t.equal(created.status, 200);
  const id = (created.body as { silenceID: string }).silenceID;
  t.match((await call(port, 'GET', `/api/v2/silence/${id}`)).body, { id, createdBy: 'ops', status: { state: 'active' }, matchers: [{ name: 'instance', value: 'db-2', isRegex: false, isEqual: true }] });
  const suppressed = (await call(port, 'GET', '/api/v2/alerts')).body as { labels: Record<string, string>; status: { state: string; silencedBy: string[] } }[];
  t.same(suppressed.find((a) => a.labels.instance === 'db-2')!.status, { state: 'suppressed', silencedBy: [id], inhibitedBy: [] });
  t.equal(((await call(port, 'GET', '/api/v2/alerts?silenced=false')).body as unknown[]).length, 1, 'filtered out with silenced=false');

  // The sender resolves db-1 (endsAt in the past): a resolved notification goes out promptly.
  await call(port, 'POST', '/api/v2/alerts', [{ labels: { alertname: 'DiskFull', instance: 'db-1' }, endsAt: new Date(Date.now() - 1_000).toISOString() }]);
  t.ok(await eventually(() => notifications.some((n) => n.alerts.some((a) => a.status === 'resolved' && a.labels.instance === 'db-1')), 10_000), 'resolved notified');
  t.equal((await call(port, 'DELETE', `/api/v2/silence/${id}`)).status, 200);
  t.match((await call(port, 'GET', `/api/v2/silence/${id}`)).body, { status: { state: 'expired' } });
  t.match(await call(port, 'GET', '/api/v1/alerts'), { status: 200, body: { status: 'success', data: { alerts: [] } } });

  // Bad input: 4xx with a JSON body that names the problem.
  const refused: [string, string, unknown, number, RegExp][] = [
    ['POST', '/api/v2/alerts', '{"not json', 400, /body is not JSON/],
    ['POST', '/api/v2/alerts', { labels: { a: 'b' } }, 400, /JSON array of alerts/],
    ['POST', '/api/v2/alerts', [{ labels: {} }], 400, /alert 0 has no labels/],
    ['POST', '/api/v2/alerts', [{ labels: { '1x': 'y' } }], 400, /not a valid label name/],
    ['POST', '/api/v2/alerts', [{ labels: { a: 'b' }, startsAt: 'yesterday' }], 400, /not an RFC 3339 time/],
    ['POST', '/api/v2/silences', { matchers: [{ name: 'a', value: '(', isRegex: true }], endsAt: soon, createdBy: 'x' }, 400, /not a valid regular expression/],
    ['POST', '/api/v2/silences', { matchers: [{ name: 'a', value: 'b', isRegex: false }], createdBy: 'x' }, 400, /endsAt is required/],
    ['DELETE', '/api/v2/silence/nope', undefined, 404, /no silence/],
    ['GET', '/api/v2/nope', undefined, 404, /no route/],
    ['PUT', '/api/v2/alerts', [], 405, /not allowed/],
  ];
  for (const [method, path, body, status, message] of refused) {
    const answer = await call(port, method, path, body);
    t.equal(answer.status, status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 40)}`);
    t.match((answer.body as { error: string }).error, message);
  }
  const big = await call(port, 'POST', '/api/v2/alerts', `[${'"x",'.repeat(1_200_000)}"x"]`);
  t.equal(big.status, 413, 'an oversized body is refused unread');
});

const prometheus = findBinary('PROMETHEUS_BIN', 'prometheus');

t.test('Prometheus 2.42 uses the platform as its Alertmanager: its rule fires and is notified', { skip: prometheus === undefined ? 'prometheus not installed (apt-get install -y prometheus)' : false }, async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': LIFECYCLE } });
  const notifications: Notification[] = [];
  const subscription = platform.bus.listen<Notification>(SUBJECTS.alertingNotifications, (n) => notifications.push(n));
  t.teardown(() => subscription.unsubscribe());
  const dir = tempDir(t, 'craft-prometheus-am-');
  const webPort = await freePort();
  writeFileSync(join(dir, 'rules.yml'), ['groups:', '  - name: always', '    rules:', '      - alert: AlwaysFiring', '        expr: vector(1)', '        labels: { severity: page }', '        annotations: { summary: "fires by design" }', ''].join('\n'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(join(dir, 'rules.yml'))}]`,
      'alerting:',
      '  alertmanagers:',
      `    - api_version: v2`,
      `      static_configs: [{ targets: ['127.0.0.1:${platform.alertingPort}'] }]`,
      '',
    ].join('\n'),
  );
  // Its first send can come before its Alertmanager list is discovered (dropped); re-send every second, not every minute.
  const args = [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${webPort}`, '--rules.alert.resend-delay=1s'];
  const [command, ...prefix] = [...pdeathsigPrefix(), prometheus!];
  const child = spawn(command!, [...prefix, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8_000)));
  t.teardown(() => stopChild(child, 10_000));

  const notified = await eventually(() => notifications.length > 0, 60_000, 200);
  t.ok(notified, 'a notification came out of our lifecycle', notified ? {} : { prometheusLog: log });
  const alert = notifications[0]?.alerts[0];
  t.match(alert, { status: 'firing', labels: { alertname: 'AlwaysFiring', severity: 'page' }, annotations: { summary: 'fires by design' } });
  const listed = (await call(platform.alertingPort, 'GET', '/api/v2/alerts')).body as { labels: Record<string, string>; generatorURL: string }[];
  t.match(listed, [{ labels: { alertname: 'AlwaysFiring' } }]);
  t.match(listed[0]!.generatorURL, /graph\?g0\.expr=vector/, "Prometheus's generator URL is kept");
  const sent = await fetch(`http://127.0.0.1:${webPort}/metrics`).then((r) => r.text());
  t.notMatch(sent, /prometheus_notifications_errors_total\{[^}]*\} [1-9]/, 'Prometheus counted no failed notification');
});

const CLI = new URL('../../bin/craft.js', import.meta.url).pathname;
function craft(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRAFT_LOG: 'warn' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('craft alerts and craft silence add/list/expire against a running platform', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': LIFECYCLE } });
  const nats = ['--nats', platform.natsUrl, '--nats-creds', platform.natsToJoin().credentials!];
  await call(platform.alertingPort, 'POST', '/api/v2/alerts', [{ labels: { alertname: 'Backup', job: 'db' }, annotations: { summary: 'backup late' } }]);
  const added = await craft(['silence', 'add', 'job=db', 'alertname=~"Back.*"', '--duration', '2h', '--comment', 'known', '--author', 'me', ...nats]);
  t.equal(added.code, 0, added.stderr);
  const id = /^silence (\S+):/.exec(added.stdout)?.[1];
  t.ok(id, added.stdout);
  const listed = JSON.parse((await craft(['silence', 'list', '--json', ...nats])).stdout) as Silence[];
  t.match(listed, [{ id, createdBy: 'me', comment: 'known', matchers: [{ name: 'job', op: '=', value: 'db' }, { name: 'alertname', op: '=~', value: 'Back.*' }] }]);
  const alerts = JSON.parse((await craft(['alerts', '--json', ...nats])).stdout) as { labels: Record<string, string>; silencedBy: string[] }[];
  t.match(alerts, [{ labels: { alertname: 'Backup' }, silencedBy: [id] }]);
  t.match((await craft(['alerts', ...nats])).stdout, /firing\s+Backup\s+\{"job":"db"\}.*silence /);
  t.equal((await craft(['silence', 'expire', id!, ...nats])).code, 0);
  const bad = await craft(['silence', 'add', 'job', '--duration', '1h', ...nats]);
  t.not(bad.code, 0);
  t.match(bad.stderr, /not a matcher: "job"/);
  const neither = await craft(['silence', 'add', 'job=db', ...nats]);
  t.match(neither.stderr, /give either --duration or --end/);
  const unknown = await craft(['silence', 'expire', 'nope', ...nats]);
  t.match(unknown.stderr, /no silence with id "nope"/);
});

t.test('phase 4: acknowledgement and on-call over HTTP, NATS and the CLI; phase 2 refuses acknowledgement clearly', async (t) => {
  const escalation = {
    id: 'alerting.escalation',
    options: {
      groupWaitMs: 100,
      groupIntervalMs: 500,
      route: { receiver: 'default', routes: [{ matchers: ['severity="page"'], escalation: 'page' }] },
      escalationPolicies: [{ name: 'page', tiers: [{ targets: ['schedule:primary'], timeoutMs: 60_000 }, { targets: ['lead'], timeoutMs: 60_000 }] }],
      schedules: [{ name: 'primary', timeZone: 'Europe/Berlin', layers: [{ users: ['alice', 'bob'], start: '2026-01-05T09:00', rotation: { every: 1, unit: 'weeks' } }], overrides: [{ user: 'erin', start: '2030-01-01T00:00', end: '2030-01-02T00:00' }] }],
    },
  };
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': escalation } });
  const port = platform.alertingPort;
  const nats = ['--nats', platform.natsUrl, '--nats-creds', platform.natsToJoin().credentials!];
  const notifications: Notification[] = [];
  const subscription = platform.bus.listen<Notification>(SUBJECTS.alertingNotifications, (n) => notifications.push(n));
  t.teardown(() => subscription.unsubscribe());
  await call(port, 'POST', '/api/v2/alerts', [
    { labels: { alertname: 'DiskFull', severity: 'page', instance: 'db-1' } },
    { labels: { alertname: 'DiskFull', severity: 'page', instance: 'db-2' } },
  ]);
  t.ok(await eventually(() => notifications.length === 1, 10_000), 'tier 0 notified');
  t.match(notifications[0], { groupKey: '{}/{severity="page"}:{alertname="DiskFull"}', tier: 0, routePath: '{}/{severity="page"}' });
  t.ok(['alice', 'bob'].includes(notifications[0]!.receiver), `whoever is on call: ${notifications[0]!.receiver}`);

  const oncall = await call(port, 'GET', '/api/v1/oncall?time=2030-01-01T12:00:00Z');
  t.match(oncall.body, { status: 'success', data: { oncall: [{ schedule: 'primary', receiver: 'erin', source: 'override' }] } });
  t.equal((await call(port, 'GET', '/api/v1/oncall?time=soon')).status, 400);

  const refused: [unknown, number, RegExp][] = [
    [{ matchers: [{ name: 'instance', value: 'db-1' }] }, 400, /"by"/],
    [{ by: 'x' }, 400, /fingerprints or matchers/],
    [{ matchers: [{ name: 'instance', value: 'nope' }], by: 'x' }, 404, /no firing alert matches/],
    [[], 400, /must be an object/],
  ];
  for (const [body, status, message] of refused) {
    const answer = await call(port, 'POST', '/api/v1/alerts/ack', body);
    t.equal(answer.status, status, JSON.stringify(body));
    t.match((answer.body as { error: string }).error, message);
  }
  const acked = await call(port, 'POST', '/api/v1/alerts/ack', { matchers: [{ name: 'instance', value: 'db-1', isRegex: false, isEqual: true }], by: 'sam', comment: 'swapping' });
  t.equal(acked.status, 200);
  t.match(acked.body, { data: { acknowledged: [{ labels: { instance: 'db-1' }, acknowledgedBy: 'sam', ackComment: 'swapping' }] } });
  t.equal(notifications.filter((n) => n.kind === 'acknowledge').length, 0, 'one of two acknowledged: the group is not yet acknowledged');

  const cli = await craft(['ack', 'instance=db-2', '--author', 'kim', '--comment', 'too', ...nats]);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, /1 alert\(s\) acknowledged/);
  t.ok(await eventually(() => notifications.some((n) => n.kind === 'acknowledge'), 10_000), 'all acknowledged: the group\'s receivers are told');
  t.match((await craft(['alerts', ...nats])).stdout, /kim: too/);
  t.match((await craft(['oncall', '--at', '2030-01-01T12:00:00Z', ...nats])).stdout, /primary\s+erin\s+override/);
  const none = await craft(['ack', ...nats]);
  t.match(none.stderr, /give matchers/);
});

t.test('phase 2 refuses an acknowledgement, naming phase 4', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'alerting.lifecycle': LIFECYCLE } });
  await call(platform.alertingPort, 'POST', '/api/v2/alerts', [{ labels: { alertname: 'X' } }]);
  const answer = await call(platform.alertingPort, 'POST', '/api/v1/alerts/ack', { matchers: [{ name: 'alertname', value: 'X' }], by: 'me' });
  t.equal(answer.status, 400);
  t.match((answer.body as { error: string }).error, /phase 4.*alerting\.escalation/);
});
