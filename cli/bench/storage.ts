/**
 * `craft bench storage`: every `storage.engine` plugin on every `storage.kv` engine, in
 * process, through the store API (core/slots/storage.ts) — no NATS, no storage actor, no
 * queue: it measures the engine, not the path a sample takes to it. Each (engine, kv) runs
 * in a child process of its own (this file, forked), so its RSS, heap and JIT start from
 * the same point; the parent shows progress, prints the table and writes
 * docs/results/storage.{md,json,svg}.
 *
 * A target is `engine[@kv][:option=value,…]`; `@-` runs an engine without a KV engine, and the
 * options `series` and `hours` lower (or raise) that target's dataset, the others go to the
 * engine plugin (checked against its schema).
 */
import { fork, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { PluginRegistry } from '../../core/plugins/registry.js';
import { createLogger } from '../../core/log.js';
import { systemClock } from '../../core/clock.js';
import { isStaleNaN, type LabelMatcher, type SeriesSamples } from '../../core/model.js';
import { positionKey, type SampleStore, type StorageContext, type StoreStats } from '../../core/slots/storage.js';
import type { KvEngine } from '../../core/slots/kv.js';
import { renderTable } from '../table.js';
import { groupedBarSpec, renderSvg } from '../chart.js';
import { parseTarget } from './ingestion.js';
import { datasetRange, HOURS_MAX, SCRAPE_INTERVAL_MS, SCRAPE_JITTER_MS_MAX, ScrapeDataset, SERIES_MAX, SERIES_PER_CLUSTER, SERIES_PER_TARGET, type DatasetSpec } from './storage-dataset.js';

/** Samples per commit: what one queue delivery batch of the actor holds at most. */
export const SAMPLES_PER_COMMIT = 10_000;
/** The epoch and partition of the positions committed with every batch, as the actor writes them. */
const POSITION_KEY = positionKey(1, 0);
/** Resolution of the aggregation range queries, ms, and their lookback (PromQL's default 5 min). */
export const AGGREGATION_STEP_MS = 60_000;
export const LOOKBACK_MS = 5 * 60_000;
/** Every query kind runs once unmeasured, then at least `min` and at most `max` times, stopping after `budgetMs`. */
export const AGGREGATION_RUNS = { min: 5, max: 20, budgetMs: 15_000 } as const;
/**
 * A slow aggregation gets fewer measured runs (at least one), about this much time per query
 * kind in all, so that one slow engine does not hold the whole benchmark for many minutes.
 */
export const SLOW_AGGREGATION_BUDGET_MS = 40_000;
export const SINGLE_SERIES_RUNS = { min: 20, max: 200, budgetMs: 5_000 } as const;
/** Engines left out of the default plan, or given a smaller dataset there, and why. */
export const DEFAULT_PLAN_EXCEPTIONS: Record<string, { target: string; why: string }> = {
  'craft0.jsonl-store': { target: 'craft0.jsonl-store@-:hours=1', why: 'it keeps no KV engine and every select scans the whole file, so it gets 1 h of the dataset instead of 24 h' },
};
const PROGRESS_EVERY_COMMITS = 20;
const LOAD_SAMPLE_INTERVAL_MS = 5_000;
const NO_KV = '-';
const SELF = fileURLToPath(import.meta.url);
/** The directory holding the dist/ this code runs from. */
const BUILT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD_FLAG = '--bench-storage-child';

export interface StorageTarget {
  /** As written: `engine@kv[:options]`. */
  id: string;
  engine: string;
  /** `undefined` for `@-`. */
  kv: string | undefined;
  options: Record<string, number | string>;
  dataset: DatasetSpec;
}

export interface Percentiles {
  runs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface QueryResult extends Percentiles {
  /** `rollup`: `Querier.rollup` with one window over the whole range (sum/avg/max_over_time of every series). */
  query: 'sum' | 'avg' | 'max' | 'rollup' | 'single';
  series: number;
  samples: number;
  /** Sum of the query's result values, to compare engines: equal data gives equal sums. */
  checksum: number;
}

export interface StorageRow {
  target: string;
  engine: string;
  kv: string;
  dataset: DatasetSpec;
  samples: number;
  append: { samplesPerSecond: number; seconds: number; commits: number; commitMs: Percentiles };
  /**
   * The same load into a fresh store, passing back the series reference each `append` returned
   * (as Prometheus's scrape loop does); absent for stores that give no references.
   */
  appendWithRefs?: { samplesPerSecond: number; seconds: number; commitMs: Percentiles };
  flushSeconds: number;
  /** `stats()` right after `store.flush()`. */
  statsFlushed: StoreStats;
  /** `KvEngine.compactAll()` of every KV engine of the store, and a second flush. */
  compactSeconds: number;
  /** `stats()` after that compaction: the table's bytes per sample. */
  stats: StoreStats;
  /** `stats()` after a second flush once the queries ran, `settledAfterSeconds` later: the KV engine's background work had time to finish. */
  statsSettled: StoreStats;
  settledAfterSeconds: number;
  /** Every file under the store's directory at that second flush, as a cross-check of `stats().bytes`. */
  directoryBytes: number;
  /** Bytes of the keys and values live in the KV engine at that point, by the key's first byte (the layout's tag). */
  liveKvBytesByTag: Record<string, number>;
  memory: { gc: boolean; rssBeforeBytes: number; rssAfterLoadBytes: number; rssAfterFlushBytes: number; rssBytesPerSeries: number; heapBytesPerSeries: number };
  queries: QueryResult[];
  /** The machine's 1-minute load average while the row ran (sampled by the parent): other work on the machine shows here. */
  loadAverage?: { min: number; max: number };
  /** What did not hold: failed checks, or the error that ended the run. */
  problems: string[];
}

/** `engine[@kv][:key=value,…]` with the dataset keys taken out. */
export function parseStorageTarget(text: string, defaults: DatasetSpec): StorageTarget {
  const { plugin, options } = parseTarget(text);
  const [engine, kv] = plugin.split('@') as [string, string | undefined];
  const dataset = { ...defaults };
  const engineOptions: Record<string, number | string> = {};
  for (const [key, value] of Object.entries(options)) {
    if (key === 'series' || key === 'hours') dataset[key] = Number(value);
    else engineOptions[key] = value;
  }
  return { id: text, engine, kv: kv === NO_KV ? undefined : kv, options: engineOptions, dataset };
}

/** The default plan: every storage engine on every KV engine, except the engines in `DEFAULT_PLAN_EXCEPTIONS`. */
export function storageTargets(registry: PluginRegistry, defaults: DatasetSpec): StorageTarget[] {
  const engines = registry.list().filter((p) => p.slot === 'storage.engine').map((p) => p.id);
  const kvs = registry.list().filter((p) => p.slot === 'storage.kv').map((p) => p.id);
  return engines.flatMap((engine) => {
    const exception = DEFAULT_PLAN_EXCEPTIONS[engine];
    if (exception !== undefined) return [parseStorageTarget(exception.target, defaults)];
    return kvs.map((kv) => parseStorageTarget(`${engine}@${kv}`, defaults));
  });
}

/** Nearest-rank percentiles of durations in ms. */
export function percentiles(durationsMs: number[]): Percentiles {
  const sorted = [...durationsMs].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  return { runs: sorted.length, p50Ms: at(50), p99Ms: at(99), maxMs: sorted.at(-1) ?? 0 };
}

/**
 * A PromQL-like `sum|avg|max(selection)` range query at `AGGREGATION_STEP_MS`: at every step
 * each series contributes its newest sample at or before the step, if not older than the
 * lookback and not a staleness marker. The benchmark computes this itself over what `select`
 * returned, so that it measures the store, not the query engine (`craft bench query` does that).
 */
export function aggregate(selected: SeriesSamples[], func: 'sum' | 'avg' | 'max', minTimeMs: number, maxTimeMs: number): Float64Array {
  const steps = Math.floor((maxTimeMs - minTimeMs) / AGGREGATION_STEP_MS) + 1;
  const sums = new Float64Array(steps);
  const counts = new Uint32Array(steps);
  const maxima = new Float64Array(steps).fill(-Infinity);
  for (const { timestampsMs, values } of selected) {
    let j = -1;
    for (let step = 0; step < steps; step++) {
      const atMs = minTimeMs + step * AGGREGATION_STEP_MS;
      while (j + 1 < timestampsMs.length && timestampsMs[j + 1]! <= atMs) j += 1;
      if (j < 0 || atMs - timestampsMs[j]! > LOOKBACK_MS) continue;
      const value = values[j]!;
      if (isStaleNaN(value)) continue;
      sums[step] = sums[step]! + value;
      counts[step] = counts[step]! + 1;
      if (value > maxima[step]! || Number.isNaN(value)) maxima[step] = value;
    }
  }
  if (func === 'sum') return sums.map((s, i) => (counts[i] === 0 ? NaN : s));
  if (func === 'avg') return sums.map((s, i) => (counts[i] === 0 ? NaN : s / counts[i]!));
  return maxima.map((m, i) => (counts[i] === 0 ? NaN : m));
}

const checksumOf = (values: ArrayLike<number>): number => {
  let total = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) total += values[i]!;
  return total;
};

async function repeat(run: () => Promise<unknown>, limits: { min: number; max: number; budgetMs: number }): Promise<Percentiles> {
  const durations: number[] = [];
  const started = performance.now();
  while (durations.length < limits.max && (durations.length < limits.min || performance.now() - started < limits.budgetMs)) {
    const t0 = performance.now();
    await run();
    durations.push(performance.now() - t0);
  }
  return percentiles(durations);
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path);
    total += info.isDirectory() ? directoryBytes(path) : info.size;
  }
  return total;
}

