/**
 * The Prometheus HTTP API on the query port, through the whole platform (ingestion → queue →
 * storage → query): the envelope, values as strings, times as Unix seconds, GET and form POST,
 * series/labels/values with match[], and Prometheus's status codes for bad input (400),
 * execution errors (422) and unknown endpoints (404).
 */
import t from 'tap';
import { startPlatform, postJson } from './helpers/platform.js';
import { eventually } from './helpers/nats.js';
import { StorageClient } from '../core/storage/client.js';

t.test('the Prometheus HTTP API over a running platform', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'storage.engine': 'storage.time-index' } });
  const metrics = [];
  for (let i = 0; i <= 20; i++) {
    for (const host of ['a', 'b']) {
      metrics.push({ name: 'http_requests_total', value: i * (host === 'a' ? 10 : 20), type: 'counter', tags: { host, job: 'api' }, timestamp: 1_700_000_000_000 + i * 15_000 });
      metrics.push({ name: 'temperature', value: 20 + i / 10, tags: { host }, timestamp: 1_700_000_000_000 + i * 15_000 });
    }
  }
  t.equal((await postJson(platform.ingestionPort, '/metrics', { metrics })).status, 200);
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.info()).stats.samples === metrics.length), 'every sample stored');

  const base = `http://127.0.0.1:${platform.queryPort}`;
  async function api(path: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
    const response = await fetch(base + path, init);
    return { status: response.status, body: await response.json(), headers: response.headers };
  }
  const T = 1_700_000_300; // seconds: the last sample (20 × 15 s after the first)

  await t.test('instant query: a vector with string values and second timestamps', async (t) => {
    const { status, body } = await api(`/api/v1/query?query=${encodeURIComponent('sum by (job) (rate(http_requests_total[5m]))')}&time=${T}`);
    t.equal(status, 200);
    t.equal(body.status, 'success');
    t.equal(body.data.resultType, 'vector');
    t.same(body.data.result[0].metric, { job: 'api' });
    t.equal(body.data.result[0].value[0], T);
    t.equal(typeof body.data.result[0].value[1], 'string');
    t.ok(Math.abs(Number(body.data.result[0].value[1]) - 2) < 1e-9, `rate of 10/15 s + 20/15 s = 2 per second, got ${body.data.result[0].value[1]}`);
    const scalar = await api(`/api/v1/query?query=1%2B1&time=2023-11-14T22:13:20Z`);
    t.same(scalar.body.data, { resultType: 'scalar', result: [1_700_000_000, '2'] }, 'RFC 3339 time');
    const string = await api(`/api/v1/query?query=${encodeURIComponent('"hello"')}&time=10`);
    t.same(string.body.data, { resultType: 'string', result: [10, 'hello'] });
  });

  await t.test('range query: a matrix sorted by labels, GET and form POST alike', async (t) => {
    const query = `query=${encodeURIComponent('temperature')}&start=${T - 60}&end=${T}&step=30s`;
    const get = await api(`/api/v1/query_range?${query}`);
    t.equal(get.status, 200);
    t.same(get.body.data.result.map((s: { metric: Record<string, string> }) => s.metric.host), ['a', 'b']);
    t.same(get.body.data.result[0].values, [[T - 60, '21.6'], [T - 30, '21.8'], [T, '22']]);
    const post = await api('/api/v1/query_range', { method: 'POST', body: query, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    t.same(post.body, get.body, 'POST form gives the same answer');
    const seconds = await api(`/api/v1/query_range?query=temperature&start=${T - 60}&end=${T}&step=30`);
    t.same(seconds.body, get.body, 'step in seconds');
  });

  await t.test('series, labels and label values', async (t) => {
    const series = await api(`/api/v1/series?match[]=${encodeURIComponent('{host="a"}')}`);
    t.same(series.body.data.map((s: Record<string, string>) => s.__name__).sort(), ['http_requests_total', 'temperature']);
    const labels = await api('/api/v1/labels');
    t.same(labels.body.data, ['__name__', 'host', 'job']);
    const matched = await api(`/api/v1/labels?match[]=temperature`);
    t.same(matched.body.data, ['__name__', 'host']);
    const names = await api('/api/v1/label/__name__/values');
    t.same(names.body.data, ['http_requests_total', 'temperature']);
    const hosts = await api(`/api/v1/label/host/values?match[]=${encodeURIComponent('http_requests_total{host!="b"}')}`);
    t.same(hosts.body.data, ['a']);
    const limited = await api(`/api/v1/series?match[]=${encodeURIComponent('{host="a"}')}&limit=1`);
    t.equal(limited.body.data.length, 1, 'limit');
    const ranged = await api(`/api/v1/series?match[]=temperature&start=0&end=1`);
    t.same(ranged.body.data, [], 'nothing in a range before the data');
  });

  await t.test('build info, format_query, exemplars, metadata, rules and alerts answer in Prometheus’s shape', async (t) => {
    t.match((await api('/api/v1/status/buildinfo')).body, { status: 'success', data: { version: /^2\./ } });
    t.same((await api(`/api/v1/format_query?query=${encodeURIComponent('sum(rate(x[5m]))by(job)')}`)).body.data, 'sum by (job) (rate(x[5m]))');
    t.same((await api('/api/v1/query_exemplars?query=x&start=0&end=1')).body.data, []);
    const plan = await api(`/api/v1/explain?query=${encodeURIComponent('rate(temperature[5m])')}&start=${T - 60}&end=${T}&step=15`);
    t.match(plan.body.data, { evaluator: 'query.interpreter', selects: [{ matchers: '{__name__="temperature"}' }], text: /storage selects \(1\)/ });
    t.same((await api('/api/v1/metadata')).body.data, {
      http_requests_total: [{ type: 'counter', help: '', unit: '' }],
      temperature: [{ type: 'gauge', help: '', unit: '' }],
    }, 'types as sent (a metric sent without one is a gauge)');
    t.same(Object.keys((await api('/api/v1/metadata?metric=temperature')).body.data), ['temperature']);
    t.equal(Object.keys((await api('/api/v1/metadata?limit=1')).body.data).length, 1);
    const rules = await api('/api/v1/rules');
    t.equal(rules.body.status, 'success');
    t.ok(Array.isArray(rules.body.data.groups));
    t.ok(Array.isArray((await api('/api/v1/alerts')).body.data.alerts));
  });

  await t.test('bad input: 400 bad_data naming the problem, 422 for execution errors, 404 unknown', async (t) => {
    const parse = await api(`/api/v1/query?query=${encodeURIComponent('sum(rate(x[5m])')}`);
    t.equal(parse.status, 400);
    t.match(parse.body, { status: 'error', errorType: 'bad_data', error: /1:\d+: parse error/ });
    const missing = await api('/api/v1/query_range?query=x&start=1&end=2');
    t.match(missing, { status: 400, body: { errorType: 'bad_data', error: /invalid parameter "step"/ } });
    const badTime = await api('/api/v1/query?query=x&time=yesterday');
    t.match(badTime, { status: 400, body: { error: /cannot parse "yesterday" to a valid timestamp/ } });
    const backwards = await api('/api/v1/query_range?query=x&start=10&end=1&step=1');
    t.match(backwards, { status: 400, body: { error: /end timestamp must not be before start time/ } });
    const tooMany = await api('/api/v1/query_range?query=x&start=0&end=100000&step=1');
    t.match(tooMany, { status: 400, body: { error: /exceeded maximum resolution of 11000 points/ } });
    const rangeType = await api(`/api/v1/query_range?query=${encodeURIComponent('x[5m]')}&start=0&end=10&step=1`);
    t.match(rangeType, { status: 400, body: { error: /invalid expression type "range vector" for range query/ } });
    const manyToMany = await api(`/api/v1/query?time=${T}&query=${encodeURIComponent('http_requests_total + on(job) http_requests_total')}`);
    t.match(manyToMany, { status: 422, body: { errorType: 'execution', error: /many-to-many matching not allowed/ } });
    const noMatch = await api('/api/v1/series');
    t.match(noMatch, { status: 400, body: { error: 'no match[] parameter provided' } });
    const badLabel = await api('/api/v1/label/1bad/values');
    t.match(badLabel, { status: 400, body: { error: /invalid label name/ } });
    t.match(await api('/api/v1/nope'), { status: 404, body: { status: 'error', errorType: 'not_found' } });
    const huge = await api('/api/v1/query', { method: 'POST', body: `query=${'x'.repeat(2_000_000)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    t.equal(huge.status, 413, 'a body over 1 MiB is refused');
  });

  await t.test('Grafana’s Prometheus data source: the requests it sends, the fields it reads', async (t) => {
    const form = (fields: Record<string, string>): RequestInit => ({ method: 'POST', body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    // Save & test.
    const test = await api('/api/v1/query?query=1%2B1&time=4');
    t.same(test.body, { status: 'success', data: { resultType: 'scalar', result: [4, '2'] } });
    const version = (await api('/api/v1/status/buildinfo')).body.data.version as string;
    const [major, minor] = version.split('.').map(Number) as [number, number];
    t.ok(major > 2 || (major === 2 && minor >= 24), `version ${version} ≥ 2.24, so Grafana uses the match[] label APIs`);
    // A panel: range query by form POST with float seconds, an instant query by GET.
    const panel = await api('/api/v1/query_range', form({ query: 'rate(http_requests_total[1m])', start: String(T - 120.5), end: String(T), step: '15' }));
    t.equal(panel.body.status, 'success');
    t.equal(panel.body.data.resultType, 'matrix');
    for (const series of panel.body.data.result) {
      t.type(series.metric, 'object');
      t.ok(series.values.every(([time, value]: [number, string]) => typeof time === 'number' && typeof value === 'string'), 'values are [seconds, "string"]');
    }
    t.ok(panel.body.warnings === undefined || Array.isArray(panel.body.warnings), 'warnings absent or a list');
    const instant = await api(`/api/v1/query?query=${encodeURIComponent('temperature')}&time=${T}`);
    t.ok(instant.body.data.result.every((s: { value: [number, string] }) => typeof s.value[1] === 'string'));
    t.equal((await api(`/api/v1/query_exemplars?query=temperature&start=${T - 60}&end=${T}`)).body.status, 'success');
    // Metric browser and autocompletion.
    const names = await api(`/api/v1/label/__name__/values?start=${T - 3600}&end=${T}`);
    t.same(names.body.data, ['http_requests_total', 'temperature']);
    const labels = await api(`/api/v1/labels?start=${T - 3600}&end=${T}&match[]=temperature&match[]=http_requests_total`);
    t.same(labels.body.data, ['__name__', 'host', 'job']);
    const values = await api(`/api/v1/label/host/values?start=${T - 3600}&end=${T}&match[]=${encodeURIComponent('{__name__="temperature"}')}`);
    t.same(values.body.data, ['a', 'b']);
    const series = await api(`/api/v1/series?match[]=temperature&start=${T - 3600}&end=${T}&limit=40000`);
    t.equal(series.body.data.length, 2);
    t.match((await api('/api/v1/metadata')).body.data, { temperature: [{ type: 'gauge' }] });
    t.equal((await api('/api/v1/rules')).body.status, 'success');
  });

  await t.test('the seed GET /query still answers raw samples', async (t) => {
    const rows = await api('/query?name=temperature&start=0&end=1699999999999');
    t.equal(rows.status, 200);
    t.same(rows.body, [], 'nothing before the data');
    const all = await api('/query?name=temperature');
    t.equal(all.body.length, 42);
  });
});
