/**
 * `craft bench storage --platform`: the storage benchmark's dataset sent through the whole
 * platform, as a user's clients would send it — `craft up` in its own process (embedded NATS,
 * ingestion, queue, storage actor), Influx line protocol over HTTP from this process — to
 * answer what the in-process benchmark cannot: does storage keep up with what ingestion
 * acknowledges, and how long after its acknowledgement is a sample queryable?
 *
 * - **acknowledged samples/s**: samples in 2xx answers over the time from the first request to
 *   the last answer.
 * - **applied samples/s**: samples the storage actor committed (its `craft.storage.events.applied`
 *   events, which it publishes after each commit: the samples are queryable from then) over the
 *   time from the first request to the last commit.
 * - **ack → queryable**: for each acknowledged request, the time from its answer until storage
 *   had applied as many samples as had been acknowledged up to it (the queue delivers in order
 *   per partition, so this counts samples, not those very samples); p50, p99, max.
 * - storage's own **receive → applied** lag percentiles (its last 1,024 batches, `craft status`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import cliProgress from 'cli-progress';
import { stopChild } from '../../core/child-process.js';
import { freePort } from '../../actors/platform.js';
import { identityFor, loadCredentialsFile } from '../../core/nats/credentials.js';
import { Bus } from '../../core/nats/bus.js';
import { SUBJECTS } from '../../core/subjects.js';
import { StorageClient, type StorageInfo } from '../../core/storage/client.js';
import { METRIC_NAME_LABEL } from '../../core/model.js';
import { renderSvg } from '../chart.js';
import { renderTable } from '../table.js';
import { rssMb, waitFor } from './ingestion.js';
import { ScrapeDataset, type DatasetSpec } from './storage-dataset.js';
import { codeVersion, percentiles, storageMachine, type Percentiles } from './storage.js';

const CLI = fileURLToPath(new URL('../../../bin/craft.js', import.meta.url));
/** How long storage may take to apply everything after the load ends before the run is called failed. */
const DRAIN_TIMEOUT_MS = 15 * 60_000;

/**
 * Where the actors run. `one`: every actor in one process, `craft up`'s default — ingestion and
 * the queue actor share one event loop, so the queue answers storage's fetches between requests.
 * `split`: the queue actor and the storage actor each in a process of their own (`processes:`).
 * `backlog`: no storage actor while the load runs; then one starts in its own process
 * (`craft up --only storage`) and applies the whole backlog — storage's own rate through the
 * platform, with nothing else competing.
 */
export const LAYOUTS = {
  one: [],
  split: ['processes: [ { name: queue-node, actors: [queue] }, { name: store-node, actors: [storage] } ]'],
  backlog: ['actors: [control, queue, ingestion, query, alerting]'],
} as const;
export type Layout = keyof typeof LAYOUTS;

export interface PlatformBenchOptions {
  layouts: Layout[];
  dataset: DatasetSpec;
  engine: string;
  kv: string;
  /** Concurrent keep-alive connections. */
  clients: number;
  /** Lines (samples) per request. */
  linesPerRequest: number;
  outDir: string;
  command: string;
}

export interface PlatformBenchResult {
  layout: Layout;
  engine: string;
  kv: string;
  dataset: DatasetSpec;
  clients: number;
  linesPerRequest: number;
  samples: number;
  samplesAcknowledged: number;
  requestsFailed: number;
  loadSeconds: number;
  acknowledgedPerSecond: number;
  appliedSeconds: number;
  appliedPerSecond: number;
  /** After the last answer, until storage had applied every acknowledged sample. */
  drainSeconds: number;
  ackToQueryableMs: Percentiles;
  storageLag: StorageInfo['lag'];
  rssMbMax: number;
  timeline: { second: number; acknowledged: number; applied: number }[];
}

/** One dataset batch as Influx line protocol, timestamps in ms. */
export function lineProtocol(dataset: ScrapeDataset, batch: { series: Int32Array; timestampsMs: Float64Array; values: Float64Array; length: number }): string {
  const lines: string[] = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const labels = dataset.labels[batch.series[i]!]!;
    let tags = '';
    for (const [name, value] of Object.entries(labels)) if (name !== METRIC_NAME_LABEL) tags += `,${name}=${value}`;
    lines[i] = `${labels[METRIC_NAME_LABEL]}${tags} value=${batch.values[i]} ${batch.timestampsMs[i]}`;
  }
  return lines.join('\n');
}