type ChildMessage = { type: 'progress'; loaded: number; step: string } | { type: 'result'; row: StorageRow } | { type: 'error'; message: string };

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await run();
  return { result, ms: performance.now() - started };
}

/** Runs of an aggregation whose unmeasured run took `firstMs`: fewer when it is slow. */
const aggregationRuns = (firstMs: number): { min: number; max: number; budgetMs: number } => ({
  ...AGGREGATION_RUNS,
  min: Math.max(1, Math.min(AGGREGATION_RUNS.min, Math.floor(SLOW_AGGREGATION_BUDGET_MS / firstMs))),
});

/** The queries of a row, each checked against the dataset on its unmeasured run. */
async function measureQueries(store: SampleStore, dataset: ScrapeDataset, problems: string[]): Promise<QueryResult[]> {
  const [minTimeMs, maxTimeMs] = datasetRange(dataset.spec.hours);
  const cluster: LabelMatcher[] = [{ name: 'cluster', op: '=', value: 'c0' }];
  const clusterSeries = Math.min(dataset.spec.series, SERIES_PER_CLUSTER);
  const queries: QueryResult[] = [];
  for (const func of ['sum', 'avg', 'max'] as const) {
    const run = async (): Promise<{ series: number; samples: number; checksum: number }> => {
      const selected = await store.querier(minTimeMs, maxTimeMs).select(cluster, { stepMs: AGGREGATION_STEP_MS, func, grouping: [] });
      const samples = selected.reduce((n, s) => n + s.timestampsMs.length, 0);
      return { series: selected.length, samples, checksum: checksumOf(aggregate(selected, func, minTimeMs, maxTimeMs)) };
    };
    const { result: first, ms: firstMs } = await timed(run);
    if (first.series !== clusterSeries || first.samples !== clusterSeries * dataset.samplesPerSeries) {
      problems.push(`${func}: select returned ${first.series} series and ${first.samples} samples, expected ${clusterSeries} and ${clusterSeries * dataset.samplesPerSeries}`);
    }
    queries.push({ query: func, ...first, ...(await repeat(run, aggregationRuns(firstMs))) });
  }
  // `sum/avg/max_over_time` of every series over the whole range, from the store's own rollups.
  const runRollup = async (): Promise<{ series: number; samples: number; checksum: number }> => {
    const rolled = await store.querier(minTimeMs, maxTimeMs).rollup(cluster, maxTimeMs - minTimeMs + 1);
    let samples = 0;
    let sum = 0;
    for (const { windows } of rolled) {
      for (const window of windows) {
        samples += window.count;
        sum += window.sum;
      }
    }
    return { series: rolled.length, samples, checksum: sum };
  };
  const { result: rolledUp, ms: rollupMs } = await timed(runRollup);
  if (rolledUp.series !== clusterSeries || rolledUp.samples !== clusterSeries * dataset.samplesPerSeries) {
    problems.push(`rollup: ${rolledUp.series} series and ${rolledUp.samples} samples counted, expected ${clusterSeries} and ${clusterSeries * dataset.samplesPerSeries}`);
  }
  queries.push({ query: 'rollup', ...rolledUp, ...(await repeat(runRollup, aggregationRuns(rollupMs))) });
  // One gauge, every label matched exactly.
  const index = Math.min(1, dataset.spec.series - 1);
  const single: LabelMatcher[] = Object.entries(dataset.labels[index]!).map(([name, value]) => ({ name, op: '=', value }));
  const runSingle = (): Promise<SeriesSamples[]> => store.querier(minTimeMs, maxTimeMs).select(single);
  const got = await runSingle();
  const expected = dataset.seriesSamples(index);
  const mismatch = got.length !== 1 ? `${got.length} series` : got[0]!.timestampsMs.findIndex((t, i) => t !== expected.timestampsMs[i] || !Object.is(got[0]!.values[i], expected.values[i]));
  if (typeof mismatch === 'string' || mismatch >= 0 || got[0]!.timestampsMs.length !== expected.timestampsMs.length) {
    problems.push(`single-series select differs from the dataset: ${typeof mismatch === 'string' ? mismatch : `${got[0]!.timestampsMs.length} samples (expected ${expected.timestampsMs.length}), first difference at ${mismatch}`}`);
  }
  queries.push({ query: 'single', series: got.length, samples: got[0]?.timestampsMs.length ?? 0, checksum: checksumOf(got[0]?.values ?? []), ...(await repeat(runSingle, SINGLE_SERIES_RUNS)) });

  return queries;
}

