/**
 * The ruler API (actors/alerting-ruler.ts, Mimir's `/prometheus/config/v1/rules`) through a real
 * platform with auth on: a tenant sets a rule group in YAML; it is evaluated as that tenant (its
 * series only, its `tenant` label), listed to it alone, kept across a crash of the alerting
 * actor (the `craft-rules` bucket), replaced, and deleted. Bad groups are refused with their
 * line and change nothing; reading needs `read`, changing `admin`.
 */
import t from 'tap';
import { parse as parseYamlText } from 'yaml';
import { eventually } from './helpers/nats.js';
import { startPlatform } from './helpers/platform.js';
import { killSubject } from '../core/subjects.js';

const TOKENS = {
  acmeAdmin: { token: 'acme-admin-0123456789ab', tenant: 'acme', scopes: ['read' as const, 'write' as const, 'admin' as const] },
  acmeReader: { token: 'acme-reader-0123456789', tenant: 'acme', scopes: ['read' as const] },
  globexAdmin: { token: 'globex-admin-012345678', tenant: 'globex', scopes: ['read' as const, 'write' as const, 'admin' as const] },
};
type Who = keyof typeof TOKENS;
const RULES = '/prometheus/config/v1/rules';

const HOT_GROUP = `name: temperatures
interval: 1s
rules:
  - alert: Hot
    expr: max by (host) (temp) > 30
    labels: { severity: page }
    annotations: { summary: "{{ $labels.host }} is {{ $value }}" }
`;

