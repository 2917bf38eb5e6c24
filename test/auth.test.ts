/**
 * Tenants and tokens (core/auth/tokens.ts) through a real platform: every API refuses a missing
 * or unknown token (401, `WWW-Authenticate: Bearer`) and a token without the scope (403); the
 * token's tenant — not anything the client sends — is the client id and the `tenant` label of
 * what it writes; queries, series, labels and the seed's query see their tenant's series only.
 * And the tokens file: line-numbered errors.
 */
import t from 'tap';
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPlatform } from './helpers/platform.js';
import { eventually, tempDir } from './helpers/nats.js';
import { digestEntry, loadTokensFile, TokenTable } from '../core/auth/tokens.js';
import { makeConfig } from '../core/config/schema.js';
import { resolveConfig } from '../cli/config.js';

const TOKENS = {
  acmeWriter: { token: 'acme-writer-0123456789', tenant: 'acme', scopes: ['write' as const] },
  acmeReader: { token: 'acme-reader-0123456789', tenant: 'acme', scopes: ['read' as const] },
  globex: { token: 'globex-rw-0123456789ab', tenant: 'globex', scopes: ['read' as const, 'write' as const] },
  ops: { token: 'ops-admin-0123456789ab', tenant: 'ops', scopes: ['read' as const, 'admin' as const] },
};
type Who = keyof typeof TOKENS | 'none' | 'unknown';
const header = (who: Who): Record<string, string> => (who === 'none' ? {} : { authorization: `Bearer ${who === 'unknown' ? 'not-a-token-0123456789' : TOKENS[who].token}` });

t.test('tokens file: read with line-numbered errors; a table checks scopes', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'tokens.yaml');
  writeFileSync(good, 'tokens:\n  - { token: "abcdefghijklmnopqrstu", tenant: acme, scopes: [write] }\n');
  t.same(loadTokensFile(good), [{ token: 'abcdefghijklmnopqrstu', tenant: 'acme', scopes: ['write'] }]);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'tokens:\n  - token: "abcdefghijklmnopqrstu"\n    tenant: acme\n    scopes: [fly]\n');
  t.throws(() => loadTokensFile(bad), /bad\.yaml:4:.*scopes/);
  const config = join(dir, 'craft.yaml');
  writeFileSync(config, 'auth: { tokensFile: tokens.yaml }\n');
  t.equal(resolveConfig({ config }).auth.tokens.length, 1, 'the tokens file is read relative to the configuration file');
  const table = new TokenTable([TOKENS.acmeWriter]);
  t.same(table.check(undefined, 'write'), { ok: false, status: 401, error: 'authentication required: send "Authorization: Bearer <token>" (a token with the write scope)' });
  t.match(table.check(`Bearer ${TOKENS.acmeWriter.token}`, 'read'), { ok: false, status: 403 });
  t.same(table.check(`bearer ${TOKENS.acmeWriter.token}`, 'write'), { ok: true, tenant: 'acme' });
  t.throws(() => new TokenTable([TOKENS.acmeWriter, { ...TOKENS.acmeWriter, tenant: 'globex' }]), /listed twice/, 'one secret for two tenants is refused');
  t.throws(() => makeConfig({ auth: { tokens: [TOKENS.acmeWriter, TOKENS.acmeWriter] } }), /listed twice/, 'a token listed twice is refused at configuration');
  const hashed = new TokenTable([digestEntry(TOKENS.acmeWriter)]);
  t.same(hashed.check(`Bearer ${TOKENS.acmeWriter.token}`, 'write'), { ok: true, tenant: 'acme' }, 'a table of digests checks the secret');
  const digested = join(dir, 'digest.yaml');
  writeFileSync(config, 'auth: { tokensFile: tokens.yaml }\n');
  t.notOk(JSON.stringify(resolveConfig({ config }).auth).includes('abcdefghijklmnopqrstu'), 'the resolved configuration (what child processes get) holds digests, not secrets');
  writeFileSync(digested, `tokens:\n  - { sha256: "${digestEntry({ token: 'abcdefghijklmnopqrstu', tenant: 'x', scopes: ['read'] }).sha256}", tenant: x, scopes: [read] }\n`);
  t.equal(loadTokensFile(digested)[0]!.tenant, 'x', 'a tokens file may hold digests only');
});