/** Key and value bytes of every entry in the KV engines, by the key's first byte. */
async function liveBytes(kvs: KvEngine[]): Promise<Record<string, number>> {
  const byTag: Record<string, number> = {};
  for (const kv of kvs) {
    for await (const entries of kv.iterate()) {
      for (const [key, value] of entries) {
        const first = key[0];
        const tag = first === undefined ? '(empty)' : first > 0x20 && first < 0x7f ? String.fromCharCode(first) : `0x${first.toString(16)}`;
        byTag[tag] = (byTag[tag] ?? 0) + key.length + value.length;
      }
    }
  }
  return byTag;
}

/** Measures one target in this process (the forked child). */
/** Loads the dataset into `store`, 10,000 samples a commit; `refs`: pass back series references. */
async function load(store: SampleStore, dataset: ScrapeDataset, refs: boolean, progress: (loaded: number) => void): Promise<{ seconds: number; commits: number; added: number; commitDurations: number[] }> {
  // Batches are generated outside the timed part, appended and committed inside it.
  const stream = dataset.stream(SAMPLES_PER_COMMIT);
  const refOf = new Array<number>(dataset.spec.series).fill(0);
  const commitDurations: number[] = [];
  let added = 0;
  let commits = 0;
  let loaded = 0;
  for (let batch = stream.next(); batch !== undefined; batch = stream.next()) {
    const started = performance.now();
    const appender = store.appender();
    if (refs) {
      for (let i = 0; i < batch.length; i++) {
        const series = batch.series[i]!;
        refOf[series] = appender.append(dataset.labels[series]!, batch.timestampsMs[i]!, batch.values[i]!, false, refOf[series]);
      }
    } else {
      for (let i = 0; i < batch.length; i++) appender.append(dataset.labels[batch.series[i]!]!, batch.timestampsMs[i]!, batch.values[i]!);
    }
    const result = await appender.commit({ [POSITION_KEY]: ++commits });
    commitDurations.push(performance.now() - started);
    added += result.added;
    loaded += batch.length;
    if (commits % PROGRESS_EVERY_COMMITS === 0) progress(loaded);
  }
  return { seconds: commitDurations.reduce((a, b) => a + b, 0) / 1_000, commits, added, commitDurations };
}

