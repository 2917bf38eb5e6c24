/**
 * Recording rules through the whole platform: a Prometheus rule file given to phase 4 is
 * evaluated by the query actor on its interval, its results go through the queue into storage
 * and come back as series named by `record`; /api/v1/rules reports the group. And phase 4's cache
 * follows a late sample that storage applies (its applied event reaches the evaluator).
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPlatform, postJson } from './helpers/platform.js';
import { eventually, tempDir } from './helpers/nats.js';
import { StorageClient } from '../core/storage/client.js';

t.test('a recording rule writes its series back; the cache forgets what a late sample changes', async (t) => {
  const dir = tempDir(t);
  const rules = join(dir, 'rules.yaml');
  writeFileSync(rules, ['groups:', '  - name: demo', '    interval: 1s', '    rules:', '      - record: job:cpu:sum', '        expr: sum by (job) (cpu)', '        labels: { source: rule }'].join('\n'));
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'query.evaluator': { id: 'query.cache', options: { ruleFiles: [rules], freshnessMs: 0, blockMs: 60_000 } } } });
  const api = async (path: string): Promise<any> => (await fetch(`http://127.0.0.1:${platform.queryPort}${path}`)).json();
  const now = Date.now();
  const metrics = [];
  for (let i = 0; i < 30; i++) for (const host of ['a', 'b']) metrics.push({ name: 'cpu', value: host === 'a' ? 1 : 2, tags: { job: 'web', host }, timestamp: now - 290_000 + i * 10_000 });
  t.equal((await postJson(platform.ingestionPort, '/metrics', { metrics })).status, 200);
  let recorded: unknown;
  t.ok(await eventually(async () => {
    const answer = await api(`/api/v1/query?query=${encodeURIComponent('job:cpu:sum')}`);
    recorded = answer.data.result[0];
    return answer.data.result.length === 1;
  }, 20_000), 'the recorded series appears');
  t.match(recorded, { metric: { __name__: 'job:cpu:sum', job: 'web', source: 'rule' }, value: [Number, '3'] }, 'sum of the two hosts, recorded');
  const groups = (await api('/api/v1/rules')).data.groups;
  t.match(groups.find((g: { name: string }) => g.name === 'demo'), { file: rules, interval: 1, rules: [{ name: 'job:cpu:sum', type: 'recording', health: 'ok' }] });

  // A range query over settled blocks is cached; a late sample inside them must show.
  const start = Math.floor((now - 280_000) / 60_000) * 60; // seconds, on the step
  const range = `/api/v1/query_range?query=${encodeURIComponent('sum(cpu)')}&start=${start}&end=${start + 180}&step=60`;
  const first = await api(range);
  t.ok(first.data.result[0].values.every(([, v]: [number, string]) => v === '3'), 'before: 3 at every step');
  const late = { name: 'cpu', value: 10, tags: { job: 'web', host: 'c' }, timestamp: (start + 120) * 1000 };
  t.equal((await postJson(platform.ingestionPort, '/metrics', { metrics: [late] })).status, 200);
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.count({ matchers: [{ name: 'host', op: '=', value: 'c' }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples === 1), 'the late sample is stored');
  t.ok(await eventually(async () => {
    const answer = await api(range);
    return (answer.data.result[0].values as [number, string][]).some(([, v]) => v === '13');
  }, 10_000), 'after: the steps that see the late sample show 13');
});