export async function benchStoragePlatform(options: PlatformBenchOptions): Promise<PlatformBenchResult[]> {
  process.stdout.write(`craft bench storage --platform — ${options.engine} on ${options.kv}, ${options.dataset.series} series × ${options.dataset.hours} h, ${options.clients} connections × ${options.linesPerRequest} lines a request to POST /write; layouts ${options.layouts.join(', ')}\nmachine: ${storageMachine()}\ncommand: ${options.command}\n`);
  const results: PlatformBenchResult[] = [];
  for (const layout of options.layouts) {
    results.push(await runLayout(layout, options));
    process.stdout.write(`\n${platformTable(results.slice(-1))}\n`);
  }
  await writePlatformResults(results, options);
  return results;
}

async function runLayout(layout: Layout, options: PlatformBenchOptions): Promise<PlatformBenchResult> {
  const dataset = new ScrapeDataset(options.dataset);
  const work = mkdtempSync(join(tmpdir(), 'craft-bench-platform-'));
  const [ingestionPort, natsPort] = [await freePort(), await freePort()];
  const config = join(work, 'craft.yaml');
  writeFileSync(
    config,
    [
      `dataDir: ${JSON.stringify(join(work, 'data'))}`,
      `nats: { port: ${natsPort} }`,
      'http: { host: 127.0.0.1, queryPort: 0, alertingPort: 0 }',
      // The limiter runs but never refuses: the benchmark measures throughput, not the limit.
      'ingestion: { rateLimitPerSecond: 1000000, keepAliveTimeoutMs: 30000, influxSingleValueFieldAsMeasurement: true }',
      `plugins: { storage.engine: ${options.engine}, storage.kv: ${options.kv} }`,
      ...LAYOUTS[layout],
      '',
    ].join('\n'),
  );
  let stderr = '';
  const craftUp = (...args: string[]): ChildProcess => {
    const started = spawn(process.execPath, [CLI, 'up', '--config', config, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRAFT_LOG: 'warn' } });
    started.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
    return started;
  };
  const child = craftUp('--ingestion-port', String(ingestionPort));
  let bus: Bus | undefined;
  let storageChild: ChildProcess | undefined;
  const pool = new Pool(`http://127.0.0.1:${ingestionPort}`, { connections: options.clients, pipelining: 1, keepAliveTimeout: 30_000 });
  try {
    await waitFor(child, /platform up/).catch((error: Error) => {
      throw new Error(`${error.message}\n${stderr}`);
    });
    bus = await Bus.connect(`nats://127.0.0.1:${natsPort}`, 'craft-bench-platform', identityFor(loadCredentialsFile(join(work, 'data', 'nats', 'users.json')), 'admin'));
    const storage = new StorageClient(bus);
    // The applied timeline: one point per storage commit.
    const applied: { atMs: number; total: number }[] = [];
    let appliedTotal = 0;
    bus.nc.subscribe(SUBJECTS.storageEventsApplied, {
      callback: (_error, message) => {
        appliedTotal += message.json<{ samples: number }>().samples;
        applied.push({ atMs: performance.now(), total: appliedTotal });
      },
    });
    const acks: { atMs: number; total: number }[] = [];
    let acknowledged = 0;
    let failed = 0;
    let rssMax = 0;
    const stream = dataset.stream(options.linesPerRequest);
    const bar = process.stdout.isTTY ? new cliProgress.SingleBar({ format: ' {bar} {percentage}% | acknowledged {value}/{total} | applied {applied}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
    bar?.start(dataset.totalSamples, 0, { applied: 0 });
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssMb(child.pid!) + (storageChild?.pid === undefined ? 0 : rssMb(storageChild.pid)));
      bar?.update(acknowledged, { applied: appliedTotal });
    }, 500);
    const startMs = performance.now();
    const client = async (): Promise<void> => {
      for (;;) {
        const batch = stream.next();
        if (batch === undefined) return;
        const count = batch.length;
        const body = lineProtocol(dataset, batch);
        // A refused request is sent again after its Retry-After, as a client library would: nothing is dropped.
        for (let attempt = 0; ; attempt++) {
          const response = await pool.request({ path: '/write?precision=ms', method: 'POST', headers: { 'content-type': 'text/plain' }, body });
          await response.body.dump();
          if (response.statusCode >= 200 && response.statusCode < 300) break;
          failed += 1;
          if (attempt >= 20) throw new Error(`POST /write answered ${response.statusCode} ${attempt + 1} times in a row`);
          await new Promise((r) => setTimeout(r, Number(response.headers['retry-after'] ?? 1) * 1_000));
        }
        acknowledged += count;
        acks.push({ atMs: performance.now(), total: acknowledged });
      }
    };
    await Promise.all(Array.from({ length: options.clients }, client));
    const loadEndMs = performance.now();
    let storageStartMs = startMs;
    if (layout === 'backlog') {
      storageStartMs = performance.now();
      storageChild = craftUp('--only', 'storage', '--nats', `nats://127.0.0.1:${natsPort}`, '--process-name', 'store-backlog');
    }
    const deadline = loadEndMs + DRAIN_TIMEOUT_MS;
    while (appliedTotal < acknowledged && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    clearInterval(sampler);
    bar?.stop();
    if (appliedTotal < acknowledged) throw new Error(`storage applied ${appliedTotal} of ${acknowledged} acknowledged samples within ${DRAIN_TIMEOUT_MS / 60_000} min of the load's end`);
    const info = await storage.info();
    if (info.stats.samples !== acknowledged) throw new Error(`the store holds ${info.stats.samples} samples; ${acknowledged} were acknowledged`);
    // Each acknowledgement's wait until storage had applied that many samples.
    const lags: number[] = [];
    let at = 0;
    for (const ack of acks) {
      while (applied[at]!.total < ack.total) at++;
      lags.push(Math.max(0, applied[at]!.atMs - ack.atMs));
    }
    const lastAppliedMs = applied.at(-1)!.atMs;
    const timeline: PlatformBenchResult['timeline'] = [];
    let a = 0;
    let p = 0;
    for (let second = 0; startMs + second * 1_000 <= lastAppliedMs + 1_000; second++) {
      const until = startMs + second * 1_000;
      while (a < acks.length && acks[a]!.atMs <= until) a++;
      while (p < applied.length && applied[p]!.atMs <= until) p++;
      timeline.push({ second, acknowledged: a === 0 ? 0 : acks[a - 1]!.total, applied: p === 0 ? 0 : applied[p - 1]!.total });
    }
    return {
      layout,
      engine: options.engine,
      kv: options.kv,
      dataset: options.dataset,
      clients: options.clients,
      linesPerRequest: options.linesPerRequest,
      samples: dataset.totalSamples,
      samplesAcknowledged: acknowledged,
      requestsFailed: failed,
      loadSeconds: (loadEndMs - startMs) / 1_000,
      acknowledgedPerSecond: acknowledged / ((loadEndMs - startMs) / 1_000),
      appliedSeconds: (lastAppliedMs - storageStartMs) / 1_000,
      appliedPerSecond: acknowledged / ((lastAppliedMs - storageStartMs) / 1_000),
      drainSeconds: Math.max(0, (lastAppliedMs - loadEndMs) / 1_000),
      ackToQueryableMs: percentiles(lags),
      storageLag: info.lag,
      rssMbMax: rssMax,
      timeline,
    };
  } finally {
    await pool.close().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    if (storageChild !== undefined) await stopChild(storageChild);
    await stopChild(child);
    rmSync(work, { recursive: true, force: true });
  }
}