/** Whether the store gives series references (a store without them returns 0 from `append`). */
function givesRefs(store: SampleStore, dataset: ScrapeDataset): boolean {
  const appender = store.appender();
  const ref = appender.append(dataset.labels[0]!, 0, 0);
  appender.rollback();
  return ref !== 0;
}

async function measure(target: StorageTarget, report: (message: ChildMessage) => void): Promise<StorageRow> {
  const { registry } = await PluginRegistry.load();
  const log = createLogger('bench');
  const root = mkdtempSync(join(tmpdir(), 'craft-bench-storage-'));
  let kvs: KvEngine[] = [];
  const contextIn = (dataDir: string): StorageContext => ({
    dataDir,
    log,
    clock: systemClock,
    openKv: async (name) => {
      if (target.kv === undefined) throw new Error(`${target.engine} opens a KV engine; name one (${target.engine}@kv.level)`);
      const kv = registry.instantiate('storage.kv', target.kv, { dataDir: join(dataDir, name), log });
      await kv.open();
      kvs.push(kv);
      return kv;
    },
  });
  const dataset = new ScrapeDataset(target.dataset);
  const problems: string[] = [];
  const gc = (globalThis as { gc?: () => void }).gc;
  const settle = (): NodeJS.MemoryUsage => {
    gc?.();
    gc?.();
    return process.memoryUsage();
  };
  const dataDir = join(root, 'store');
  const context = contextIn(dataDir);
  const before = settle();
  let row: StorageRow;
  const store: SampleStore = registry.instantiate('storage.engine', target.engine, context, target.options);
  try {
    await store.open();
    // The load by labels, as the storage actor appends.
    const { seconds: loadSeconds, commits, added, commitDurations } = await load(store, dataset, false, (n) => report({ type: 'progress', loaded: n, step: 'loading' }));
    report({ type: 'progress', loaded: dataset.totalSamples, step: 'flushing' });
    if (added !== dataset.totalSamples) problems.push(`commits reported ${added} samples added, the dataset has ${dataset.totalSamples}`);
    const afterLoad = settle();
    const flushStarted = performance.now();
    await store.flush();
    const flushSeconds = (performance.now() - flushStarted) / 1_000;
    const statsFlushed = store.stats();
    // Whatever the store's flush did, every KV engine it opened is compacted once more, then
    // flushed so that `stats()` measures the disk again.
    const compactStarted = performance.now();
    for (const kv of kvs) await kv.compactAll();
    await store.flush();
    const compactSeconds = (performance.now() - compactStarted) / 1_000;
    const afterFlush = settle();
    const stats = store.stats();
    const flushedAt = performance.now();
    if (stats.samples !== dataset.totalSamples) problems.push(`stats() counts ${stats.samples} samples, the dataset has ${dataset.totalSamples}`);
    if (stats.series !== dataset.spec.series) problems.push(`stats() counts ${stats.series} series, the dataset has ${dataset.spec.series}`);

    report({ type: 'progress', loaded: dataset.totalSamples, step: 'querying' });
    const queries = await measureQueries(store, dataset, problems);
    await store.flush();
    const statsSettled = store.stats();
    const settledAfterSeconds = (performance.now() - flushedAt) / 1_000;
    const directory = directoryBytes(dataDir);
    const liveKvBytesByTag = await liveBytes(kvs);
    const series = dataset.spec.series;
    row = {
      target: target.id,
      engine: target.engine,
      kv: target.kv ?? NO_KV,
      dataset: dataset.spec,
      samples: dataset.totalSamples,
      append: { samplesPerSecond: dataset.totalSamples / loadSeconds, seconds: loadSeconds, commits, commitMs: percentiles(commitDurations) },
      flushSeconds,
      statsFlushed,
      compactSeconds,
      stats,
      statsSettled,
      settledAfterSeconds,
      directoryBytes: directory,
      liveKvBytesByTag,
      memory: {
        gc: gc !== undefined,
        rssBeforeBytes: before.rss,
        rssAfterLoadBytes: afterLoad.rss,
        rssAfterFlushBytes: afterFlush.rss,
        rssBytesPerSeries: (afterLoad.rss - before.rss) / series,
        heapBytesPerSeries: (afterLoad.heapUsed - before.heapUsed) / series,
      },
      queries,
      problems,
    };
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  } finally {
    await store.close({ destroy: true }).catch(() => undefined);
  }
  // Then, for a store that gives references, the same load passing them back, into a store of its own.
  kvs = [];
  const refsStore: SampleStore = registry.instantiate('storage.engine', target.engine, contextIn(join(root, 'refs')), target.options);
  try {
    await refsStore.open();
    if (givesRefs(refsStore, dataset)) {
      const loaded = await load(refsStore, dataset, true, (n) => report({ type: 'progress', loaded: n, step: 'loading with refs' }));
      if (loaded.added !== dataset.totalSamples) problems.push(`commits with refs reported ${loaded.added} samples added, the dataset has ${dataset.totalSamples}`);
      row.appendWithRefs = { samplesPerSecond: dataset.totalSamples / loaded.seconds, seconds: loaded.seconds, commitMs: percentiles(loaded.commitDurations) };
    }
  } finally {
    await refsStore.close({ destroy: true }).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
  return row;
}

/** Forks a child for one target; resolves with its row, or a row that says why it failed. */
function runChild(target: StorageTarget, onProgress: (loaded: number, step: string) => void): Promise<StorageRow | { target: string; error: string }> {
  return new Promise((resolvePromise) => {
    const child = fork(SELF, [CHILD_FLAG], { execArgv: [...process.execArgv, '--expose-gc'], env: { ...process.env, CRAFT_LOG: process.env.CRAFT_LOG ?? 'warn' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let outcome: StorageRow | { target: string; error: string } | undefined;
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'progress') onProgress(message.loaded, message.step);
      else if (message.type === 'result') outcome = message.row;
      else outcome = { target: target.id, error: message.message };
    });
    child.once('exit', (code, signal) => resolvePromise(outcome ?? { target: target.id, error: `the child exited with ${signal ?? code} before reporting` }));
    child.send(target);
  });
}

export interface StorageBenchOptions {
  targets: StorageTarget[];
  /** The dataset of every target that does not name its own. */
  dataset: DatasetSpec;
  outDir: string;
  command: string;
}

/** The commit the plugins were built from, and which of their files differed from it. */
export function codeVersion(): string {
  // Porcelain lines are `XY path`: only their ends may be trimmed.
  const git = (...args: string[]): string => spawnSync('git', args, { encoding: 'utf8' }).stdout.trimEnd();
  const head = git('rev-parse', '--short', 'HEAD').trim();
  if (head === '') return 'not a git checkout';
  const changed = git('status', '--porcelain', '--', 'core', 'plugins', 'actors').split('\n').filter(Boolean).map((line) => line.slice(3));
  const built = resolve(BUILT_ROOT) === resolve(process.cwd()) ? '' : `; the compiled code was loaded from a copy in ${BUILT_ROOT}`;
  return `commit ${head}${changed.length === 0 ? ', core/, plugins/ and actors/ as committed' : `, with uncommitted changes in ${changed.map((f) => `\`${f}\``).join(', ')}`}${built}`;
}

export function storageMachine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const fsType = spawnSync('df', ['--output=fstype', tmpdir()], { encoding: 'utf8' }).stdout.trim().split('\n').at(-1) ?? 'unknown';
  return `${availableParallelism()} cores (${cpu}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, Linux ${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}; stores in ${tmpdir()} (${fsType})`;
}

