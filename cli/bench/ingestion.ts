/**
 * `craft bench ingestion`: every ingestion phase (and a bare node:http server as the
 * machine's ceiling) under the same workloads, each server and each load generator in its
 * own process. Prints a table and writes docs/results/ingestion.md and a chart.
 *
 * Each phase runs on a fresh platform with the actors that acknowledgement needs
 * (control, queue, ingestion: a 2xx means the batch is in JetStream); storage is not
 * started, so its consumption does not compete for the cores — the queue holds the data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { findNatsServerBinary } from '../../core/nats/server.js';
import { stopChild } from '../../core/child-process.js';
import { freePort } from '../../actors/platform.js';
import type { LoadResult } from '../load/generator.js';
import { renderTable } from '../table.js';
import { PluginRegistry } from '../../core/plugins/registry.js';
import { groupedBarSpec, renderSvg } from '../chart.js';
import { seedBody } from '../load/command.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'bin', 'craft.js');
const BARE = fileURLToPath(new URL('./bare-server.js', import.meta.url));
const HOLD = fileURLToPath(new URL('./hold-connections.js', import.meta.url));

/**
 * What the benchmark runs: the bare ceiling, every registered `ingestion.server` plugin in
 * craft/phase order, and phase 8 once more with a second event loop.
 */
export async function benchTargets(): Promise<string[]> {
  const { registry } = await PluginRegistry.load();
  const phases = registry.list().filter((p) => p.slot === 'ingestion.server').map((p) => p.id);
  return ['bare', ...phases, 'ingestion.event-driven:loops=2'];
}

