/**
 * A real Prometheus as a test oracle for our PromQL engine: it loads series into a fresh
 * Prometheus (Debian's `prometheus` 2.42) in its own temporary directory and answers instant
 * and range queries through the HTTP API, parsed into the same shape our checker reads.
 *
 * Two ways to load, both checked against 2.42 by test/prometheus-oracle.test.ts:
 * - `remote-write` (the default): Prometheus starts empty with its remote-write receiver on,
 *   and we POST the samples in time order. It carries staleness markers (the exact float64
 *   bits) and needs no second binary or process. Samples go in in time order across all series
 *   because the TSDB head refuses a sample older than an hour before the newest one it holds.
 * - `openmetrics`: `promtool tsdb create-blocks-from openmetrics` turns an OpenMetrics text file
 *   into blocks before Prometheus starts, so queries read persisted blocks rather than the head.
 *   OpenMetrics text cannot express a staleness marker (a `NaN` there is an ordinary NaN), so this
 *   loader refuses series that hold one.
 *
 * Data at 1970-01-01 (t ≥ 0) is kept: time-based retention is measured from the newest block,
 * not from the wall clock, and retention is set to 100 years besides. The `@` modifier and
 * negative offsets need no feature flag in 2.42 (both are on by default since 2.33).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import snappy from 'snappy';
import { freePort } from '../../actors/platform.js';
import { stopChild } from '../../core/child-process.js';
import { isStaleNaN, METRIC_NAME_LABEL, type Labels } from '../../core/model.js';
import { pdeathsigPrefix } from '../../core/nats/server.js';
import type { EvalCommand, PromqlResult, Sample, SeriesData, TestfileCommand } from './promql-testfile.js';

/** Thrown when `prometheus` (or, for the openmetrics loader, `promtool`) is not installed. */
export class OracleUnavailableError extends Error {
  override name = 'OracleUnavailableError';
}
/** Thrown when Prometheus does not start, or refuses the data (the message carries its log or answer). */
export class OracleStartError extends Error {
  override name = 'OracleStartError';
}

export const LOOKBACK_DELTA_MS_DEFAULT = 5 * 60_000;
export const START_TIMEOUT_MS_DEFAULT = 30_000;
/** Samples per remote-write request: Prometheus takes bigger ones, but errors then name less. */
export const REMOTE_WRITE_BATCH_SAMPLES_MAX = 50_000;
const STOP_TIMEOUT_MS = 10_000;
const READY_POLL_MS = 20;
const LOG_TAIL_CHARS = 4_000;
/** A free port can be taken between our probe and Prometheus's bind; try a few before giving up. */
const PORT_ATTEMPTS_MAX = 3;

export interface OracleOptions {
  /** `--query.lookback-delta`, in ms. */
  lookbackDeltaMs?: number;
  loader?: 'remote-write' | 'openmetrics';
  startTimeoutMs?: number;
  /** Extra `--enable-feature` names. */
  features?: string[];
  /** A tap test: the oracle's `stop` is registered as its teardown as soon as Prometheus runs. */
  test?: { teardown(fn: () => unknown): void };
}

