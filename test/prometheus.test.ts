/**
 * A real Prometheus (Debian's `prometheus` package) against the platform: it scrapes the
 * ingestion service's own exposition (`GET /metrics`) and remote-writes everything it
 * collects to `POST /api/v1/write`. What it sent must come out of a query, labels intact,
 * and Prometheus must count no failed, retried or dropped samples.
 *
 * Skipped, saying so, when no `prometheus` binary is found (PROMETHEUS_BIN or PATH);
 * `.ci/run` installs the package so that CI runs it.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary } from './helpers/binaries.js';
import { startPlatform, getJson } from './helpers/platform.js';
import { eventually, tempDir } from './helpers/nats.js';
import { freePort } from '../actors/platform.js';
import { pdeathsigPrefix } from '../core/nats/server.js';
import { stopChild } from '../core/child-process.js';
import { QueryClient } from '../core/query/client.js';
import { StorageClient } from '../core/storage/client.js';

/** Counters from Prometheus's own exposition, summed over their label sets. */
async function remoteStorageCounters(port: number): Promise<Record<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^prometheus_remote_storage_(samples_total|samples_failed_total|samples_retried_total|samples_dropped_total)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match !== null) out[match[1]!] = (out[match[1]!] ?? 0) + Number(match[2]);
  }
  return out;
}

const prometheus = findBinary('PROMETHEUS_BIN', 'prometheus');

t.test('Prometheus scrapes the ingestion service and remote-writes to it; every sample it sent is stored', { skip: prometheus === undefined ? 'prometheus not installed (apt-get install -y prometheus)' : false }, async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'ingestion.event-driven' } });
  const ingestion = platform.ingestionPort;
  const dir = tempDir(t, 'craft-prometheus-');
  const webPort = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: craft-ingestion',
      `    static_configs: [{ targets: ['127.0.0.1:${ingestion}'] }]`,
      'remote_write:',
      `  - url: http://127.0.0.1:${ingestion}/api/v1/write`,
      '    queue_config: { batch_send_deadline: 1s }',
      '',
    ].join('\n'),
  );
  const args = [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${webPort}`];
  const [command, ...prefix] = [...pdeathsigPrefix(), prometheus!];
  const child = spawn(command!, [...prefix, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8_000)));
  t.teardown(() => stopChild(child, 10_000));

  // Prometheus sends in batches; wait until it has sent a good number of scrapes' worth.
  const sent = await eventually(async () => ((await remoteStorageCounters(webPort).catch(() => ({}) as Record<string, number>)).samples_total ?? 0) >= 200, 60_000, 500);
  t.ok(sent, 'Prometheus sent at least 200 samples', sent ? {} : { prometheusLog: log });
  const counters = await remoteStorageCounters(webPort);
  t.equal(counters.samples_failed_total, 0, 'no sample failed');
  t.equal(counters.samples_retried_total, 0, 'no sample retried (nothing was refused)');
  t.equal(counters.samples_dropped_total, 0, 'no sample dropped');

  // Everything Prometheus counted as sent was acknowledged by us and reaches storage.
  const stats = (await getJson(ingestion, '/stats')).body as { metrics_received: number; validation_errors: number };
  t.equal(stats.validation_errors, 0, 'no request was refused as malformed');
  t.ok(stats.metrics_received >= counters.samples_total!, `acknowledged ${stats.metrics_received} ≥ sent ${counters.samples_total}`);
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.info()).stats.samples >= counters.samples_total!, 30_000), 'all sent samples stored');

  // The scrape of our exposition succeeded (up = 1) and its series came back with Prometheus's labels.
  const queries = new QueryClient(platform.bus);
  const now = Date.now();
  const up = await queries.query({ expr: 'up{job="craft-ingestion"}', startMs: now - 120_000, endMs: now });
  t.equal(up.resultType, 'matrix');
  if (up.resultType === 'matrix') {
    t.same(up.result[0]?.labels, { __name__: 'up', job: 'craft-ingestion', instance: `127.0.0.1:${ingestion}` });
    t.ok(up.result[0]!.values.length >= 2 && up.result[0]!.values.every((v) => v === 1), 'up is 1 at every scrape');
  }
  const requests = await queries.query({ expr: 'craft_ingestion_requests_total{job="craft-ingestion"}', startMs: now - 120_000, endMs: now });
  if (requests.resultType === 'matrix') {
    t.match(requests.result[0]?.labels, { phase: 'ingestion.event-driven', instance: `127.0.0.1:${ingestion}` });
    const values = requests.result[0]?.values ?? [];
    t.ok(values.length >= 2 && values.every((v, i) => i === 0 || v >= values[i - 1]!), 'our request counter, as scraped, never decreases');
  } else t.fail(`expected a matrix, got ${requests.resultType}`);
});