/** `plugin[:option=value,…]` → plugin id and numeric options. */
export function parseTarget(target: string): { plugin: string; options: Record<string, number | string> } {
  const [plugin, optionText] = target.split(':') as [string, string | undefined];
  const options: Record<string, number | string> = {};
  for (const pair of optionText?.split(',') ?? []) {
    const [key, value] = pair.split('=');
    // `loops=2` is a number, `http=node` a word.
    if (key !== undefined && value !== undefined) options[key] = value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return { plugin, options };
}

export interface Workload {
  id: string;
  label: string;
  connections: number;
  batch: number;
  close: boolean;
  rate?: number;
  /** Idle keep-alive connections held open during the run. */
  hold?: number;
  /** Only for these targets (the 10k-connection run). */
  only?: string[];
}

export const WORKLOADS: Workload[] = [
  { id: 'ka-10', label: 'keep-alive, 100 conn, 10 metrics', connections: 100, batch: 10, close: false },
  { id: 'close-10', label: 'Connection: close, 100 conn, 10 metrics', connections: 100, batch: 10, close: true },
  { id: 'ka-1000', label: 'keep-alive, 100 conn, 1000 metrics', connections: 100, batch: 1_000, close: false },
  // Few clients, big batches: where the parser (O(n²) vs O(n)) shows through thread start-up costs.
  { id: 'c10-1000', label: 'keep-alive, 10 conn, 1000 metrics', connections: 10, batch: 1_000, close: false },
  { id: 'paced-10', label: 'paced 2,000 req/s, 100 conn, 10 metrics', connections: 100, batch: 10, close: false, rate: 2_000 },
  { id: 'hold-10k', label: '10,000 idle keep-alive conn held + 100 conn, 10 metrics', connections: 100, batch: 10, close: false, hold: 10_000, only: ['bare', 'ingestion.event-driven'] },
];

export interface BenchOptions {
  durationS: number;
  targets: string[];
  workloads: string[];
  outDir: string;
  /** Extra plugin options for the phase 8 row, e.g. loops. */
  command: string;
}

interface Row {
  target: string;
  workload: string;
  result: LoadResult;
  rssMaxMb: number;
  connectionsHeld?: number;
  serverConnectionsMax?: number;
}

export function rssMb(pid: number): number {
  // The server and its child processes (event loops, nats-server for a phase's platform).
  const pids = [pid, ...spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)];
  let kb = 0;
  for (const p of pids) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (match !== null) kb += Number(match[1]);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

export function waitFor(child: ChildProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${out}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = pattern.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolvePromise(match[1] ?? match[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before ${pattern}: ${out}`));
    });
  });
}


/** Starts what a target needs; returns its port, pid and a stop function. */
async function startTarget(target: string, workDir: string): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  if (target === 'bare') {
    const child = spawn(process.execPath, [BARE], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = Number(await waitFor(child, /^(\d+)\n/m));
    return { port, pid: child.pid!, stop: () => stopChild(child) };
  }
  const port = await freePort();
  mkdirSync(workDir, { recursive: true });
  const config = join(workDir, `${target.replace(/[^a-z0-9.-]/gi, '_')}.yaml`);
  writeFileSync(
    config,
    [
      `dataDir: ${JSON.stringify(join(workDir, target.replace(/[^a-z0-9.-]/gi, '_')))}`,
      'actors: [control, queue, ingestion]',
      'http: { host: 127.0.0.1, backlog: 4096 }',
      // The limiter runs (locks and all) but never refuses: the benchmark measures throughput.
      'ingestion: { rateLimitPerSecond: 1000000, keepAliveTimeoutMs: 30000 }',
      `plugins: { ingestion.server: { id: ${parseTarget(target).plugin}, options: ${JSON.stringify(parseTarget(target).options)} } }`,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [CLI, 'up', '--config', config, '--ingestion-port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRAFT_LOG: 'warn' } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  await waitFor(child, /platform up/).catch((error: Error) => {
    throw new Error(`${error.message}\n${stderr}`);
  });
  return { port, pid: child.pid!, stop: () => stopChild(child) };
}

/** wrk (Debian's package), when installed: the closed-loop workloads use it, the paced one our generator. */
export function findWrk(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' }).stdout.trim();
  return found === '' ? undefined : found;
}

export function wrkScript(workload: Workload): string {
  const body = seedBody(workload.batch);
  return `-- generated by craft bench ingestion
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  n = 0
  body = [==[${body}]==]
end
function request()
  n = n + 1
  -- every connection speaks for its own client ids, as many agents would
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "client-" .. tid .. "-" .. (n % 100)${workload.close ? ', ["Connection"] = "close"' : ''} }
  return wrk.format("POST", "/metrics", headers, body)
end
function done(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`;
}

export const wrkCommand = (workload: Workload, durationS: number): string =>
  `wrk -t1 -c${workload.connections} -d${durationS}s --timeout 10s -s ${workload.id}.lua http://127.0.0.1:<port>/metrics`;

async function runWrk(wrk: string, url: string, workload: Workload, durationS: number, workDir: string): Promise<LoadResult> {
  mkdirSync(workDir, { recursive: true });
  const script = join(workDir, `${workload.id}.lua`);
  writeFileSync(script, wrkScript(workload));
  const child = spawn(wrk, ['-t1', `-c${workload.connections}`, `-d${durationS}s`, '--timeout', '10s', '-s', script, `${url}/metrics`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': the output may still be in the pipe when the process exits.
  await new Promise((r) => child.once('close', r));
  const match = /WRKJSON (\{.*\})/.exec(out);
  if (match === null) throw new Error(`wrk printed no result: ${out}`);
  const w = JSON.parse(match[1]!) as Record<string, number>;
  const socketErrors = w.connect! + w.read! + w.write! + w.timeout!;
  const ok = Math.max(0, w.requests! - w.status!);
  const durationMs = w.durationUs! / 1_000;
  const summary = { count: w.requests!, p50: w.p50! / 1_000, p90: w.p90! / 1_000, p99: w.p99! / 1_000, max: w.max! / 1_000, mean: w.mean! / 1_000 };
  return {
    id: workload.id,
    clients: workload.connections,
    mode: 'closed',
    keepAlive: !workload.close,
    batch: workload.batch,
    durationMs,
    requests: w.requests! + socketErrors,
    ok,
    statusCounts: { '2xx': ok, ...(w.status! > 0 ? { 'non-2xx': w.status! } : {}), ...(socketErrors > 0 ? { 'no-answer': socketErrors } : {}) },
    successRate: w.requests! + socketErrors === 0 ? 0 : ok / (w.requests! + socketErrors),
    requestsPerSecond: (w.requests! * 1_000) / durationMs,
    okPerSecond: (ok * 1_000) / durationMs,
    samplesAcknowledged: ok * workload.batch,
    samplesAmbiguous: 0,
    samplesPerSecond: (ok * workload.batch * 1_000) / durationMs,
    // wrk's percentiles cover every answer; with no non-2xx answers they are the 2xx latencies.
    latencyOk: summary,
    latencyAll: summary,
    timeline: [],
  };
}

async function runLoadProcess(url: string, workload: Workload, durationS: number): Promise<LoadResult> {
  const args = [CLI, 'load', '--url', url, '--connections', String(workload.connections), '--duration', String(durationS), '--batch', String(workload.batch)];
  if (workload.close) args.push('--close');
  if (workload.rate !== undefined) args.push('--rate', String(workload.rate));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': the output may still be in the pipe when the process exits.
  await new Promise((r) => child.once('close', r));
  return JSON.parse(out) as LoadResult;
}

export function loadCommand(workload: Workload, durationS: number): string {
  return `node bin/craft.js load --url http://127.0.0.1:<port> --connections ${workload.connections} --duration ${durationS} --batch ${workload.batch}${workload.close ? ' --close' : ''}${workload.rate === undefined ? '' : ` --rate ${workload.rate}`}`;
}

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const nats = findNatsServerBinary();
  const natsVersion = nats === undefined ? 'not found' : spawnSync(nats, ['--version'], { encoding: 'utf8' }).stdout.trim();
  return `${availableParallelism()} cores (${cpu}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, ${natsVersion}, Linux ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}`;
}

const f0 = (n: number): string => n.toFixed(0);
/** Seconds of unmeasured load before each measured run. */
const WARMUP_S = 2;
const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export async function benchIngestion(options: BenchOptions): Promise<Row[]> {
  const workDir = mkdtempSync(join(tmpdir(), 'craft-bench-'));
  const workloads = WORKLOADS.filter((w) => options.workloads.includes(w.id));
  const plan: { target: string; workload: Workload }[] = [];
  for (const target of options.targets) for (const workload of workloads) if (workload.only === undefined || workload.only.includes(target)) plan.push({ target, workload });
  process.stdout.write(`craft bench ingestion — ${plan.length} runs of ${options.durationS} s\nmachine: ${machine()}\ncommand: ${options.command}\n\n`);
  const wrk = findWrk();
  if (wrk === undefined) process.stdout.write('wrk not found (apt-get install -y wrk): the closed-loop workloads use the Node generator instead\n');
  const bar = process.stdout.isTTY ? new cliProgress.SingleBar({ format: ' {bar} {value}/{total} runs | {run}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(plan.length, 0, { run: '' });
  const rows: Row[] = [];
  try {
    for (const target of options.targets) {
      const mine = plan.filter((p) => p.target === target);
      if (mine.length === 0) continue;
      for (const { workload } of mine) {
        // A fresh server per workload: no run inherits another's backlog or heap.
        const server = await startTarget(target, join(workDir, `${workload.id}`));
        let holder: ChildProcess | undefined;
        let held: number | undefined;
        try {
          if (workload.hold !== undefined) {
            holder = spawn(process.execPath, [HOLD, '127.0.0.1', String(server.port), String(workload.hold)], { stdio: ['ignore', 'pipe', 'inherit'] });
            held = Number(await waitFor(holder, /held (\d+)/, 120_000));
          }
          bar?.update(rows.length, { run: `${target} · ${workload.id}` });
          if (bar === undefined) process.stdout.write(`  running ${target} · ${workload.id}\n`);
          let rssMaxMb = rssMb(server.pid);
          let connectionsMax = 0;
          const sampler = setInterval(() => {
            rssMaxMb = Math.max(rssMaxMb, rssMb(server.pid));
            if (target !== 'bare') {
              void fetch(`http://127.0.0.1:${server.port}/stats`)
                .then((r) => r.json() as Promise<{ connections_open?: number }>)
                .then((s) => (connectionsMax = Math.max(connectionsMax, s.connections_open ?? 0)))
                .catch(() => undefined);
            }
          }, 500);
          const url = `http://127.0.0.1:${server.port}`;
          const measure = (seconds: number): Promise<LoadResult> =>
            wrk !== undefined && workload.rate === undefined ? runWrk(wrk, url, workload, seconds, join(workDir, 'scripts')) : runLoadProcess(url, workload, seconds);
          // Warm up (JIT, connection pools) before the measured run.
          await measure(WARMUP_S);
          rssMaxMb = rssMb(server.pid);
          const result = await measure(options.durationS);
          clearInterval(sampler);
          rows.push({ target, workload: workload.id, result, rssMaxMb, ...(held === undefined ? {} : { connectionsHeld: held }), ...(connectionsMax > 0 ? { serverConnectionsMax: connectionsMax } : {}) });
        } finally {
          if (holder !== undefined) await stopChild(holder);
          await server.stop();
          rmSync(join(workDir, workload.id), { recursive: true, force: true });
        }
      }
    }
  } finally {
    bar?.update(rows.length, { run: 'done' });
    bar?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  await writeResults(rows, options, workloads);
  return rows;
}

function ratio(rows: Row[], row: Row): string {
  const bare = rows.find((r) => r.target === 'bare' && r.workload === row.workload);
  if (bare === undefined || row.target === 'bare' || bare.result.okPerSecond === 0) return row.target === 'bare' ? '1.00' : '-';
  return (row.result.okPerSecond / bare.result.okPerSecond).toFixed(2);
}

export function resultsTable(rows: Row[]): string {
  return renderTable(
    ['phase', 'workload', '2xx req/s', 'samples/s', 'x bare', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'success', 'non-2xx', 'RSS MB'],
    rows.map((r) => [
      r.target,
      r.workload,
      f0(r.result.okPerSecond),
      f0(r.result.samplesPerSecond),
      ratio(rows, r),
      ms(r.result.latencyOk.p50),
      ms(r.result.latencyOk.p90),
      ms(r.result.latencyOk.p99),
      ms(r.result.latencyOk.max),
      `${(r.result.successRate * 100).toFixed(1)}%`,
      Object.entries(r.result.statusCounts).filter(([s]) => !s.startsWith('2')).map(([s, n]) => `${s}:${n}`).join(' ') || '-',
      f0(r.rssMaxMb),
    ]),
  );
}

async function writeResults(rows: Row[], options: BenchOptions, workloads: Workload[]): Promise<void> {
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const table = resultsTable(rows);
  process.stdout.write(`\n${table}\n`);
  const held = rows.filter((r) => r.connectionsHeld !== undefined);
  const lines = [
    '# Ingestion benchmark (Craft #1)',
    '',
    `Produced by \`${options.command}\` on ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Machine: ${machine()}. The load generator, the server and nats-server share these cores.`,
    '',
    'How it was measured:',
    '- Every phase runs on a fresh platform (`craft up` with actors control, queue, ingestion) in its own process; the load generator is another process (`craft load`, undici); a bare `node:http` server answering 202 is the ceiling.',
    '- A 2xx means the batch is durably in the JetStream queue. Success counts 2xx only. Latency percentiles: wrk\'s HdrHistogram over every answer (all answers were 2xx unless the non-2xx column says otherwise); `craft load` records every 2xx latency, measured from the time a paced request was due.',
    '- The rate limiter runs in every phase at 1,000,000 requests/s per client (it works, it never refuses); each connection is its own client id.',
    '',
    `Workloads (each run ${options.durationS} s after ${WARMUP_S} s of unmeasured warm-up; closed-loop runs use wrk with one thread and a script that posts the batch with a per-request client id, the paced run uses \`craft load\`):`,
    ...workloads.map((w) => `- \`${w.id}\`: ${w.label} — \`${w.rate === undefined && findWrk() !== undefined ? wrkCommand(w, options.durationS) : loadCommand(w, options.durationS)}\`${w.hold === undefined ? '' : ` while \`node dist/cli/bench/hold-connections.js 127.0.0.1 <port> ${w.hold}\` holds idle connections`}`),
    '',
    '```',
    table,
    '```',
    '',
    ...(held.length > 0 ? ['Connections held open during the `hold-10k` runs (client side / largest count the server reported):', '', ...held.map((r) => `- ${r.target}: ${r.connectionsHeld} held${r.serverConnectionsMax === undefined ? '' : `, server saw ${r.serverConnectionsMax} open`}, RSS ${f0(r.rssMaxMb)} MB`), ''] : []),
    '![req/s and p99 by phase](ingestion.svg)',
    '',
  ];
  writeFileSync(join(outDir, 'ingestion.md'), lines.join('\n'));
  writeFileSync(join(outDir, 'ingestion.json'), JSON.stringify({ command: options.command, machine: machine(), durationS: options.durationS, rows }, null, 2) + '\n');
  const label = (t: string): string => (t === 'bare' ? 'bare node:http' : t.replace('ingestion.', ''));
  const throughput = rows.map((r) => ({ category: label(r.target), series: r.workload, value: Math.round(r.result.okPerSecond) }));
  const p99 = rows.map((r) => ({ category: label(r.target), series: r.workload, value: Number(r.result.latencyOk.p99.toFixed(2)) }));
  const svgThroughput = await renderSvg(groupedBarSpec('2xx requests per second by phase and workload', throughput, '2xx req/s', true));
  const svgLatency = await renderSvg(groupedBarSpec('p99 latency (ms) of 2xx answers by phase and workload', p99, 'p99 ms', true));
  writeFileSync(join(outDir, 'ingestion-throughput.svg'), svgThroughput);
  writeFileSync(join(outDir, 'ingestion-p99.svg'), svgLatency);
  writeFileSync(join(outDir, 'ingestion.svg'), combineSvgs(svgThroughput, svgLatency));
}

/** Stacks two SVG documents vertically in one file. */
function combineSvgs(top: string, bottom: string): string {
  const size = (svg: string): [number, number] => {
    const match = /<svg[^>]*width="([\d.]+)"[^>]*height="([\d.]+)"/.exec(svg);
    return match === null ? [800, 400] : [Number(match[1]), Number(match[2])];
  };
  const [w1, h1] = size(top);
  const [w2, h2] = size(bottom);
  const inner = (svg: string, y: number): string => svg.replace(/^<svg/, `<svg y="${y}"`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.max(w1, w2)}" height="${h1 + h2}">${inner(top, 0)}${inner(bottom, h1)}</svg>\n`;
}
