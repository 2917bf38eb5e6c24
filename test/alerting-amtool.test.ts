/**
 * Alertmanager's own CLI, Debian's `amtool` 0.25, against the platform's alerting API (port
 * 9093): it adds alerts, queries them with matchers, silences one, lists and expires the silence —
 * its Go client parses every answer strictly, so this is the API v2 as a real client reads it.
 * Skipped, saying so, when amtool is not installed (`.ci/run` installs prometheus-alertmanager).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { findBinary } from './helpers/binaries.js';
import { eventually } from './helpers/nats.js';
import { startPlatform } from './helpers/platform.js';

const amtool = findBinary('AMTOOL', 'amtool');

/** Runs amtool (asynchronously: the platform answering it runs in this process). */
function run(url: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(amtool!, [`--alertmanager.url=${url}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

t.test('amtool adds, queries and silences alerts on the platform', { skip: amtool === undefined ? 'amtool (Debian prometheus-alertmanager) not installed' : false }, async (t) => {
  const platform = await startPlatform(t, { plugins: { 'alerting.lifecycle': { id: 'alerting.lifecycle', options: { groupWaitMs: 0, groupBy: ['alertname'] } } } });
  const url = `http://127.0.0.1:${platform.alertingPort}`;
  const ok = async (args: string[]): Promise<string> => {
    const out = await run(url, args);
    t.equal(out.status, 0, `amtool ${args.join(' ')}`, { stderr: out.stderr });
    return out.stdout;
  };
  await ok(['alert', 'add', 'alertname=DiskFull', 'instance=db-1', 'severity=page', '--annotation=summary=disk 99%']);
  await ok(['alert', 'add', 'alertname=DiskFull', 'instance=db-2', 'severity=info']);
  type Listed = { labels: Record<string, string>; annotations: Record<string, string>; status: { state: string }; receivers: { name: string }[] };
  const query = async (...matchers: string[]): Promise<Listed[]> => JSON.parse(await ok(['alert', 'query', '-o', 'json', ...matchers])) as Listed[];
  t.ok(await eventually(async () => (await query()).length === 2, 10_000), 'amtool lists both alerts');
  const one = await query('instance=db-1');
  t.same(one.map((a) => [a.labels.instance, a.annotations.summary, a.status.state]), [['db-1', 'disk 99%', 'active']], 'a matcher selects one (the filter parameter)');
  t.same((await query('severity=~"pa.*"')).map((a) => a.labels.instance), ['db-1'], 'a regex matcher too');
  t.same((await query('alertname=Nothing')).length, 0);

  const id = (await ok(['silence', 'add', 'instance=db-1', '--comment=disk swap', '--author=ops', '--duration=1h'])).trim();
  t.match(id, /^\S+$/, `the silence id printed (${id})`);
  const silences = JSON.parse(await ok(['silence', 'query', '-o', 'json'])) as { id: string; createdBy: string; comment: string; status: { state: string } }[];
  t.match(silences, [{ id, createdBy: 'ops', comment: 'disk swap', status: { state: 'active' } }], 'amtool lists the silence');
  t.same((JSON.parse(await ok(['silence', 'query', '-o', 'json', 'instance=db-2'])) as unknown[]).length, 0, 'a silence query by matcher: none silences db-2');
  t.ok(await eventually(async () => (await query()).map((a) => a.labels.instance).join() === 'db-2', 10_000), 'the silenced alert is no longer listed as active');
  const silenced = JSON.parse(await ok(['alert', 'query', '-o', 'json', '--silenced'])) as Listed[];
  t.same(silenced.map((a) => [a.labels.instance, a.status.state]), [['db-1', 'suppressed']], '--silenced lists it, suppressed');
  await ok(['silence', 'expire', id]);
  t.ok(await eventually(async () => (await query()).length === 2, 10_000), 'expired: both active again');
});