/** The targets of the issue (Craft #3). */
export const TARGETS = {
  appendSamplesPerSecond: 1_000_000,
  bytesPerSample: 1.37,
  aggregationMs: 1_000,
} as const;

const integer = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const percent = (n: number): string => `${(n * 100).toFixed(0)} %`;
const datasetText = (d: DatasetSpec): string => `${d.series}×${d.hours}h`;
const query = (row: StorageRow, name: QueryResult['query']): QueryResult | undefined => row.queries.find((q) => q.query === name);
const slowestAggregation = (row: StorageRow): QueryResult | undefined =>
  row.queries.filter((q) => q.query === 'sum' || q.query === 'avg' || q.query === 'max').reduce<QueryResult | undefined>((worst, q) => (worst === undefined || q.p99Ms > worst.p99Ms ? q : worst), undefined);

export function storageTable(rows: StorageRow[]): string {
  const latency = (q: QueryResult | undefined): string => (q === undefined ? '-' : `${ms(q.p50Ms)}/${ms(q.p99Ms)}/${ms(q.maxMs)} (${q.runs})`);
  return renderTable(
    ['engine', 'kv', 'dataset', 'samples', 'append samples/s', 'with refs', 'commit p99 ms', 'bytes/sample', 'RSS B/series', 'sum ms p50/p99/max (runs)', 'avg ms p50/p99/max (runs)', 'max ms p50/p99/max (runs)', 'rollup ms p50/p99/max (runs)', '1 series ms p50/p99/max (runs)', 'load 1m', 'problems'],
    rows.map((r) => [
      r.engine,
      r.kv,
      datasetText(r.dataset),
      integer(r.samples),
      integer(r.append.samplesPerSecond),
      r.appendWithRefs === undefined ? '-' : integer(r.appendWithRefs.samplesPerSecond),
      ms(r.append.commitMs.p99Ms),
      r.stats.bytesPerSample.toFixed(2),
      integer(r.memory.rssBytesPerSeries),
      latency(query(r, 'sum')),
      latency(query(r, 'avg')),
      latency(query(r, 'max')),
      latency(query(r, 'rollup')),
      latency(query(r, 'single')),
      r.loadAverage === undefined ? '-' : `${r.loadAverage.min.toFixed(1)}–${r.loadAverage.max.toFixed(1)}`,
      r.problems.length === 0 ? '-' : String(r.problems.length),
    ]),
  );
}

