/**
 * Craft #3, phase 1 — an LSM tree: every raw sample is one key in an ordered key-value engine
 * (the `storage.kv` slot: LevelDB through `level`, or the project's own LSM in TypeScript).
 * The engine's memtable, write-ahead log, SSTables and compaction do the work; a query scans
 * the keys of each matching series in its time range.
 *
 * Layout (keys are bytes, `u32`/`t64` big-endian so byte order is numeric order):
 *   S<series key>      → id u32                series dictionary (canonical text → id)
 *   I<id u32>          → labels JSON           id → labels
 *   X<id u32>          → newest timestamp t64  so in-order writes need no lookup
 *   D<id u32><t t64>   → value float64         the samples, time-ordered within a series
 *   Mpositions         → JSON                  queue positions applied
 *   Mstats             → JSON                  counters
 *
 * A commit is one KV batch written with sync: samples, positions and counters are durable
 * together before the actor commits its queue offsets. Retention (age, per-series rules) is
 * exact here: a pass deletes each series' keys older than its cut-off, sample by sample. What this phase costs: ~21 bytes of
 * key and value per sample before the engine's own overhead, and a key comparison per
 * sample on every write and read — the numbers phase 2's chunks improve on.
 */
import { bufferedAppender } from '../../core/storage/buffered-appender.js';
import { definePlugin } from '../../core/plugins/define.js';
import { Float64Builder, cardinalityOf, compileMatchers, labelNamesOf, labelValuesOf, pinnedMetricName, seriesKey, METRIC_NAME_LABEL, type Labels, type LabelMatcher, type SeriesSamples, type WireSample } from '../../core/model.js';
import type { AppendResult, Appender, CardinalityStats, Querier, QueuePositions, SampleStore, StorageContext, StoreStats } from '../../core/slots/storage.js';
import type { KvEngine, KvOp } from '../../core/slots/kv.js';
import { dataKey, float64Bytes, idKey, readFloat64, readTime, timeBytes, KEY_TAG } from './shared/keys.js';
import { DiskUsage } from './shared/disk-usage.js';
import { retentionOptions, retentionPolicy, scheduleRetention } from './shared/retention.js';
import { z } from 'zod';
import { rollupSeries } from '../../core/storage/rollup.js';

const SCAN_CHUNK_SAMPLES = 1_000;
const READ_CHUNK_ENTRIES = 4_096;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const metaKey = (name: string): Uint8Array => encoder.encode(`M${name}`);
const seriesDictKey = (key: string): Uint8Array => encoder.encode(`S${key}`);

const lsmOptions = z.object({ ...retentionOptions }).strict();
type LsmOptions = z.infer<typeof lsmOptions>;

interface SeriesEntry {
  id: number;
  labels: Labels;
  key: string;
  newestMs: number;
}

class LsmStore implements SampleStore {
  private kv!: KvEngine;
  private readonly series = new Map<string, SeriesEntry>();
  private readonly byId = new Map<number, SeriesEntry>();
  private readonly byName = new Map<string, SeriesEntry[]>();
  private applied: QueuePositions = {};
  private samples = 0;
  private nextId = 1;
  private disk!: DiskUsage;
  private readonly retentionOf: (labels: Labels) => number;
  private retention: { stop(): void } | undefined;
  private closed = false;
  /** Commits, deletes and retention passes run one at a time. */
  private serial: Promise<unknown> = Promise.resolve();

  constructor(private readonly context: StorageContext, private readonly options: LsmOptions) {
    this.retentionOf = retentionPolicy(options.retentionMs, options.retentionRules);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.serial.then(work, work);
    this.serial = run.catch(() => undefined);
    return run;
  }