export interface PrometheusOracle {
  readonly url: string;
  readonly pid: number;
  /** The temporary directory (config, TSDB), removed by `stop()`. */
  readonly dir: string;
  /** An instant query at `timeMs` (ms since the epoch). */
  query(expr: string, timeMs: number): Promise<PromqlResult>;
  /** A range query; bounds inclusive, all in ms. */
  queryRange(expr: string, startMs: number, endMs: number, stepMs: number): Promise<PromqlResult>;
  /** Stops Prometheus (SIGTERM, then SIGKILL) and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

/** An executable from the environment variable `variable`, else from PATH; undefined if neither holds one. */
function findExecutable(variable: string, name: string): string | undefined {
  const fromEnv = process.env[variable];
  const path = fromEnv !== undefined && fromEnv !== '' ? fromEnv : spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

/** The binaries, from PROMETHEUS_BIN / PROMTOOL_BIN or PATH; undefined where missing. */
export function findPrometheusBinaries(): { prometheus: string | undefined; promtool: string | undefined } {
  return { prometheus: findExecutable('PROMETHEUS_BIN', 'prometheus'), promtool: findExecutable('PROMTOOL_BIN', 'promtool') };
}

/** Why an oracle cannot run here, for `t.skip`; undefined when it can. */
export function oracleUnavailableReason(loader: OracleOptions['loader'] = 'remote-write'): string | undefined {
  const { prometheus, promtool } = findPrometheusBinaries();
  if (prometheus === undefined) return 'prometheus not installed (apt-get install -y prometheus)';
  if (loader === 'openmetrics' && promtool === undefined) return 'promtool not installed (apt-get install -y prometheus)';
  return undefined;
}

/** Labels as Prometheus stores them: an empty value is the same as no label. */
function storedLabels(labels: Labels): [string, string][] {
  return Object.entries(labels).filter(([, v]) => v !== '').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * One entry per stored label set, samples in time order: two loads may add to the same series,
 * and both loaders need a series' samples together and sorted.
 */
function mergeSeries(series: SeriesData[]): SeriesData[] {
  const merged = new Map<string, SeriesData>();
  for (const s of series) {
    const key = JSON.stringify(storedLabels(s.labels));
    const entry = merged.get(key);
    if (entry === undefined) merged.set(key, { labels: s.labels, samples: [...s.samples] });
    else entry.samples.push(...s.samples);
  }
  for (const s of merged.values()) {
    s.samples.sort((a, b) => a.t - b.t);
    // Prometheus keeps one of two samples at one time (silently, within one write), so refuse them.
    const twice = s.samples.find((p, i) => i > 0 && s.samples[i - 1]!.t === p.t);
    if (twice !== undefined) throw new OracleStartError(`series ${JSON.stringify(s.labels)} has two samples at ${twice.t} ms`);
  }
  return [...merged.values()];
}

/**
 * Starts a Prometheus holding `series` and resolves once it answers queries. Stop it with
 * `stop()` (in a t.teardown); if starting or loading fails, everything started is stopped first.
 */
export async function startPrometheusOracle(series: SeriesData[], options: OracleOptions = {}): Promise<PrometheusOracle> {
  const loader = options.loader ?? 'remote-write';
  series = mergeSeries(series);
  const unavailable = oracleUnavailableReason(loader);
  if (unavailable !== undefined) throw new OracleUnavailableError(unavailable);
  const dir = mkdtempSync(join(tmpdir(), 'craft-prometheus-oracle-'));
  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= (async () => {
    if (child !== undefined) await stopChild(child, STOP_TIMEOUT_MS);
    rmSync(dir, { recursive: true, force: true });
  })());
  try {
    if (loader === 'openmetrics') createBlocks(series, dir);
    const started = await startProcess(dir, loader, options);
    child = started.child;
    const url = started.url;
    options.test?.teardown(stop);
    if (loader === 'remote-write') await remoteWrite(url, series);
    return {
      url,
      pid: child.pid!,
      dir,
      query: (expr, timeMs) => apiQuery(url, '/api/v1/query', { query: expr, time: seconds(timeMs) }),
      queryRange: (expr, startMs, endMs, stepMs) => apiQuery(url, '/api/v1/query_range', { query: expr, start: seconds(startMs), end: seconds(endMs), step: seconds(stepMs) }),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startProcess(dir: string, loader: string, options: OracleOptions): Promise<{ child: ChildProcess; url: string }> {
  const configFile = join(dir, 'prometheus.yml');
  // No scrape configs: the TSDB holds nothing but what we load.
  writeFileSync(configFile, 'global: {}\n');
  const prometheus = findPrometheusBinaries().prometheus!;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      '--storage.tsdb.retention.time=100y',
      `--web.listen-address=127.0.0.1:${port}`,
      `--query.lookback-delta=${options.lookbackDeltaMs ?? LOOKBACK_DELTA_MS_DEFAULT}ms`,
      ...(loader === 'remote-write' ? ['--web.enable-remote-write-receiver'] : []),
      ...((options.features ?? []).length > 0 ? [`--enable-feature=${options.features!.join(',')}`] : []),
    ];
    const [command, ...prefix] = [...pdeathsigPrefix(), prometheus];
    const child = spawn(command!, [...prefix, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-LOG_TAIL_CHARS)));
    child.on('error', (error) => (log += `\n${error.message}`));
    // A leaked oracle must not keep the test process alive until tap's timeout; setpriv's
    // pdeathsig (pdeathsigPrefix) takes Prometheus down when we exit.
    child.unref();
    (child.stderr as unknown as { unref(): void }).unref();
    const url = `http://127.0.0.1:${port}`;
    const ready = await waitReady(child, url, options.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT);
    if (ready) return { child, url };
    await stopChild(child, STOP_TIMEOUT_MS);
    if (!/address already in use/.test(log) || attempt >= PORT_ATTEMPTS_MAX) throw new OracleStartError(`prometheus did not become ready: ${log}`);
  }
}

/** Polls `/-/ready` until it answers 200 (true), the process exits or the time runs out (false). */
async function waitReady(child: ChildProcess, url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    const ok = await fetch(`${url}/-/ready`).then(async (r) => (await r.arrayBuffer(), r.ok), () => false);
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  return false;
}

const seconds = (ms: number): string => String(ms / 1000);

/** A sample value as OpenMetrics text; Go's ParseFloat reads all of these, `-0` included. */
function openMetricsValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Object.is(v, -0) ? '-0' : String(v);
}

const escapeLabelValue = (value: string): string => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** Writes the series as OpenMetrics text and has promtool turn it into blocks under `dir/tsdb`. */
function createBlocks(series: SeriesData[], dir: string): void {
  const lines: string[] = [];
  // Grouped by metric name: OpenMetrics wants a metric family's samples together.
  const sorted = [...series].sort((a, b) => ((a.labels[METRIC_NAME_LABEL] ?? '') < (b.labels[METRIC_NAME_LABEL] ?? '') ? -1 : 1));
  for (const s of sorted) {
    const name = s.labels[METRIC_NAME_LABEL] ?? '';
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new OracleStartError(`the openmetrics loader needs a metric name on every series, got ${JSON.stringify(s.labels)}`);
    if (s.samples.some((p) => isStaleNaN(p.v))) {
      throw new OracleStartError(`series ${JSON.stringify(s.labels)} holds staleness markers, which OpenMetrics text cannot carry (its NaN is an ordinary NaN); use the remote-write loader`);
    }
    const labelText = storedLabels(s.labels).filter(([k]) => k !== METRIC_NAME_LABEL).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
    const prefix = labelText === '' ? name : `${name}{${labelText}}`;
    for (const p of s.samples) lines.push(`${prefix} ${openMetricsValue(p.v)} ${seconds(p.t)}`);
  }
  const file = join(dir, 'data.om');
  writeFileSync(file, `${lines.join('\n')}${lines.length > 0 ? '\n' : ''}# EOF\n`);
  const result = spawnSync(findPrometheusBinaries().promtool!, ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', file, join(dir, 'tsdb')], { encoding: 'utf8' });
  if (result.status !== 0) throw new OracleStartError(`promtool create-blocks-from openmetrics failed: ${result.stderr}${result.stdout}`);
}

/**
 * A remote-write 1.0 `WriteRequest`, encoded by hand rather than with protobufjs
 * (core/ingestion/remote-write.ts): a JavaScript number cannot carry a staleness marker's exact
 * bits (V8 sets the quiet bit, 0x7ff0…02 becomes 0x7ff8…02) and Prometheus matches all 64, so
 * the marker is written as bytes.
 */
function encodeWriteRequest(batch: { labels: [string, string][]; samples: Sample[] }[]): Buffer {
  const bytes: number[] = [];
  const varint = (value: bigint, out: number[]): void => {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
    out.push(Number(v));
  };
  const field = (tag: number, body: number[], out: number[]): void => { out.push(tag); varint(BigInt(body.length), out); for (const b of body) out.push(b); };
  const double = new DataView(new ArrayBuffer(8));
  for (const s of batch) {
    const series: number[] = [];
    for (const [name, value] of s.labels) {
      const label: number[] = [];
      field(0x0a, [...Buffer.from(name)], label);
      field(0x12, [...Buffer.from(value)], label);
      field(0x0a, label, series);
    }
    for (const p of s.samples) {
      const sample: number[] = [0x09];
      if (isStaleNaN(p.v)) { double.setUint32(4, 0x7ff00000, true); double.setUint32(0, 0x00000002, true); } else double.setFloat64(0, p.v, true);
      for (let i = 0; i < 8; i++) sample.push(double.getUint8(i));
      sample.push(0x10);
      varint(BigInt(p.t), sample);
      field(0x12, sample, series);
    }
    field(0x0a, series, bytes);
  }
  return snappy.compressSync(Buffer.from(bytes));
}

/** Sends every sample, oldest first across all series, in batches. */
async function remoteWrite(url: string, series: SeriesData[]): Promise<void> {
  const points = series.flatMap((s, index) => s.samples.map((p) => ({ index, p })));
  points.sort((a, b) => a.p.t - b.p.t || a.index - b.index);
  const labels = series.map((s) => storedLabels(s.labels));
  for (let start = 0; start < points.length; start += REMOTE_WRITE_BATCH_SAMPLES_MAX) {
    const bySeries = new Map<number, Sample[]>();
    for (const { index, p } of points.slice(start, start + REMOTE_WRITE_BATCH_SAMPLES_MAX)) {
      const list = bySeries.get(index) ?? [];
      list.push(p);
      bySeries.set(index, list);
    }
    const body = encodeWriteRequest([...bySeries].map(([index, samples]) => ({ labels: labels[index]!, samples })));
    const response = await fetch(`${url}/api/v1/write`, {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'snappy', 'X-Prometheus-Remote-Write-Version': '0.1.0' },
    });
    const text = await response.text();
    if (!response.ok) throw new OracleStartError(`Prometheus refused the remote write (${response.status}): ${text}`);
  }
}

/** A value as the API prints it: a decimal string, "NaN", "+Inf" or "-Inf". */
function parseValue(text: string): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new Error(`not a sample value: ${JSON.stringify(text)}`);
  return v;
}