/** Met, or short by how much, for each target. */
function verdicts(row: StorageRow): [append: string, bytes: string, aggregation: string, rollup: string] {
  const appendVerdict = (rate: number): string => `${integer(rate)}: ${rate >= TARGETS.appendSamplesPerSecond ? 'met' : `short by ${percent(1 - rate / TARGETS.appendSamplesPerSecond)}`}`;
  const appendText = `by labels ${appendVerdict(row.append.samplesPerSecond)}${row.appendWithRefs === undefined ? '' : `; with refs ${appendVerdict(row.appendWithRefs.samplesPerSecond)}`}`;
  const bytes = row.stats.bytesPerSample;
  const bytesText = `${bytes.toFixed(2)}: ${bytes <= TARGETS.bytesPerSample ? 'met' : `short: ${(bytes / TARGETS.bytesPerSample).toFixed(1)}× the target`}`;
  const comparable = row.dataset.series >= SERIES_PER_CLUSTER && row.dataset.hours >= 24;
  const latencyText = (q: QueryResult | undefined, name: string): string =>
    q === undefined
      ? '-'
      : `${name} p99 ${ms(q.p99Ms)} ms: ${!comparable ? `not comparable (dataset ${datasetText(row.dataset)})` : q.p99Ms < TARGETS.aggregationMs ? 'met' : `short: ${(q.p99Ms / TARGETS.aggregationMs).toFixed(1)}× the target`}`;
  const worst = slowestAggregation(row);
  return [appendText, bytesText, latencyText(worst, worst?.query ?? ''), latencyText(query(row, 'rollup'), 'rollup')];
}