  async open(): Promise<void> {
    this.kv = await this.context.openKv('kv');
    this.disk = new DiskUsage(() => this.kv.bytesOnDisk(), this.context.clock);
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.info), lt: Uint8Array.of(KEY_TAG.info + 1) })) {
      for (const [key, value] of entries) {
        const id = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1);
        const labels = JSON.parse(decoder.decode(value)) as Labels;
        this.remember({ id, labels, key: seriesKey(labels), newestMs: -Infinity });
        this.nextId = Math.max(this.nextId, id + 1);
      }
    }
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.newest), lt: Uint8Array.of(KEY_TAG.newest + 1) })) {
      for (const [key, value] of entries) {
        const entry = this.byId.get(new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1));
        if (entry !== undefined) entry.newestMs = readTime(value, 0);
      }
    }
    const positions = await this.kv.get(metaKey('positions'));
    if (positions !== undefined) this.applied = JSON.parse(decoder.decode(positions)) as QueuePositions;
    const stats = await this.kv.get(metaKey('stats'));
    if (stats !== undefined) this.samples = (JSON.parse(decoder.decode(stats)) as { samples: number }).samples;
    await this.disk.refresh();
    this.retention = scheduleRetention(this.options, this.context.clock, this.context.log, () => this.enforceRetention());
  }

  /** Deletes every sample older than its series' retention, durably; returns how many. */
  enforceRetention(): Promise<number> {
    return this.exclusive(async () => {
      if (this.closed) return 0;
      const nowMs = this.context.clock.now();
      const expired: { entry: SeriesEntry; minTimeMs: number; maxTimeMs: number }[] = [];
      for (const entry of this.byId.values()) {
        const retentionMs = this.retentionOf(entry.labels);
        if (retentionMs > 0) expired.push({ entry, minTimeMs: 0, maxTimeMs: nowMs - retentionMs - 1 });
      }
      const dropped = await this.deleteRanges(expired);
      if (dropped > 0) this.context.log.info('retention dropped expired samples', { samples: dropped });
      return dropped;
    });
  }

  private remember(entry: SeriesEntry): void {
    this.series.set(entry.key, entry);
    this.byId.set(entry.id, entry);
    const name = entry.labels[METRIC_NAME_LABEL] ?? '';
    const list = this.byName.get(name);
    if (list === undefined) this.byName.set(name, [entry]);
    else list.push(entry);
  }

  private forget(entry: SeriesEntry): void {
    this.series.delete(entry.key);
    this.byId.delete(entry.id);
    const name = entry.labels[METRIC_NAME_LABEL] ?? '';
    const list = this.byName.get(name)?.filter((e) => e !== entry) ?? [];
    if (list.length === 0) this.byName.delete(name);
    else this.byName.set(name, list);
  }

  appender(): Appender {
    return bufferedAppender((samples, positions) => this.exclusive(() => this.commit(samples, positions)));
  }


  private async commit(samples: WireSample[], positions: QueuePositions): Promise<AppendResult> {
    const ops: KvOp[] = [];
    const created = new Map<string, SeriesEntry>();
    // The newest time per series as this commit moves it; applied to the entries only once durable.
    const newest = new Map<SeriesEntry, number>();
    const inBatch = new Map<string, { type: 'put'; key: Uint8Array; value: Uint8Array }>();
    // Samples at or before their series' newest time may exist already: look those up.
    const maybeExisting: Uint8Array[] = [];
    const result: AppendResult = { added: 0, replaced: 0, restamped: 0, seriesCreated: 0 };
    for (const [labels, stampMs, value, stamped] of samples) {
      const key = seriesKey(labels);
      let entry = this.series.get(key) ?? created.get(key);
      if (entry === undefined) {
        entry = { id: this.nextId++, labels, key, newestMs: -Infinity };
        created.set(key, entry);
        ops.push({ type: 'put', key: seriesDictKey(key), value: idKey(0, entry.id).subarray(1) });
        ops.push({ type: 'put', key: idKey(KEY_TAG.info, entry.id), value: encoder.encode(JSON.stringify(labels)) });
      }
      const newestMs = newest.get(entry) ?? entry.newestMs;
      let timestampMs = stampMs;
      if (stamped === 1 && timestampMs <= newestMs) {
        timestampMs = newestMs + 1;
        result.restamped += 1;
      }
      const dedupeKey = `${entry.id}:${timestampMs}`;
      const existing = inBatch.get(dedupeKey);
      if (existing !== undefined) {
        existing.value = float64Bytes(value);
        result.replaced += 1;
        continue;
      }
      const op = { type: 'put' as const, key: dataKey(entry.id, timestampMs), value: float64Bytes(value) };
      inBatch.set(dedupeKey, op);
      ops.push(op);
      if (timestampMs > newestMs) {
        result.added += 1;
        newest.set(entry, timestampMs);
      } else maybeExisting.push(op.key);
    }
    if (maybeExisting.length > 0) {
      const found = await this.kv.getMany(maybeExisting);
      for (const value of found) {
        if (value === undefined) result.added += 1;
        else result.replaced += 1;
      }
    }
    for (const [entry, timestampMs] of newest) ops.push({ type: 'put', key: idKey(KEY_TAG.newest, entry.id), value: timeBytes(timestampMs) });
    const nextApplied = { ...this.applied };
    for (const [key, offset] of Object.entries(positions)) nextApplied[key] = Math.max(nextApplied[key] ?? 0, offset);
    ops.push({ type: 'put', key: metaKey('positions'), value: encoder.encode(JSON.stringify(nextApplied)) });
    ops.push({ type: 'put', key: metaKey('stats'), value: encoder.encode(JSON.stringify({ samples: this.samples + result.added })) });
    await this.kv.batch(ops, { sync: true });
    // Only after the write is durable does the in-memory view move on.
    for (const entry of created.values()) this.remember(entry);
    for (const [entry, timestampMs] of newest) entry.newestMs = timestampMs;
    this.samples += result.added;
    this.applied = nextApplied;
    result.seriesCreated = created.size;
    this.disk.touch();
    return result;
  }

  positions(): QueuePositions {
    return { ...this.applied };
  }

  private candidates(matchers: LabelMatcher[]): SeriesEntry[] {
    const name = pinnedMetricName(matchers);
    const pool = name === undefined ? [...this.byId.values()] : this.byName.get(name) ?? [];
    const matches = compileMatchers(matchers);
    return pool.filter((entry) => matches(entry.labels)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async readSeries(entry: SeriesEntry, minTimeMs: number, maxTimeMs: number, limit?: number): Promise<SeriesSamples> {
    const timestampsMs: number[] = [];
    const values = new Float64Builder();
    const range = limit === undefined ? { gte: dataKey(entry.id, minTimeMs), lte: dataKey(entry.id, maxTimeMs) } : { gte: dataKey(entry.id, minTimeMs), lte: dataKey(entry.id, maxTimeMs), limit };
    for await (const entries of this.kv.iterate(range, READ_CHUNK_ENTRIES)) {
      for (const [key, value] of entries) {
        timestampsMs.push(readTime(key, 5));
        values.push(readFloat64(value));
      }
    }
    return { labels: entry.labels, timestampsMs, values: values.finish() };
  }

  querier(minTimeMs: number, maxTimeMs: number): Querier {
    const inRange = async (matchers: LabelMatcher[]): Promise<SeriesEntry[]> => {
      const out: SeriesEntry[] = [];
      for (const entry of this.candidates(matchers)) {
        if ((await this.readSeries(entry, minTimeMs, maxTimeMs, 1)).timestampsMs.length > 0) out.push(entry);
      }
      return out;
    };
    const select = async (matchers: LabelMatcher[]): Promise<SeriesSamples[]> => {
      const out: SeriesSamples[] = [];
      for (const entry of this.candidates(matchers)) {
        const series = await this.readSeries(entry, minTimeMs, maxTimeMs);
        if (series.timestampsMs.length > 0) out.push(series);
      }
      return out;
    };
    return {
      select,
      series: async (matchers) => (await inRange(matchers)).map((e) => e.labels),
      labelNames: async (matchers = []) => labelNamesOf((await inRange(matchers)).map((e) => e.labels)),
      labelValues: async (name, matchers = []) => labelValuesOf((await inRange(matchers)).map((e) => e.labels), name),
      rollup: async (matchers, stepMs) => rollupSeries(await select(matchers), minTimeMs, maxTimeMs, stepMs),
    };
  }

  deleteSeries(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): Promise<number> {
    return this.exclusive(() => this.deleteRanges(this.candidates(matchers).map((entry) => ({ entry, minTimeMs, maxTimeMs }))));
  }

  /** The newest time of the series outside `[minTimeMs, maxTimeMs]`, or `undefined` when it has none there. */
  private async newestOutside(entry: SeriesEntry, minTimeMs: number, maxTimeMs: number): Promise<number | undefined> {
    const last = async (gte: number, lte: number): Promise<number | undefined> => {
      if (lte < gte) return undefined;
      for await (const entries of this.kv.iterate({ gte: dataKey(entry.id, gte), lte: dataKey(entry.id, lte), reverse: true, limit: 1 })) {
        if (entries.length > 0) return readTime(entries[0]![0], 5);
      }
      return undefined;
    };
    return (await last(maxTimeMs + 1, Number.MAX_SAFE_INTEGER)) ?? (await last(0, minTimeMs - 1));
  }

  /** Deletes each series' samples in its range in one synced batch; returns how many. */
  private async deleteRanges(ranges: { entry: SeriesEntry; minTimeMs: number; maxTimeMs: number }[]): Promise<number> {
    const ops: KvOp[] = [];
    const emptied: SeriesEntry[] = [];
    // The newest remaining time of each series that keeps samples: server stamps follow it.
    const newest = new Map<SeriesEntry, number>();
    let deleted = 0;
    for (const { entry, minTimeMs, maxTimeMs } of ranges) {
      if (maxTimeMs < minTimeMs) continue;
      // Only the keys in the range are read; the series keeps a sample if one lies outside it.
      let inRange = 0;
      for await (const entries of this.kv.iterate({ gte: dataKey(entry.id, Math.max(0, minTimeMs)), lte: dataKey(entry.id, Math.min(Number.MAX_SAFE_INTEGER, maxTimeMs)) }, READ_CHUNK_ENTRIES)) {
        for (const [key] of entries) ops.push({ type: 'del', key: key.slice() });
        inRange += entries.length;
      }
      if (inRange === 0) continue;
      deleted += inRange;
      const newestKept = await this.newestOutside(entry, minTimeMs, maxTimeMs);
      if (newestKept !== undefined && newestKept !== entry.newestMs) {
        newest.set(entry, newestKept);
        ops.push({ type: 'put', key: idKey(KEY_TAG.newest, entry.id), value: timeBytes(newestKept) });
      }
      if (newestKept === undefined) {
        emptied.push(entry);
        ops.push({ type: 'del', key: seriesDictKey(entry.key) }, { type: 'del', key: idKey(KEY_TAG.info, entry.id) }, { type: 'del', key: idKey(KEY_TAG.newest, entry.id) });
      }
    }
    if (ops.length === 0) return 0;
    ops.push({ type: 'put', key: metaKey('stats'), value: encoder.encode(JSON.stringify({ samples: this.samples - deleted })) });
    await this.kv.batch(ops, { sync: true });
    for (const entry of emptied) this.forget(entry);
    for (const [entry, timestampMs] of newest) entry.newestMs = timestampMs;
    this.samples -= deleted;
    this.disk.touch();
    return deleted;
  }

  async *scan(): AsyncIterable<WireSample[]> {
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.data), lt: Uint8Array.of(KEY_TAG.data + 1) }, SCAN_CHUNK_SAMPLES)) {
      yield entries.map(([key, value]): WireSample => [this.byId.get(new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1))!.labels, readTime(key, 5), readFloat64(value)]);
    }
  }

  stats(): StoreStats {
    const bytes = this.disk.bytes;
    return { series: this.series.size, samples: this.samples, chunks: 0, bytes, bytesPerSample: this.samples === 0 ? 0 : bytes / this.samples };
  }

  cardinality(limit: number): CardinalityStats {
    return cardinalityOf(this.byId.values(), limit);
  }

  async flush(): Promise<void> {
    await this.kv.compactAll();
    await this.disk.refresh();
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    this.closed = true;
    this.retention?.stop();
    await this.serial;
    this.disk?.stop();
    await this.kv?.close(options);
  }
}

export default definePlugin({
  id: 'storage.lsm',
  craft: 3,
  phase: 1,
  slot: 'storage.engine',
  version: '2.0.0',
  summary: 'Raw samples as keys in an LSM tree (the storage.kv engine: LevelDB or the own LSM), synced per batch',
  durable: true,
  options: lsmOptions,
  create: (context, options) => new LsmStore(context, options),
});