t.test('through the platform: scopes on every API, tenants from tokens, queries see their tenant only', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http' }, auth: { tokens: Object.values(TOKENS) } });
  const ingest = (who: Who, body: unknown): Promise<Response> => fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', ...header(who) }, body: JSON.stringify(body) });
  const get = (port: number, path: string, who: Who): Promise<Response> => fetch(`http://127.0.0.1:${port}${path}`, { headers: header(who) });

  // Writes: acme forges `tenant: globex`; the platform sets its own.
  const now = Date.now();
  for (const [who, host, type] of [['acmeWriter', 'a', 'counter'], ['globex', 'g', 'gauge']] as const) {
    const answer = await ingest(who, { metrics: [{ name: 'temp', value: 1, type, tags: { host, tenant: 'globex' }, timestamp: now }] });
    t.equal(answer.status, 200, `${who} writes`);
    await answer.text();
  }
  const noToken = await ingest('none', { metrics: [{ name: 'temp', value: 1 }] });
  t.equal(noToken.status, 401);
  t.equal(noToken.headers.get('www-authenticate'), 'Bearer');
  t.match(await noToken.json(), { error: /authentication required/ });
  const v2 = await fetch(`http://127.0.0.1:${platform.ingestionPort}/api/v2/write?precision=s`, { method: 'POST', body: 'temp value=1' });
  t.equal(v2.status, 401);
  t.match(await v2.json(), { code: 'unauthorized', message: /authentication required/ }, 'Influx v2 clients get code and message');
  const readOnly = await ingest('acmeReader', { metrics: [{ name: 'temp', value: 1 }] });
  t.equal(readOnly.status, 403);
  t.match(await readOnly.json(), { error: /lacks the write scope/ });

  // Reads: each tenant sees its own series only.
  const q = `/api/v1/query?query=temp&time=${now / 1000}`;
  t.ok(await eventually(async () => {
    const r = await get(platform.queryPort, q, 'acmeReader');
    const body = (await r.json()) as { data?: { result: { metric: Record<string, string> }[] } };
    return (body.data?.result.length ?? 0) > 0;
  }, 20_000), 'acme\'s sample is queryable');
  const acme = (await (await get(platform.queryPort, q, 'acmeReader')).json()) as { data: { result: { metric: Record<string, string> }[] } };
  t.same(acme.data.result.map((r) => r.metric), [{ __name__: 'temp', host: 'a', tenant: 'acme' }], 'acme sees its series, labelled by the platform, not the forged tenant');
  const globex = (await (await get(platform.queryPort, q, 'globex')).json()) as { data: { result: { metric: Record<string, string> }[] } };
  t.same(globex.data.result.map((r) => r.metric.host), ['g']);
  const values = (await (await get(platform.queryPort, '/api/v1/label/tenant/values', 'acmeReader')).json()) as { data: string[] };
  t.same(values.data, ['acme'], 'label values: its own tenant only');
  const series = (await (await get(platform.queryPort, '/api/v1/series?match[]=temp', 'globex')).json()) as { data: Record<string, string>[] };
  t.same(series.data.map((s) => s.tenant), ['globex']);
  const metadataOf = async (who: Who): Promise<unknown> => ((await (await get(platform.queryPort, '/api/v1/metadata?metric=temp', who)).json()) as { data: unknown }).data;
  t.same(await metadataOf('acmeReader'), { temp: [{ type: 'counter', help: '', unit: '' }] }, 'metadata: the type acme sent');
  t.same(await metadataOf('globex'), { temp: [{ type: 'gauge', help: '', unit: '' }] }, 'metadata: the type globex sent, not acme’s');
  const seed = (await (await get(platform.ingestionPort, '/query?name=temp', 'acmeReader')).json()) as { value: number }[];
  t.equal(seed.length, 1, 'the seed\'s query on the ingestion port: acme\'s sample only');

  // Scopes on every API, as a property over routes and tokens.
  const routes: { port: number; method: string; path: string; scope: 'read' | 'write' | 'admin' | 'none' }[] = [
    { port: platform.ingestionPort, method: 'POST', path: '/metrics', scope: 'write' },
    { port: platform.ingestionPort, method: 'POST', path: '/write', scope: 'write' },
    { port: platform.ingestionPort, method: 'GET', path: '/query?name=temp', scope: 'read' },
    { port: platform.queryPort, method: 'GET', path: '/api/v1/labels', scope: 'read' },
    { port: platform.queryPort, method: 'GET', path: '/health', scope: 'none' },
    { port: platform.alertingPort, method: 'GET', path: '/api/v2/alerts', scope: 'read' },
    { port: platform.alertingPort, method: 'POST', path: '/api/v2/alerts', scope: 'write' },
    { port: platform.alertingPort, method: 'POST', path: '/api/v2/silences', scope: 'admin' },
    { port: platform.alertingPort, method: 'GET', path: '/-/healthy', scope: 'none' },
  ];
  const whos: Who[] = ['none', 'unknown', 'acmeWriter', 'acmeReader', 'globex', 'ops'];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), fc.constantFrom(...whos), async (route, who) => {
      const body = route.method !== 'POST' ? undefined : route.path === '/metrics' ? '{"metrics":[{"name":"x","value":1}]}' : route.path === '/write' ? 'x value=1' : route.path === '/api/v2/alerts' ? '[]' : route.path === '/api/v2/silences' ? '{"matchers":[{"name":"a","value":"b","isRegex":false}],"endsAt":"2099-01-01T00:00:00Z","createdBy":"t"}' : undefined;
      const response = await fetch(`http://127.0.0.1:${route.port}${route.path}`, { method: route.method, headers: { ...header(who), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body }) });
      await response.text();
      const scopes: readonly string[] = who === 'none' || who === 'unknown' ? [] : TOKENS[who].scopes;
      const expected = route.scope === 'none' ? 'allowed' : who === 'none' || who === 'unknown' ? 401 : scopes.includes(route.scope) ? 'allowed' : 403;
      if (expected === 'allowed' ? response.status === 401 || response.status === 403 : response.status !== expected) throw new Error(`${route.method} ${route.path} as ${who}: ${response.status}, expected ${expected}`);
    }),
    { numRuns: 80 },
  );
  t.pass('every route answers 401 without a token, 403 without the scope');

  // The alerting API keeps tenants apart: posted alerts get the poster's tenant; listings, silences and acks stay within it.
  const alerting = (path: string, who: Who, method = 'GET', body?: unknown): Promise<Response> =>
    fetch(`http://127.0.0.1:${platform.alertingPort}${path}`, { method, headers: { ...header(who), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const posted = await alerting('/api/v2/alerts', 'acmeWriter', 'POST', [{ labels: { alertname: 'DiskFull', tenant: 'globex' } }]);
  t.equal(posted.status, 200);
  await posted.text();
  t.ok(await eventually(async () => ((await (await alerting('/api/v2/alerts', 'acmeReader')).json()) as unknown[]).length === 1, 10_000), 'acme sees its alert');
  const acmeAlerts = (await (await alerting('/api/v2/alerts', 'acmeReader')).json()) as { labels: Record<string, string> }[];
  t.same(acmeAlerts.map((a) => a.labels.tenant), ['acme'], 'labelled with the poster\'s tenant, not the forged one');
  t.same(await (await alerting('/api/v2/alerts', 'globex')).json(), [], 'globex does not see it');
  t.same(((await (await alerting('/api/v1/alerts', 'globex')).json()) as { data: { alerts: unknown[] } }).data.alerts, []);
  const silence = await alerting('/api/v2/silences', 'ops', 'POST', { matchers: [{ name: 'alertname', value: 'DiskFull', isRegex: false }], endsAt: '2099-01-01T00:00:00Z', createdBy: 'ops' });
  t.equal(silence.status, 200);
  const silenceId = ((await silence.json()) as { silenceID: string }).silenceID;
  const stillActive = (await (await alerting('/api/v2/alerts', 'acmeReader')).json()) as { status: { state: string } }[];
  t.equal(stillActive[0]!.status.state, 'active', 'a silence made by ops matches ops\'s alerts only');
  t.equal((await alerting(`/api/v2/silence/${silenceId}`, 'acmeReader')).status, 404, 'and acme does not see ops\'s silence');
  const ack = await alerting('/api/v1/alerts/ack', 'ops', 'POST', { matchers: [{ name: 'alertname', value: 'DiskFull' }], by: 'ops' });
  t.equal(ack.status, 400, 'phase 2 refuses acknowledgements; with phase 4 the tenant matcher would apply');
  await ack.text();
});

t.test('tenants’ own alerting rules: evaluated as the tenant, alerts labelled with it, listed to it alone', async (t) => {
  // Both tenants have a rule called Hot: acme's an aggregation (periodic only), globex's a threshold (streamed too).
  const platform = await startPlatform(t, {
    auth: { tokens: Object.values(TOKENS) },
    alerting: { evalIntervalMs: 500 },
    plugins: {
      'ingestion.server': 'craft0.http',
      'alerting.evaluator': {
        id: 'alerting.rules',
        options: {
          intervalMs: 500,
          tenants: {
            acme: { text: 'alert Hot\n  when max by (host) (temp) > 30\n  labels { tenant = "globex" }\n' },
            globex: { text: 'group mine {\n  alert Hot\n    when temp > 30\n}\n' },
          },
        },
      },
    },
  });
  const ingest = async (who: Who, host: string, value: number): Promise<void> => {
    const answer = await fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', ...header(who) }, body: JSON.stringify({ metrics: [{ name: 'temp', value, tags: { host }, timestamp: Date.now() }] }) });
    t.equal(answer.status, 200);
    await answer.text();
  };
  type View = { labels: Record<string, string>; state: string; rule: string };
  const live = async (): Promise<View[]> => (await platform.bus.request<{ alerts: View[] }>('craft.alerting.alerts', {})).alerts.filter((a) => a.state !== 'resolved');
  await ingest('acmeWriter', 'a', 50);
  await ingest('globex', 'g', 10);
  t.ok(await eventually(async () => (await live()).some((a) => a.labels.tenant === 'acme'), 15_000), 'acme’s rule fires on acme’s series');
  await new Promise((r) => setTimeout(r, 1_500));
  const first = await live();
  t.same(first.map((a) => [a.labels.alertname, a.labels.tenant, a.labels.host]), [['Hot', 'acme', 'a']], 'one alert: acme’s (its tenant label wins over the rule’s), nothing for globex at 10');
  await ingest('globex', 'g2', 50);
  t.ok(await eventually(async () => (await live()).some((a) => a.labels.tenant === 'globex' && a.labels.host === 'g2'), 15_000), 'globex’s rule fires on globex’s series');
  await new Promise((r) => setTimeout(r, 1_500));
  t.same((await live()).map((a) => `${a.labels.tenant}/${a.labels.host}`).sort(), ['acme/a', 'globex/g2'], 'each tenant’s Hot keeps its own alerts: neither evaluation resolves the other’s');
  const rulesOf = async (who: Who): Promise<{ name: string; tenant?: string; group?: string; alerts: unknown[] }[]> =>
    ((await (await fetch(`http://127.0.0.1:${platform.alertingPort}/api/v1/rules`, { headers: header(who) })).json()) as { data: { rules: { name: string; tenant?: string; group?: string; alerts: unknown[] }[] } }).data.rules;
  t.same((await rulesOf('acmeReader')).map((r) => [r.tenant, r.group, r.alerts.length]), [['acme', 'acme/inline', 1]], 'acme lists its rule and its alert');
  t.same((await rulesOf('globex')).map((r) => [r.tenant, r.group, r.alerts.length]), [['globex', 'globex/mine', 1]], 'globex lists its own');
  const prom = (await (await fetch(`http://127.0.0.1:${platform.queryPort}/api/v1/rules`, { headers: header('acmeReader') })).json()) as { data: { groups: { name: string }[] } };
  t.same(prom.data.groups.map((g) => g.name), ['acme/inline'], 'the query API’s rule groups: acme’s only');
});