/** Stacks SVG documents vertically in one file. */
function stackSvgs(svgs: string[]): string {
  const size = (svg: string): [number, number] => {
    const match = /<svg[^>]*width="([\d.]+)"[^>]*height="([\d.]+)"/.exec(svg);
    return match === null ? [800, 400] : [Number(match[1]), Number(match[2])];
  };
  let y = 0;
  let width = 0;
  const parts = svgs.map((svg) => {
    const [w, h] = size(svg);
    const part = svg.replace(/^<svg/, `<svg y="${y}"`);
    y += h;
    width = Math.max(width, w);
    return part;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}">${parts.join('')}</svg>\n`;
}

async function writeStorageResults(rows: StorageRow[], failed: { target: string; error: string }[], options: StorageBenchOptions, machineText: string, code: string): Promise<void> {
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const table = storageTable(rows);
  process.stdout.write(`\n${table}\n`);
  for (const f of failed) process.stdout.write(`FAILED ${f.target}: ${f.error}\n`);
  const defaults = options.dataset;
  const lowered = rows.filter((r) => r.dataset.series < defaults.series || r.dataset.hours < defaults.hours);
  const withProblems = rows.filter((r) => r.problems.length > 0);
  const checksums = new Map<string, Set<number>>();
  for (const r of rows) for (const q of r.queries) {
    const key = `${datasetText(r.dataset)} ${q.query}`;
    if (!checksums.has(key)) checksums.set(key, new Set());
    checksums.get(key)!.add(q.checksum);
  }
  const disagreeing = [...checksums].filter(([, sums]) => sums.size > 1).map(([key]) => key);
  const lines = [
    '# Storage benchmark (Craft #3)',
    '',
    `Produced by \`${options.command}\` on ${new Date().toISOString().slice(0, 10)} (after \`npx tsc -p .\`).`,
    '',
    `Machine: ${machineText}.`,
    '',
    `Code: ${code} (when the run started).`,
    '',
    'What it measures: each storage engine (`storage.engine` plugin) on each ordered key-value engine (`storage.kv` plugin), **in process, through the store API** (`SampleStore`, `Appender`, `Querier` of core/slots/storage.ts). There is no NATS, no storage actor and no queue: these are figures of the engine, not of the path a sample takes from ingestion to disk. Each (engine, kv) runs in a fresh child process (`--expose-gc`), one after another.',
    '',
    `Dataset (cli/bench/storage-dataset.ts, seed ${defaults.seed}): scrape-like, one sample per series every ${SCRAPE_INTERVAL_MS / 1_000} s with up to ±${SCRAPE_JITTER_MS_MAX} ms of jitter per sample, targets of ${SERIES_PER_TARGET} series scraped at their own offset in the interval; a third of the series counters (integer increments), a third gauges (a random walk at two decimals), a third constant or rarely changing; labels \`__name__\`, \`instance\`, \`job\`, \`cluster\` and one family label. This run: ${defaults.series} series × ${defaults.hours} h unless a target says otherwise (default 1,000 × 24, \`--series\` up to ${SERIES_MAX}, \`--hours\` up to ${HOURS_MAX}).`,
    '',
    'How each figure is measured:',
    `- **append samples/s**: the samples in time order, interleaved across series as scrapes arrive, ${SAMPLES_PER_COMMIT.toLocaleString('en-US')} per \`appender()\` … \`commit({'${POSITION_KEY}': n})\` (the positions the actor writes, n the batch number); wall time of append plus commit (which fsyncs), summed over the commits; generating the samples is outside the timed part. \`commit p99\` is the 99th percentile of those per-commit times. Each sample is appended by its labels, as the storage actor appends what the queue brings. **with refs**: the same load into a fresh store of its own (after the main one was measured and closed), passing back to \`append\` the series reference it returned for that series before, the way Prometheus's scrape loop uses \`Appender.Append(ref, …)\`: the store then skips building the series key and looking it up; \`-\` for stores that give no references.`,
    `- **bytes/sample**: \`store.stats().bytesPerSample\` after \`store.flush()\`, then \`KvEngine.compactAll()\` of every KV engine the store opened (deleted and overwritten entries dropped, files merged) and a second \`flush()\` so that the store measures its files again. The table below under "Where the bytes go" also has the figure right after the first flush and a breakdown.`,
    '- **RSS B/series**: process RSS after the load minus RSS before the store was opened (dataset labels and generators already allocated), divided by the series, both read after two `global.gc()` calls. It includes what does not scale with series (the KV engine\'s write buffer and block cache, JIT code), so with few series it overstates the per-series cost; `storage.json` also holds the V8 heap delta per series and RSS after the flush.',
    `- **sum / avg / max**: a PromQL-like \`sum|avg|max({cluster="c0"})\` range query over the whole range (${SERIES_PER_CLUSTER.toLocaleString('en-US')} series, or all when fewer), step ${AGGREGATION_STEP_MS / 1_000} s, lookback ${LOOKBACK_MS / 60_000} min. To measure the store rather than the query engine (whose figures are in query.md), the benchmark calls \`querier(min, max).select(…)\` (with hints \`stepMs\`, \`func\`) and computes the aggregation itself; the time is select plus aggregation. **rollup**: \`querier(min, max).rollup({cluster="c0"}, step)\` with one window over the whole range — what \`sum(sum_over_time(…[24h]))\`, \`avg_over_time\`, \`max_over_time\` need, answered by the store (from chunk summaries where it keeps them); the benchmark adds the windows up. **1 series**: \`select\` of one gauge by all its labels over the whole range. Each query runs once unmeasured (that run also checks the answer against the dataset), then ${AGGREGATION_RUNS.min}–${AGGREGATION_RUNS.max} times for the aggregations (stopping after ${AGGREGATION_RUNS.budgetMs / 1_000} s; an aggregation whose unmeasured run took longer than ${SLOW_AGGREGATION_BUDGET_MS / AGGREGATION_RUNS.min / 1_000} s runs fewer times, at least once, about ${SLOW_AGGREGATION_BUDGET_MS / 1_000} s in all — the work lowered so that a slow engine's run stays near five minutes) and ${SINGLE_SERIES_RUNS.min}–${SINGLE_SERIES_RUNS.max} times for the single series (${SINGLE_SERIES_RUNS.budgetMs / 1_000} s); nearest-rank p50/p99 and max, with the number of measured runs in brackets. With fewer than 100 runs the p99 is the max.`,
    `- **load 1m**: the lowest and highest 1-minute load average of the machine while the row ran (sampled every ${LOAD_SAMPLE_INTERVAL_MS / 1_000} s). The benchmark's own child and its KV engine's threads count in it; more than that means other work shared the ${availableParallelism()} cores, and the row's figures are the lower for it.`,
    '- Not measured here: the "acknowledged → queryable" delay and whether storage keeps up with ingestion. They need the whole platform (ingestion, queue, storage actor): `node bin/craft.js bench storage --platform` measures them, results in [storage-platform.md](storage-platform.md).',
    '',
    '```',
    table,
    '```',
    '',
    ...(failed.length === 0 ? [] : ['Runs that failed:', '', ...failed.map((f) => `- \`${f.target}\`: ${f.error}`), '']),
    '## Against the targets',
    '',
    `Targets of the issue: ≥ ${TARGETS.appendSamplesPerSecond.toLocaleString('en-US')} samples/s appended with batching; ≤ ${TARGETS.bytesPerSample} bytes per sample; a 24-hour aggregation over ${SERIES_PER_CLUSTER.toLocaleString('en-US')} series in < ${TARGETS.aggregationMs / 1_000} s (judged here by the p99 of the slowest of sum, avg, max — the cross-series aggregation the brief asks for, computed over \`select\` — and, apart, by the p99 of the store's own 24 h rollup).`,
    '',
    '| engine @ kv | append samples/s | bytes/sample | 24 h aggregation (select) | 24 h rollup |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.engine} @ ${r.kv} | ${verdicts(r).join(' | ')} |`),
    '',
    '### Where the bytes go',
    '',
    `Bytes per sample: \`stats()\` right after \`store.flush()\`; after \`compactAll()\` and a second flush (the table's figure); after one more flush once the queries had run (the KV engine's background work had had that long); every file under the store's directory at that point; and the keys and values live in the KV engine then, in all and for the largest key tags of the layout (see each plugin's layout comment: e.g. \`C\` chunks, \`D\` raw samples, \`W\` write-ahead records, \`I\` labels).`,
    '',
    '| engine @ kv | after flush | after compactAll | settled (s later) | files | live KV entries | largest tags |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const perSample = (bytes: number): string => (bytes / r.samples).toFixed(2);
      const tags = Object.entries(r.liveKvBytesByTag).sort((a, b) => b[1] - a[1]);
      const live = tags.reduce((n, [, bytes]) => n + bytes, 0);
      return `| ${r.engine} @ ${r.kv} | ${r.statsFlushed.bytesPerSample.toFixed(2)} | ${r.stats.bytesPerSample.toFixed(2)} | ${r.statsSettled.bytesPerSample.toFixed(2)} (${r.settledAfterSeconds.toFixed(0)} s) | ${perSample(r.directoryBytes)} | ${tags.length === 0 ? '-' : perSample(live)} | ${tags.slice(0, 4).map(([tag, bytes]) => `\`${tag}\` ${perSample(bytes)}`).join(', ') || '-'} |`;
    }),
    '',
    ...(lowered.length === 0 ? [] : ['Targets with a smaller dataset than the default:', '', ...lowered.map((r) => `- \`${r.target}\` (${datasetText(r.dataset)}): ${DEFAULT_PLAN_EXCEPTIONS[r.engine]?.why ?? 'lowered on the command line'}.`), '']),
    ...(withProblems.length === 0 ? ['Every run\'s checks held: the commits and `stats()` counted every sample and series, every select and rollup saw every sample of the series it asked for, and the single-series select returned the dataset\'s samples exactly.', ''] : ['Checks that did not hold:', '', ...withProblems.flatMap((r) => r.problems.map((p) => `- \`${r.target}\`: ${p}`)), '']),
    disagreeing.length === 0 ? 'Every engine gave the same query results (checksums in `storage.json`) on the same dataset.' : `Engines disagree on the result of: ${disagreeing.join(', ')} (checksums in \`storage.json\`).`,
    '',
    '![append throughput, bytes per sample, aggregation and rollup latency by engine and KV engine](storage.svg)',
    '',
  ];
  writeFileSync(join(outDir, 'storage.md'), lines.join('\n'));
  writeFileSync(join(outDir, 'storage.json'), JSON.stringify({ command: options.command, machine: machineText, code, samplesPerCommit: SAMPLES_PER_COMMIT, targets: TARGETS, rows, failed }, null, 2) + '\n');
  const bars = (value: (r: StorageRow) => number): { category: string; series: string; value: number }[] => rows.map((r) => ({ category: `${r.engine} (${datasetText(r.dataset)})`, series: r.kv, value: value(r) }));
  const p50 = (name: QueryResult['query']) => (r: StorageRow): number => Number((query(r, name)?.p50Ms ?? 0).toFixed(1));
  const svgs = await Promise.all([
    renderSvg(groupedBarSpec(`Append throughput, samples/s (target ≥ ${TARGETS.appendSamplesPerSecond.toLocaleString('en-US')})`, bars((r) => Math.round(r.append.samplesPerSecond)), 'samples/s', true)),
    renderSvg(groupedBarSpec(`Bytes per sample on disk after flush and compaction (target ≤ ${TARGETS.bytesPerSample})`, bars((r) => Number(r.stats.bytesPerSample.toFixed(2))), 'bytes/sample', true)),
    renderSvg(groupedBarSpec(`sum() over the whole range from select, p50 ms (target < ${TARGETS.aggregationMs})`, bars(p50('sum')), 'ms', true)),
    renderSvg(groupedBarSpec(`rollup over the whole range from the store, p50 ms (target < ${TARGETS.aggregationMs})`, bars(p50('rollup')), 'ms', true)),
  ]);
  writeFileSync(join(outDir, 'storage.svg'), stackSvgs(svgs));
}