type ApiPoint = [number, string];
const point = ([t, v]: ApiPoint): Sample => ({ t: Math.round(t * 1000), v: parseValue(v) });

async function apiQuery(url: string, path: string, params: Record<string, string>): Promise<PromqlResult> {
  const response = await fetch(`${url}${path}`, { method: 'POST', body: new URLSearchParams(params) });
  const body = (await response.json()) as {
    status: string; errorType?: string; error?: string; warnings?: string[];
    data?: { resultType: string; result: unknown };
  };
  if (body.status !== 'success') return { status: 'error', errorType: body.errorType ?? `http ${response.status}`, error: body.error ?? '' };
  const warnings = body.warnings === undefined ? {} : { warnings: body.warnings };
  const data = body.data!;
  switch (data.resultType) {
    case 'vector':
      return { status: 'success', resultType: 'vector', ...warnings, result: (data.result as { metric: Labels; value: ApiPoint }[]).map((s) => { const p = point(s.value); return { labels: s.metric, t: p.t, v: p.v }; }) };
    case 'matrix':
      return { status: 'success', resultType: 'matrix', ...warnings, result: (data.result as { metric: Labels; values: ApiPoint[] }[]).map((s) => ({ labels: s.metric, samples: s.values.map(point) })) };
    case 'scalar':
      return { status: 'success', resultType: 'scalar', ...warnings, result: point(data.result as ApiPoint) };
    case 'string': {
      const [t, value] = data.result as [number, string];
      return { status: 'success', resultType: 'string', ...warnings, result: { t: Math.round(t * 1000), value } };
    }
    default:
      throw new Error(`unknown result type ${data.resultType}`);
  }
}

/** Prometheus's answer to one eval of a test file. */
export interface OracleAnswer { command: EvalCommand; actual: PromqlResult }

/**
 * Runs a parsed test file's evals against Prometheus: loads accumulate until `clear`, and each
 * group of evals after a load or clear is answered by one Prometheus holding everything loaded
 * so far (one start per group, not per eval). Returns Prometheus's answer to every eval in order.
 */
export async function runTestfileAgainstOracle(commands: TestfileCommand[], options: OracleOptions = {}): Promise<OracleAnswer[]> {
  const answers: OracleAnswer[] = [];
  let loaded: SeriesData[] = [];
  let oracle: PrometheusOracle | undefined;
  try {
    for (const command of commands) {
      if (command.kind !== 'eval') {
        await oracle?.stop();
        oracle = undefined;
        loaded = command.kind === 'clear' ? [] : [...loaded, ...command.series];
        continue;
      }
      oracle ??= await startPrometheusOracle(loaded, options);
      const actual = command.mode === 'instant'
        ? await oracle.query(command.expr, command.atMs)
        : await oracle.queryRange(command.expr, command.startMs, command.endMs, command.stepMs);
      answers.push({ command, actual });
    }
  } finally {
    await oracle?.stop();
  }
  return answers;
}