const integer = (n: number): string => Math.round(n).toLocaleString('en-US');

export function platformTable(results: PlatformBenchResult[]): string {
  return renderTable(
    ['layout', 'engine', 'kv', 'samples', 'acknowledged samples/s', 'applied samples/s', 'drain s', 'ack → queryable ms p50/p99/max', 'storage receive → applied ms p50/p99/max (last batches)', 'RSS MB max', 'refused requests'],
    results.map((r) => {
      const lag = r.ackToQueryableMs;
      // A backlog waits for a storage actor that is not there yet: its lags say nothing.
      const lags = r.layout === 'backlog' ? ['-', '-'] : [`${integer(lag.p50Ms)}/${integer(lag.p99Ms)}/${integer(lag.maxMs)}`, `${integer(r.storageLag.p50Ms)}/${integer(r.storageLag.p99Ms)}/${integer(r.storageLag.maxMs)} (${r.storageLag.batches})`];
      return [r.layout, r.engine, r.kv, integer(r.samples), integer(r.acknowledgedPerSecond), integer(r.appliedPerSecond), r.drainSeconds.toFixed(1), ...lags, integer(r.rssMbMax), String(r.requestsFailed)];
    }),
  );
}

async function writePlatformResults(results: PlatformBenchResult[], options: PlatformBenchOptions): Promise<void> {
  mkdirSync(options.outDir, { recursive: true });
  const table = platformTable(results);
  const first = results[0]!;
  const verdicts = results.map((r) => {
    if (r.layout === 'backlog') return `- **backlog**: with no storage actor running, ingestion acknowledged ${integer(r.acknowledgedPerSecond)} samples/s; a storage actor then started in its own process applied the ${integer(r.samples)} queued samples in ${r.appliedSeconds.toFixed(1)} s from its start (process start included): **${integer(r.appliedPerSecond)} samples/s**, storage's rate through the platform (queue fetch, decode, append, synced commit, queue commit) when nothing else competes for the cores.`;
    const keepsUp = r.appliedPerSecond >= r.acknowledgedPerSecond * 0.99 && r.drainSeconds < 1;
    return `- **${r.layout}**: storage ${keepsUp ? 'kept up with' : 'fell behind'} ingestion — it applied ${integer(r.appliedPerSecond)} samples/s against ${integer(r.acknowledgedPerSecond)} acknowledged samples/s${keepsUp ? '' : `, and needed ${r.drainSeconds.toFixed(1)} s after the load to catch up`}; half the acknowledged requests were queryable within ${integer(r.ackToQueryableMs.p50Ms)} ms, 99 % within ${integer(r.ackToQueryableMs.p99Ms)} ms.`;
  });
  const markdown = [
    '# Storage through the platform (Craft #3)',
    '',
    `Produced by \`${options.command}\` on ${new Date().toISOString().slice(0, 10)} (after \`npx tsc -p .\`).`,
    '',
    `Machine: ${storageMachine()}. Code: ${codeVersion()}.`,
    '',
    `What it measures: the storage benchmark's dataset (${first.dataset.series} series × ${first.dataset.hours} h at 15 s, ${integer(first.samples)} samples; cli/bench/storage-dataset.ts) sent as Influx line protocol to \`POST /write\` of \`craft up\` started in its own process (embedded NATS, JetStream queue, storage actor on ${first.engine} / ${first.kv}), by ${first.clients} keep-alive connections of ${first.linesPerRequest} lines a request, each sending its next request when the last is answered, in the dataset's time order. The client and the platform share the machine's cores. Layouts:`,
    '',
    '- **one**: every actor in one process, as `craft up` runs by default: ingestion and the queue actor share one event loop, so storage\'s fetches are answered between ingestion\'s requests.',
    '- **split**: the queue actor and the storage actor each in a process of their own (`processes: [ { name: queue-node, actors: [queue] }, { name: store-node, actors: [storage] } ]`, ingestion, control, query and alerting in the main process).',
    '- **backlog**: no storage actor while the load runs (`actors: [control, queue, ingestion, query, alerting]`); after the last answer a storage actor starts in a process of its own (`craft up --only storage`) and applies the queued samples. Its applied samples/s is counted from its start.',
    '',
    'How each figure is taken (cli/bench/storage-platform.ts):',
    '',
    '- **acknowledged samples/s**: samples in 2xx answers over the time from the first request to the last answer.',
    '- **applied samples/s**: samples storage committed (it publishes `craft.storage.events.applied` after each commit; they are queryable from then) over the time from the first request to the last commit.',
    '- **drain s**: from the last answer until storage had applied every acknowledged sample.',
    '- **ack → queryable**: per acknowledged request, from its answer until storage had applied as many samples as had been acknowledged up to it.',
    "- **storage receive → applied**: the storage actor's own figure (`craft status`), over its last 1,024 batches: from ingestion receiving a request to storage committing it.",
    '- After each run the store must hold exactly the acknowledged samples, or the run fails.',
    '',
    '```',
    table,
    '```',
    '',
    ...verdicts,
    '',
    ...results.map((r) => `![acknowledged and applied samples over time, ${r.layout}](storage-platform-${r.layout}.svg)`),
    '',
  ].join('\n');
  writeFileSync(join(options.outDir, 'storage-platform.md'), markdown);
  writeFileSync(join(options.outDir, 'storage-platform.json'), JSON.stringify({ command: options.command, machine: storageMachine(), code: codeVersion(), results }, null, 2) + '\n');
  for (const r of results) {
    const rows = r.timeline.flatMap((t) => [
      { second: t.second, samples: t.acknowledged, what: 'acknowledged by ingestion' },
      { second: t.second, samples: t.applied, what: 'applied by storage (queryable)' },
    ]);
    const svg = await renderSvg({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `Samples acknowledged and queryable over time — layout ${r.layout}, ${r.engine} on ${r.kv}`,
      background: 'white',
      width: 640,
      height: 260,
      data: { values: rows },
      mark: { type: 'line' },
      encoding: {
        x: { field: 'second', type: 'quantitative', title: 'seconds since the first request' },
        y: { field: 'samples', type: 'quantitative', title: 'samples (cumulative)' },
        color: { field: 'what', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 400 } },
      },
    });
    writeFileSync(join(options.outDir, `storage-platform-${r.layout}.svg`), svg);
  }
  process.stdout.write(`results: ${join(options.outDir, 'storage-platform.md')}\n`);
}