export async function benchStorage(options: StorageBenchOptions): Promise<StorageRow[]> {
  const code = codeVersion();
  const total = options.targets.reduce((n, t) => n + new ScrapeDataset(t.dataset).totalSamples, 0);
  process.stdout.write(
    `craft bench storage — ${options.targets.length} targets, in process (the store API; no NATS, no actor, no queue)\nmachine: ${storageMachine()}\ncode: ${code}\ncommand: ${options.command}\n\n`,
  );
  const bar = process.stdout.isTTY ? new cliProgress.SingleBar({ format: ' {bar} {percentage}% | {value}/{total} samples | {run}', hideCursor: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(total, 0, { run: '' });
  const rows: StorageRow[] = [];
  const failed: { target: string; error: string }[] = [];
  let done = 0;
  try {
    for (const target of options.targets) {
      let lastStep = '';
      const samples = new ScrapeDataset(target.dataset).totalSamples;
      const loads = [loadavg()[0]!];
      const sampler = setInterval(() => loads.push(loadavg()[0]!), LOAD_SAMPLE_INTERVAL_MS);
      const outcome = await runChild(target, (loaded, step) => {
        bar?.update(done + loaded, { run: `${target.id} · ${step}` });
        if (bar === undefined && step !== lastStep) process.stdout.write(`  ${target.id}: ${step}\n`);
        lastStep = step;
      });
      clearInterval(sampler);
      done += samples;
      bar?.update(done, { run: target.id });
      if ('error' in outcome) failed.push(outcome);
      else rows.push({ ...outcome, loadAverage: { min: Math.min(...loads), max: Math.max(...loads) } });
    }
  } finally {
    bar?.stop();
  }
  await writeStorageResults(rows, failed, options, storageMachine(), code);
  return rows;
}

// The forked child: one target in, one row (or the error that stopped it) out.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === SELF && process.argv[2] === CHILD_FLAG) {
  process.once('message', (target: StorageTarget) => {
    const send = (message: ChildMessage): Promise<void> => new Promise((done) => process.send!(message, () => done()));
    measure(target, (message) => void send(message))
      .then(
        (row) => send({ type: 'result', row }),
        (error: unknown) => {
          process.stderr.write(`${target.id}: ${(error as Error).stack ?? String(error)}\n`);
          return send({ type: 'error', message: (error as Error).message ?? String(error) });
        },
      )
      // Stores may leave timers (disk usage, checkpoints) behind: the child's work is done.
      .finally(() => process.exit(0));
  });
}