t.test('ruler API: a tenant sets, lists, replaces and deletes its rule groups; they are evaluated as the tenant and survive a crash', async (t) => {
  const platform = await startPlatform(t, {
    auth: { tokens: Object.values(TOKENS) },
    alerting: { evalIntervalMs: 500 },
    plugins: { 'ingestion.server': 'craft0.http', 'alerting.evaluator': { id: 'alerting.rules', options: { intervalMs: 500, text: 'alert PlatformRule\n  when vector(1) > 2\n' } } },
  });
  const call = async (who: Who, method: string, path: string, body?: string): Promise<{ status: number; text: string }> => {
    const answer = await fetch(`http://127.0.0.1:${platform.alertingPort}${path}`, { method, headers: { authorization: `Bearer ${TOKENS[who].token}`, ...(body === undefined ? {} : { 'content-type': 'application/yaml' }) }, ...(body === undefined ? {} : { body }) });
    return { status: answer.status, text: await answer.text() };
  };
  const ingest = async (who: Who, host: string, value: number): Promise<void> => {
    const answer = await fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS[who].token}` }, body: JSON.stringify({ metrics: [{ name: 'temp', value, tags: { host }, timestamp: Date.now() }] }) });
    t.equal(answer.status, 200);
    await answer.text();
  };
  type View = { labels: Record<string, string>; state: string; rule: string; group?: string };
  const live = async (): Promise<View[]> => (await platform.bus.request<{ alerts: View[] }>('craft.alerting.alerts', {})).alerts.filter((a) => a.state !== 'resolved');

  t.equal((await call('acmeReader', 'GET', RULES)).status, 404, 'nothing set yet: 404, as Mimir answers');
  // Refused, with the line of the problem, and nothing stored.
  const badPromQL = await call('acmeAdmin', 'POST', `${RULES}/team`, 'name: broken\nrules:\n  - alert: X\n    expr: max by (host (temp)\n');
  t.equal(badPromQL.status, 400);
  t.match(JSON.parse(badPromQL.text).error, /^rule group in namespace team:4:\d+: rules\[0\]\.expr: invalid PromQL/, 'a bad expression is refused with its line');
  const badYaml = await call('acmeAdmin', 'POST', `${RULES}/team`, 'name: [unclosed\n');
  t.equal(badYaml.status, 400, 'bad YAML: 400');
  t.equal((await call('acmeAdmin', 'POST', `${RULES}/team`, '')).status, 400, 'an empty body: 400');
  const recording = await call('acmeAdmin', 'POST', `${RULES}/team`, 'name: rec\nrules:\n  - record: job:up:sum\n    expr: sum(up)\n');
  t.equal(recording.status, 400);
  t.match(JSON.parse(recording.text).error, /recording rule "job:up:sum" — this API takes alerting rules/, 'a recording rule is refused, not silently left unevaluated');
  t.equal((await call('acmeReader', 'POST', `${RULES}/team`, HOT_GROUP)).status, 403, 'changing needs admin');
  t.equal((await call('acmeReader', 'GET', RULES)).status, 404, 'still nothing set');

  // acme sets the group: it is listed to acme only, evaluated as acme.
  t.equal((await call('acmeAdmin', 'POST', `${RULES}/team`, HOT_GROUP)).status, 202, 'a good group is accepted (202)');
  const listed = await call('acmeReader', 'GET', RULES);
  t.equal(listed.status, 200);
  t.match(parseYamlText(listed.text), { team: [{ name: 'temperatures', interval: '1s', rules: [{ alert: 'Hot', expr: 'max by (host) (temp) > 30' }] }] }, 'listed as YAML by namespace');
  t.match(parseYamlText((await call('acmeReader', 'GET', `${RULES}/team/temperatures`)).text), { name: 'temperatures', rules: [{ alert: 'Hot' }] }, 'one group');
  t.equal((await call('globexAdmin', 'GET', RULES)).status, 404, 'globex does not see acme’s groups');
  t.equal((await call('globexAdmin', 'GET', `${RULES}/team/temperatures`)).status, 404);

  await ingest('acmeAdmin', 'a1', 50);
  await ingest('globexAdmin', 'g1', 90);
  t.ok(await eventually(async () => (await live()).some((a) => a.labels.alertname === 'Hot'), 15_000), 'the group’s rule fires');
  await new Promise((r) => setTimeout(r, 1_500));
  t.same((await live()).map((a) => [a.labels.alertname, a.labels.tenant, a.labels.host, a.labels.severity, a.group]), [['Hot', 'acme', 'a1', 'page', 'acme/team/temperatures']], 'on acme’s series only (globex’s 90 °C is not acme’s), labelled acme');
  const apiRules = JSON.parse((await call('acmeReader', 'GET', '/api/v1/rules')).text) as { data: { rules: { name: string; tenant?: string; health: string }[] } };
  t.same(apiRules.data.rules.map((r) => [r.name, r.tenant ?? null]).sort(), [['Hot', 'acme'], ['PlatformRule', null]], 'acme’s rule listing: the platform’s rules and its own');
  const globexRules = JSON.parse((await call('globexAdmin', 'GET', '/api/v1/rules')).text) as { data: { rules: { name: string }[] } };
  t.same(globexRules.data.rules.map((r) => r.name), ['PlatformRule'], 'globex: the platform’s only');

  // The alerting actor crashes: the group comes back from the bucket and is evaluated again.
  platform.bus.publish(killSubject('alerting'), {});
  t.ok(await eventually(() => platform.processStatus().tree.children?.find((c) => c.id === 'alerting')?.restarts === 1, 20_000), 'alerting restarted');
  // (Its port answers again once it has started: until then a request fails.)
  t.ok(await eventually(async () => (await call('acmeReader', 'GET', `${RULES}/team/temperatures`).catch(() => ({ status: 0 }))).status === 200, 20_000), 'the group is still set after the restart');
  t.ok(await eventually(async () => {
    const rules = JSON.parse((await call('acmeReader', 'GET', '/api/v1/rules')).text) as { data: { rules: { name: string; health: string }[] } };
    return rules.data.rules.some((r) => r.name === 'Hot' && r.health === 'ok');
  }, 20_000), 'and evaluated again');

  // Replaced: the same group name, a new rule; then deleted.
  t.equal((await call('acmeAdmin', 'POST', `${RULES}/team`, HOT_GROUP.replace('Hot', 'VeryHot').replace('> 30', '> 80'))).status, 202);
  const replaced = parseYamlText((await call('acmeReader', 'GET', RULES)).text) as Record<string, { rules: { alert: string }[] }[]>;
  t.same(replaced.team?.map((g) => g.rules.map((r) => r.alert)), [['VeryHot']], 'a group set again under its name replaces it');
  t.ok(await eventually(async () => !(await live()).some((a) => a.labels.alertname === 'Hot'), 15_000), 'the replaced rule’s alert goes away');
  t.equal((await call('globexAdmin', 'DELETE', `${RULES}/team/temperatures`)).status, 404, 'globex cannot delete acme’s group');
  t.equal((await call('acmeAdmin', 'DELETE', `${RULES}/team/temperatures`)).status, 202, 'deleted');
  t.equal((await call('acmeReader', 'GET', RULES)).status, 404, 'nothing left');
  t.equal((await call('acmeAdmin', 'DELETE', `${RULES}/team`)).status, 404, 'deleting what is not there: 404');
});

t.test('ruler API: refused (409) while the evaluator is not alerting.rules', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'alerting.evaluator': 'craft0.polling-alerts' } });
  const answer = await fetch(`http://127.0.0.1:${platform.alertingPort}${RULES}/ns`, { method: 'POST', body: HOT_GROUP });
  t.equal(answer.status, 409);
  t.match(((await answer.json()) as { error: string }).error, /evaluated by alerting\.rules/);
});
