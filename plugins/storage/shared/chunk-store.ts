/**
 * The chunk store under storage phases 2 and up (phase 2 introduced it: see
 * plugins/storage/p2-gorilla.plugin.ts). Gorilla chunks. Samples of a series go into an in-memory head chunk,
 * delta-of-delta timestamps and XOR values (plugins/storage/shared/gorilla.ts); a head is cut
 * into a closed chunk at `chunkSamplesMax` samples (120) or `chunkRangeMs` (2 h), and closed
 * chunks are written to the KV engine at the next checkpoint. A scrape-like series costs
 * about 1–2 bytes a sample instead of phase 1's ~21 plus the engine's overhead.
 *
 * Durability of the head: a write-ahead record per commit, kept *in the KV engine itself*
 * (`W<seq>`), in the same atomic synced batch as the queue positions. Replaying from the
 * queue's committed offset was the other way; it was not chosen because the queue is trimmed
 * once every group commits, and holding commits back until a head is cut (up to 2 h) would
 * keep that much data in the queue and replay it all through JSON decoding on every restart.
 * Keeping the record in the KV engine (rather than a WAL file of our own) makes samples and
 * positions one atomic write on any engine, and gives one recovery path: the engine's own.
 *
 * A checkpoint (every `checkpointWalBytes` of records, every `checkpointIntervalMs`, on flush
 * and on close) writes, in one synced batch: closed chunks, the out-of-order buffers as
 * chunks, the heads that changed (`H<ref>`), counters and the checkpoint's record sequence,
 * and deletes the records it covers. Open = load series, chunk metadata and heads, then
 * replay the records after the checkpoint through the same code that applied them.
 *
 * Layout:
 *   I<ref u32>                     → labels JSON
 *   C<ref u32><minT t64><seq u32>  → <maxT t64><gorilla chunk>
 *   H<ref u32>                     → <seq u32><gorilla chunk>       head at the last checkpoint
 *   W<seq u64>                     → write-ahead record (p2-gorilla/wal-record.ts)
 *   Mpositions, Mstats, Mcheckpoint → JSON
 */
import { z } from 'zod';
import { Float64Builder, seriesShard, cardinalityOf, labelNamesOf, labelValuesOf, seriesKey, type Labels, type LabelMatcher, type SeriesSamples, type WireSample } from '../../../core/model.js';
import type { AppendResult, Appender, CardinalityStats, Querier, QueuePositions, SampleStore, StorageContext, StoreStats } from '../../../core/slots/storage.js';
import { selectLimitError } from '../../../core/slots/storage.js';
import type { KvEngine, KvOp } from '../../../core/slots/kv.js';
import type { Timer } from '../../../core/clock.js';
import { ChunkAppender, decodeChunk } from './gorilla.js';
import { KEY_TAG, idKey, readTime, writeTime } from './keys.js';
import { DiskUsage } from './disk-usage.js';
import { retentionOptions, retentionPolicy, scheduleRetention } from './retention.js';
import { rollupSamples, rollupWindows, type SeriesRollup, type WindowSummary } from '../../../core/storage/rollup.js';
import { WalRecordWriter, readWalRecord, valueFromBits } from './wal-record.js';
import { HEAD_SEQ, SERIES_GONE, SERIES_LIVE, SERIES_PENDING, closedChunkBytes, resumeHead, decodeRange, decodeStored, mergeRuns, newSeries, outOfOrderRun, persistedOf, rebuildHead, runHas, type ClosedChunk, type PersistedChunk, type Run, type SeriesState } from './chunk-series.js';

/** The options of every chunk-store phase. */
export const chunkStoreOptions = z
  .object({
    /** Samples at which a head chunk is cut (the Gorilla paper and Prometheus: 120). */
    chunkSamplesMax: z.number().int().min(2).max(65_535).default(120),
    /**
     * How closed chunks are stored: `gorilla` as cut from the head, or `packed` — decimal values
     * and jittered timestamps bit-packed per chunk where that is smaller (shared/packed-chunk.ts).
     */
    chunkEncoding: z.enum(['gorilla', 'packed']).default('gorilla'),
    /** Time span at which a head chunk is cut, ms (2 h). */
    chunkRangeMs: z.number().int().positive().default(2 * 3_600_000),
    /** Write-ahead bytes after which a checkpoint runs. */
    checkpointWalBytes: z.number().int().positive().default(32 * 1024 * 1024),
    /** Longest time between checkpoints while samples arrive, ms. */
    checkpointIntervalMs: z.number().int().positive().default(60_000),
    /** Retention by age and by per-series rule (shared/retention.ts): whole chunks expire. */
    ...retentionOptions,
  })
  .strict();
export type ChunkStoreOptions = z.infer<typeof chunkStoreOptions>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SCAN_SAMPLES_PER_CHUNK = 10_000;
const metaKey = (name: string): Uint8Array => encoder.encode(`M${name}`);

export function chunkKey(ref: number, minTimeMs: number, seq: number): Uint8Array {
  const key = new Uint8Array(17);
  const view = new DataView(key.buffer);
  key[0] = KEY_TAG.chunk;
  view.setUint32(1, ref);
  writeTime(view, 5, minTimeMs);
  view.setUint32(13, seq);
  return key;
}

function walKey(seq: number): Uint8Array {
  const key = new Uint8Array(9);
  key[0] = 0x57; // W
  writeTime(new DataView(key.buffer), 1, seq);
  return key;
}

/** `<maxT t64><chunk bytes><extra>`: what a `C` key holds; phases may append `extra` (phase 4: the chunk's summary). */
export function chunkValue(chunk: ClosedChunk, extra?: Uint8Array): Uint8Array {
  const value = new Uint8Array(8 + chunk.bytes.length + (extra?.length ?? 0));
  writeTime(new DataView(value.buffer), 0, chunk.maxTimeMs);
  value.set(chunk.bytes, 8);
  if (extra !== undefined) value.set(extra, 8 + chunk.bytes.length);
  return value;
}

/**
 * The samples of one commit, as parallel arrays (the commit loop runs once per sample: no
 * object per sample). After `commit` resolves server stamps, `timestampsMs` holds the final times.
 */
class Planned {
  count = 0;
  series: SeriesState[] = [];
  timestampsMs: number[] = [];
  values = new Float64Builder();
  /** 1 where ingestion stamped the time. */
  stamped: number[] = [];

  push(series: SeriesState, timestampMs: number, value: number, stamped: number): void {
    this.series.push(series);
    this.timestampsMs.push(timestampMs);
    this.values.push(value);
    this.stamped.push(stamped);
    this.count += 1;
  }
}

/**
 * How a chunk store finds series by labels: the part phases 2 and 3 differ in.
 */
export interface SeriesIndex {
  add(series: SeriesState): void;
  remove(series: SeriesState): void;
  /**
   * The series matching every matcher, sorted by series key. `[minTimeMs, maxTimeMs]` is the
   * range the caller will read: an index MAY leave out series it knows have no sample there
   * (the store still checks every series it gets).
   */
  match(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): SeriesState[];
  /** The series holds samples in `[minTimeMs, maxTimeMs]` (called as samples arrive and at open). */
  noteTime?(series: SeriesState, minTimeMs: number, maxTimeMs: number): void;
  /** Series counts by label, for `craft.storage.cardinality`. */
  cardinality?(limit: number): CardinalityStats;
}

export class ChunkStore implements SampleStore {
  protected kv!: KvEngine;
  private disk!: DiskUsage;
  private readonly series = new Map<string, SeriesState>();
  protected readonly byRef = new Map<number, SeriesState>();
  private applied: QueuePositions = {};
  private samples = 0;
  private nextRef = 1;
  private nextSeq = 1;
  /** Numbers the passes over a commit's samples (`SeriesState.mark`). */
  private marks = 0;
  /** Write-ahead records since the last checkpoint: their sequences and bytes. */
  private walSeq = 0;
  private checkpointedWalSeq = 0;
  private walBytesSinceCheckpoint = 0;
  /** Series whose head changed or that have closed or out-of-order chunks to write. */
  private readonly dirty = new Set<SeriesState>();
  private checkpointTimer: Timer | undefined;
  private retention: { stop(): void } | undefined;
  private readonly retentionOf: (labels: Labels) => number;
  /** Commits, checkpoints and deletes run one at a time. */
  private serial: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** A commit failed after its batch was durable: memory may not match the KV engine, so nothing more is written from it. */
  private broken = false;

  constructor(
    protected readonly context: StorageContext,
    protected readonly options: ChunkStoreOptions,
    private readonly index: SeriesIndex,
  ) {
    this.retentionOf = retentionPolicy(options.retentionMs, options.retentionRules);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.serial.then(work, work);
    this.serial = run.catch(() => undefined);
    return run;
  }

  async open(): Promise<void> {
    this.kv = await this.context.openKv('kv');
    await this.opening();
    this.disk = new DiskUsage(() => this.kv.bytesOnDisk(), this.context.clock);
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.info), lt: Uint8Array.of(KEY_TAG.info + 1) })) {
      for (const [key, value] of entries) {
        const ref = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1);
        const labels = JSON.parse(decoder.decode(value)) as Labels;
        this.remember(newSeries(ref, labels, seriesKey(labels)));
        this.nextRef = Math.max(this.nextRef, ref + 1);
      }
    }
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.chunk), lt: Uint8Array.of(KEY_TAG.chunk + 1) })) {
      for (const [key, value] of entries) {
        const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
        const series = this.byRef.get(view.getUint32(1));
        if (series === undefined) continue;
        const seq = view.getUint32(13);
        const chunk: PersistedChunk = { minTimeMs: readTime(key, 5), maxTimeMs: readTime(value, 0), count: (value[8]! << 8) | value[9]!, seq };
        this.chunkLoaded(chunk, value);
        series.persisted.push(chunk);
        series.newestMs = Math.max(series.newestMs, chunk.maxTimeMs);
        this.index.noteTime?.(series, chunk.minTimeMs, chunk.maxTimeMs);
        this.nextSeq = Math.max(this.nextSeq, seq + 1);
      }
    }
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.head), lt: Uint8Array.of(KEY_TAG.head + 1) })) {
      for (const [key, value] of entries) {
        const series = this.byRef.get(new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1));
        if (series === undefined) continue;
        series.headSeq = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
        series.head = resumeHead(value.subarray(4));
        if (series.head.count > 0) this.index.noteTime?.(series, series.head.firstTimestampMs!, series.head.lastTimestampMs!);
        series.newestMs = Math.max(series.newestMs, series.head.lastTimestampMs ?? -Infinity);
        this.nextSeq = Math.max(this.nextSeq, series.headSeq + 1);
      }
    }
    const read = async <T>(name: string): Promise<T | undefined> => {
      const bytes = await this.kv.get(metaKey(name));
      return bytes === undefined ? undefined : (JSON.parse(decoder.decode(bytes)) as T);
    };
    this.applied = (await read<QueuePositions>('positions')) ?? {};
    this.nextRef = Math.max(this.nextRef, (await read<number>('next-ref')) ?? 0);
    this.samples = (await read<{ samples: number }>('stats'))?.samples ?? 0;
    this.checkpointedWalSeq = this.walSeq = (await read<{ walSeq: number }>('checkpoint'))?.walSeq ?? 0;
    for (const series of this.byRef.values()) if (series.persisted.length > 0) this.chunksPersisted(series);
    await this.loaded();
    // Replay the records written after the checkpoint, through the same code that applied them.
    for await (const entries of this.kv.iterate({ gt: walKey(this.checkpointedWalSeq), lt: Uint8Array.of(0x58) })) {
      for (const [key, value] of entries) {
        const record = readWalRecord(value);
        const planned = new Planned();
        for (let i = 0; i < record.count; i++) {
          const series = this.byRef.get(record.refs[i]!);
          if (series === undefined) throw new Error(`WAL record names series ${record.refs[i]} that is not in the store`);
          planned.push(series, record.timestampsMs[i]!, valueFromBits(record.valueBits[2 * i]!, record.valueBits[2 * i + 1]!), 0);
        }
        await this.applyPlanned(planned);
        this.walSeq = readTime(key, 1);
        this.walBytesSinceCheckpoint += value.length;
      }
    }
    await this.disk.refresh();
    this.retention = scheduleRetention(this.options, this.context.clock, this.context.log, () => this.enforceRetention());
  }

  /**
   * Drops the chunks whose newest sample is older than their series' retention, durably;
   * series left empty disappear. Returns the samples dropped.
   */
  enforceRetention(): Promise<number> {
    return this.exclusive(async () => {
      if (this.closed) return 0;
      // Everything into the KV engine first: no record may replay a dropped sample.
      await this.checkpoint();
      const nowMs = this.context.clock.now();
      const ops: KvOp[] = [];
      const changes: { series: SeriesState; keep: PersistedChunk[]; dropHead: boolean }[] = [];
      let dropped = 0;
      for (const series of this.byRef.values()) {
        const retentionMs = this.retentionOf(series.labels);
        if (retentionMs === 0) continue;
        const cutoffMs = nowMs - retentionMs;
        const keep = series.persisted.filter((c) => c.maxTimeMs >= cutoffMs);
        const head = series.head;
        const dropHead = head !== undefined && head.count > 0 && head.lastTimestampMs! < cutoffMs;
        if (keep.length === series.persisted.length && !dropHead) continue;
        const before = await this.distinctSamples(series);
        const gone = series.persisted.filter((c) => c.maxTimeMs < cutoffMs);
        for (const chunk of gone) {
          ops.push({ type: 'del', key: chunkKey(series.ref, chunk.minTimeMs, chunk.seq) });
          this.chunkDropped(series, chunk, ops);
        }
        if (dropHead) ops.push({ type: 'del', key: idKey(KEY_TAG.head, series.ref) });
        const empty = keep.length === 0 && (dropHead || head === undefined || head.count === 0);
        if (empty) {
          ops.push({ type: 'del', key: idKey(KEY_TAG.info, series.ref) });
          await this.retiring(series, ops);
        }
        const after = empty ? 0 : await this.distinctSamples(series, keep, dropHead);
        dropped += before - after;
        changes.push({ series, keep, dropHead });
      }
      await this.retaining(nowMs, ops);
      if (changes.length === 0 && ops.length === 0) return 0;
      ops.push({ type: 'put', key: metaKey('stats'), value: encoder.encode(JSON.stringify({ samples: this.samples - dropped })) });
      await this.kv.batch(ops, { sync: true });
      for (const { series, keep, dropHead } of changes) {
        series.persisted = keep;
        if (dropHead) series.head = undefined;
        if (series.persisted.length === 0 && (series.head === undefined || series.head.count === 0)) this.forget(series);
        else series.newestMs = Math.max(series.head?.lastTimestampMs ?? -Infinity, ...keep.map((c) => c.maxTimeMs));
      }
      this.samples -= dropped;
      this.disk.touch();
      if (dropped > 0) this.context.log.info('retention dropped expired samples', { samples: dropped, series: changes.length });
      return dropped;
    });
  }

  /**
   * Distinct samples of a series across its persisted chunks (only `chunks`, when given) and
   * its head. Disjoint pieces are counted from metadata; overlapping ones are read and merged.
   */
  private async distinctSamples(series: SeriesState, chunks = series.persisted, withoutHead = false): Promise<number> {
    const head = withoutHead ? undefined : series.head;
    const pieces = [...chunks.map((c) => [c.minTimeMs, c.maxTimeMs, c.count] as const)];
    if (head !== undefined && head.count > 0) pieces.push([head.firstTimestampMs!, head.lastTimestampMs!, head.count]);
    pieces.sort((a, b) => a[0] - b[0]);
    let disjoint = true;
    for (let i = 1; i < pieces.length; i++) if (pieces[i]![0] <= pieces[i - 1]![1]) disjoint = false;
    if (disjoint) return pieces.reduce((n, p) => n + p[2], 0);
    const runs = await this.persistedRuns(series, chunks, 0, Number.MAX_SAFE_INTEGER);
    if (head !== undefined && head.count > 0) runs.push(decodeRange(head.bytes(), 0, Number.MAX_SAFE_INTEGER, HEAD_SEQ));
    return mergeRuns(runs).timestampsMs.length;
  }

  private remember(series: SeriesState): void {
    series.status = SERIES_LIVE;
    this.series.set(series.key, series);
    this.byRef.set(series.ref, series);
    this.index.add(series);
  }

  private forget(series: SeriesState): void {
    series.status = SERIES_GONE;
    this.series.delete(series.key);
    this.byRef.delete(series.ref);
    this.index.remove(series);
    this.dirty.delete(series);
  }

  /**
   * An appender that finds each sample's series when the sample is appended — by the reference
   * the caller passes back, else by labels — and returns its reference. A series not in the
   * store yet is made here, *pending*: it enters the store only if the commit succeeds.
   */
  appender(): Appender {
    let planned = new Planned();
    let pending = new Map<string, SeriesState>();
    return {
      append: (labels, timestampMs, value, serverStamped, ref) => {
        // A reference the store does not know (yet, or any more) falls back to the labels; those of this transaction are in `pending`.
        let series = ref === undefined || ref === 0 ? undefined : this.byRef.get(ref);
        if (series === undefined) {
          const key = seriesKey(labels);
          series = this.series.get(key) ?? pending.get(key);
          if (series === undefined) {
            series = newSeries(this.nextRef++, labels, key);
            pending.set(key, series);
          }
        }
        planned.push(series, timestampMs, value, serverStamped === true ? 1 : 0);
        return series.ref;
      },
      commit: (positions) => {
        const samples = planned;
        planned = new Planned();
        pending = new Map();
        return this.exclusive(() => this.commit(samples, positions));
      },
      rollback: () => {
        planned = new Planned();
        pending = new Map();
      },
    };
  }

  /**
   * The live series a sample found at append time belongs to now: a pending series may have
   * been created meanwhile by another appender's commit, a live one deleted since.
   */
  private settle(series: SeriesState, created: Map<string, SeriesState>, ops: KvOp[]): SeriesState {
    const existing = this.series.get(series.key) ?? created.get(series.key);
    if (existing !== undefined) return existing;
    const fresh = series.status === SERIES_PENDING ? series : newSeries(this.nextRef++, series.labels, series.key);
    created.set(fresh.key, fresh);
    ops.push({ type: 'put', key: idKey(KEY_TAG.info, fresh.ref), value: encoder.encode(JSON.stringify(fresh.labels)) });
    return fresh;
  }

  private async commit(planned: Planned, positions: QueuePositions): Promise<AppendResult> {
    if (this.broken) throw new Error('store is broken by an earlier failed commit; reopen it (its records replay)');
    const result: AppendResult = { added: 0, replaced: 0, restamped: 0, seriesCreated: 0 };
    const ops: KvOp[] = [];
    const created = new Map<string, SeriesState>();
    // Server stamps resolve against each series' newest time as this commit moves it (`markNewestMs`).
    const mark = ++this.marks;
    const { count, series: seriesOf, timestampsMs, stamped } = planned;
    const values = planned.values.finish();
    const record = new WalRecordWriter(count);
    for (let i = 0; i < count; i++) {
      let series = seriesOf[i]!;
      if (series.status !== SERIES_LIVE) seriesOf[i] = series = this.settle(series, created, ops);
      if (series.mark !== mark) {
        series.mark = mark;
        series.markNewestMs = series.newestMs;
      }
      let timestampMs = timestampsMs[i]!;
      if (stamped[i] === 1 && timestampMs <= series.markNewestMs) {
        timestampsMs[i] = timestampMs = series.markNewestMs + 1;
        result.restamped += 1;
      }
      if (timestampMs > series.markNewestMs) series.markNewestMs = timestampMs;
      record.add(series.ref, timestampMs, values[i]!);
    }
    const nextApplied = { ...this.applied };
    for (const [key, offset] of Object.entries(positions)) nextApplied[key] = Math.max(nextApplied[key] ?? 0, offset);
    const walSeq = this.walSeq + 1;
    const walBytes = record.finish();
    if (record.samples > 0) ops.push({ type: 'put', key: walKey(walSeq), value: walBytes });
    ops.push({ type: 'put', key: metaKey('positions'), value: encoder.encode(JSON.stringify(nextApplied)) });
    // References are never given twice, not even after their series is deleted and the store reopened.
    if (created.size > 0) ops.push({ type: 'put', key: metaKey('next-ref'), value: encoder.encode(JSON.stringify(this.nextRef)) });
    await this.kv.batch(ops, { sync: true });
    // Durable: now the in-memory view moves on.
    if (record.samples > 0) {
      this.walSeq = walSeq;
      this.walBytesSinceCheckpoint += walBytes.length;
    }
    this.applied = nextApplied;
    for (const series of created.values()) this.remember(series);
    result.seriesCreated = created.size;
    let counts: { added: number; replaced: number };
    try {
      counts = await this.applyPlanned(planned, values);
    } catch (error) {
      this.broken = true;
      throw error;
    }
    result.added = counts.added;
    result.replaced = counts.replaced;
    this.disk.touch();
    if (this.walBytesSinceCheckpoint >= this.options.checkpointWalBytes) await this.checkpoint();
    else this.scheduleCheckpoint();
    return result;
  }

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer !== undefined || this.closed || this.walSeq === this.checkpointedWalSeq) return;
    this.checkpointTimer = this.context.clock.setTimeout(() => {
      this.checkpointTimer = undefined;
      if (!this.closed) {
        void this.exclusive(() => this.checkpoint()).catch((error: unknown) => this.context.log.error('checkpoint failed; the records stay and are replayed on open', { error }));
      }
    }, this.options.checkpointIntervalMs);
  }

  /**
   * Applies samples to the in-memory series. Chunks in the KV engine that may hold one of
   * the timestamps are read first (only out-of-order samples need that), so that counting
   * added versus replaced is exact; after that the application is synchronous, so a querier
   * never sees half a commit.
   */
  private async applyPlanned(planned: Planned, values = planned.values.finish()): Promise<{ added: number; replaced: number }> {
    const { count, series: seriesOf, timestampsMs } = planned;
    const wanted = new Map<string, { series: SeriesState; chunk: PersistedChunk }>();
    // Each series once: its time range in this commit (`markMinMs`, `markMaxMs`) for the index.
    const mark = ++this.marks;
    const touched: SeriesState[] = [];
    for (let i = 0; i < count; i++) {
      const series = seriesOf[i]!;
      const timestampMs = timestampsMs[i]!;
      if (series.mark !== mark) {
        series.mark = mark;
        series.markMinMs = series.markMaxMs = timestampMs;
        touched.push(series);
      } else if (timestampMs < series.markMinMs) series.markMinMs = timestampMs;
      else if (timestampMs > series.markMaxMs) series.markMaxMs = timestampMs;
      if (timestampMs > series.newestMs) continue;
      for (const chunk of series.persisted) {
        if (timestampMs >= chunk.minTimeMs && timestampMs <= chunk.maxTimeMs) wanted.set(`${series.ref}:${chunk.seq}`, { series, chunk });
      }
    }
    const decoded = new Map<PersistedChunk, Float64Array>();
    if (wanted.size > 0) {
      const entries = [...wanted.values()];
      const stored = await this.kv.getMany(entries.map(({ series, chunk }) => chunkKey(series.ref, chunk.minTimeMs, chunk.seq)));
      for (let i = 0; i < entries.length; i++) {
        const value = stored[i];
        if (value !== undefined) decoded.set(entries[i]!.chunk, decodeStored(this.chunkBytes(value)).timestampsMs);
      }
    }
    for (const series of touched) {
      this.dirty.add(series);
      this.index.noteTime?.(series, series.markMinMs, series.markMaxMs);
    }
    let added = 0;
    let replaced = 0;
    for (let i = 0; i < count; i++) {
      if (this.place(seriesOf[i]!, timestampsMs[i]!, values[i]!, decoded)) replaced += 1;
      else added += 1;
    }
    this.samples += added;
    return { added, replaced };
  }

  /** Puts one sample in its series; returns whether it replaced a stored one. */
  private place(series: SeriesState, timestampMs: number, value: number, decoded: Map<PersistedChunk, Float64Array>): boolean {
    const existedBefore = timestampMs <= series.newestMs && this.holds(series, timestampMs, decoded);
    if (timestampMs > series.newestMs) series.newestMs = timestampMs;
    const head = series.head;
    if (head === undefined || head.count === 0) {
      this.startHead(series, timestampMs, value);
      return existedBefore;
    }
    const firstMs = head.firstTimestampMs!;
    const lastMs = head.lastTimestampMs!;
    if (timestampMs > lastMs) {
      if (head.count >= this.options.chunkSamplesMax || timestampMs - firstMs >= this.options.chunkRangeMs) {
        series.closed.push({ minTimeMs: firstMs, maxTimeMs: lastMs, count: head.count, seq: series.headSeq, bytes: closedChunkBytes(head.bytes(), this.options.chunkEncoding) });
        this.startHead(series, timestampMs, value);
      } else head.append(timestampMs, value);
      series.headDirty = true;
      return existedBefore;
    }
    if (timestampMs >= firstMs) {
      series.head = rebuildHead(head, timestampMs, value).head;
      series.headDirty = true;
      return existedBefore;
    }
    series.outOfOrder ??= new Map();
    series.outOfOrder.set(timestampMs, value);
    return existedBefore;
  }

  private startHead(series: SeriesState, timestampMs: number, value: number): void {
    series.head = new ChunkAppender();
    series.head.append(timestampMs, value);
    series.headSeq = this.nextSeq++;
    series.headDirty = true;
  }

  /** Whether the series holds a sample at `timestampMs` in any of its pieces. */
  private holds(series: SeriesState, timestampMs: number, decoded: Map<PersistedChunk, Float64Array>): boolean {
    if (series.outOfOrder?.has(timestampMs) === true) return true;
    const head = series.head;
    if (head !== undefined && head.count > 0 && timestampMs >= head.firstTimestampMs! && timestampMs <= head.lastTimestampMs!) {
      if (runHas(decodeChunk(head.bytes()).timestampsMs, timestampMs)) return true;
    }
    for (const chunk of series.closed) {
      if (timestampMs >= chunk.minTimeMs && timestampMs <= chunk.maxTimeMs && runHas(decodeStored(chunk.bytes).timestampsMs, timestampMs)) return true;
    }
    for (const chunk of series.persisted) {
      const times = decoded.get(chunk);
      if (times !== undefined && runHas(times, timestampMs)) return true;
    }
    return false;
  }

  /** Writes closed chunks, out-of-order buffers and changed heads; drops the records they cover. */
  private async checkpoint(): Promise<void> {
    this.checkpointTimer?.cancel();
    this.checkpointTimer = undefined;
    if (this.walSeq === this.checkpointedWalSeq && this.dirty.size === 0) return;
    const ops: KvOp[] = [];
    const moved: { series: SeriesState; chunks: ClosedChunk[] }[] = [];
    for (const series of this.dirty) {
      const chunks = [...series.closed];
      if (series.outOfOrder !== undefined && series.outOfOrder.size > 0) chunks.push(...this.chunksOf(series.outOfOrder));
      for (const chunk of chunks) {
        ops.push({ type: 'put', key: chunkKey(series.ref, chunk.minTimeMs, chunk.seq), value: this.storedChunk(chunk) });
      }
      if (series.headDirty && series.head !== undefined) {
        const bytes = closedChunkBytes(series.head.bytes(), this.options.chunkEncoding);
        const value = new Uint8Array(4 + bytes.length);
        new DataView(value.buffer).setUint32(0, series.headSeq);
        value.set(bytes, 4);
        ops.push({ type: 'put', key: idKey(KEY_TAG.head, series.ref), value });
      }
      moved.push({ series, chunks });
    }
    for (let seq = this.checkpointedWalSeq + 1; seq <= this.walSeq; seq++) ops.push({ type: 'del', key: walKey(seq) });
    ops.push({ type: 'put', key: metaKey('stats'), value: encoder.encode(JSON.stringify({ samples: this.samples })) });
    ops.push({ type: 'put', key: metaKey('checkpoint'), value: encoder.encode(JSON.stringify({ walSeq: this.walSeq })) });
    const walSeq = this.walSeq;
    await this.checkpointing(moved, ops);
    await this.kv.batch(ops, { sync: true });
    for (const { series, chunks } of moved) {
      for (const chunk of chunks) series.persisted.push(persistedOf(chunk));
      this.chunksPersisted(series);
      series.closed = [];
      series.outOfOrder = undefined;
      series.headDirty = false;
    }
    this.dirty.clear();
    this.checkpointedWalSeq = walSeq;
    this.walBytesSinceCheckpoint = 0;
    this.disk.touch();
  }

  /** Sorted samples as chunks of at most `chunkSamplesMax` samples spanning less than `chunkRangeMs`, each with a fresh sequence. */
  private chunksOf(samples: Map<number, number> | { timestampsMs: number[]; values: Float64Array }): ClosedChunk[] {
    const times = samples instanceof Map ? [...samples.keys()].sort((a, b) => a - b) : samples.timestampsMs;
    const valueAt = samples instanceof Map ? (i: number) => samples.get(times[i]!)! : (i: number) => samples.values[i]!;
    const chunks: ClosedChunk[] = [];
    for (let start = 0; start < times.length; ) {
      const appender = new ChunkAppender();
      let end = start;
      while (end < times.length && end - start < this.options.chunkSamplesMax && times[end]! - times[start]! < this.options.chunkRangeMs) {
        appender.append(times[end]!, valueAt(end));
        end += 1;
      }
      const bytes = closedChunkBytes(appender.bytes(), this.options.chunkEncoding);
      chunks.push({ minTimeMs: times[start]!, maxTimeMs: times[end - 1]!, count: end - start, seq: this.nextSeq++, bytes });
      start = end;
    }
    return chunks;
  }

  positions(): QueuePositions {
    return { ...this.applied };
  }

  private candidates(matchers: LabelMatcher[], minTimeMs = 0, maxTimeMs = Number.MAX_SAFE_INTEGER): SeriesState[] {
    return this.index.match(matchers, minTimeMs, maxTimeMs);
  }

  cardinality(limit: number): CardinalityStats {
    if (this.index.cardinality !== undefined) return this.index.cardinality(limit);
    // Without an index that keeps counts, count by walking every series.
    return cardinalityOf(this.byRef.values(), limit);
  }

  /** The samples of one series in `[minTimeMs, maxTimeMs]`, merged across its pieces. */
  protected async read(series: SeriesState, minTimeMs: number, maxTimeMs: number, readSamples = 0): Promise<{ timestampsMs: number[]; values: Float64Array }> {
    const overlapping = this.overlapping(series, minTimeMs, maxTimeMs);
    // In-memory pieces are read before the await: a checkpoint may move them meanwhile.
    const runs = this.memoryRuns(series, minTimeMs, maxTimeMs);
    if (overlapping.length > 0) runs.push(...(await this.persistedRuns(series, overlapping, minTimeMs, maxTimeMs, readSamples)));
    return mergeRuns(runs);
  }

  /** Samples of the in-memory pieces `memoryRuns` would decode (whole chunks; out-of-order samples in range). */
  private memorySampleCount(series: SeriesState, minTimeMs: number, maxTimeMs: number): number {
    let count = 0;
    for (const chunk of series.closed) if (chunk.maxTimeMs >= minTimeMs && chunk.minTimeMs <= maxTimeMs) count += chunk.count;
    if (series.outOfOrder !== undefined) for (const t of series.outOfOrder.keys()) if (t >= minTimeMs && t <= maxTimeMs) count += 1;
    const head = series.head;
    if (head !== undefined && head.count > 0 && head.lastTimestampMs! >= minTimeMs && head.firstTimestampMs! <= maxTimeMs) count += head.count;
    return count;
  }

  /** The in-memory pieces of a series in range: closed chunks not yet written, out-of-order samples, the head. */
  protected memoryRuns(series: SeriesState, minTimeMs: number, maxTimeMs: number): Run[] {
    const runs: Run[] = [];
    for (const chunk of series.closed) {
      if (chunk.maxTimeMs >= minTimeMs && chunk.minTimeMs <= maxTimeMs) runs.push(decodeRange(chunk.bytes, minTimeMs, maxTimeMs, chunk.seq));
    }
    if (series.outOfOrder !== undefined) runs.push(outOfOrderRun(series.outOfOrder, minTimeMs, maxTimeMs));
    const head = series.head;
    if (head !== undefined && head.count > 0 && head.lastTimestampMs! >= minTimeMs && head.firstTimestampMs! <= maxTimeMs) runs.push(decodeRange(head.bytes(), minTimeMs, maxTimeMs, HEAD_SEQ));
    return runs;
  }

  /**
   * The samples of many series (a select): one after another here; phase 4 decodes a large
   * scan's chunks in worker threads. `readSamples` is how many persisted samples the scan reads.
   */
  protected async readAll(candidates: SeriesState[], minTimeMs: number, maxTimeMs: number, readSamples: number): Promise<{ timestampsMs: number[]; values: Float64Array }[]> {
    const out: { timestampsMs: number[]; values: Float64Array }[] = [];
    for (const series of candidates) out.push(await this.read(series, minTimeMs, maxTimeMs, readSamples));
    return out;
  }

  /**
   * Whether a series has a sample in the range: a piece lying wholly inside it answers yes
   * from metadata; only a range that cuts every piece needs the samples read.
   */
  private async hasSampleIn(series: SeriesState, minTimeMs: number, maxTimeMs: number): Promise<boolean> {
    const inside = (a: number, b: number): boolean => a >= minTimeMs && b <= maxTimeMs;
    const head = series.head;
    if (head !== undefined && head.count > 0 && inside(head.firstTimestampMs!, head.lastTimestampMs!)) return true;
    if (series.closed.some((c) => inside(c.minTimeMs, c.maxTimeMs)) || series.persisted.some((c) => c.count > 0 && inside(c.minTimeMs, c.maxTimeMs))) return true;
    return (await this.read(series, minTimeMs, maxTimeMs)).timestampsMs.length > 0;
  }

  // ---- Extension points of later phases (phase 4 overrides them) ----

  /** The persisted chunks of a series that overlap `[minTimeMs, maxTimeMs]`. */
  protected overlapping(series: SeriesState, minTimeMs: number, maxTimeMs: number): PersistedChunk[] {
    return series.persisted.filter((c) => c.maxTimeMs >= minTimeMs && c.minTimeMs <= maxTimeMs);
  }

  /**
   * Reads and decodes persisted chunks, keeping the samples in `[minTimeMs, maxTimeMs]`.
   * `readSamples` is how many persisted samples the whole request reads (0 when unknown), so
   * a cache can tell a scan from a lookup.
   */
  protected async persistedRuns(series: SeriesState, chunks: PersistedChunk[], minTimeMs: number, maxTimeMs: number, _readSamples = 0): Promise<Run[]> {
    const values = await this.kv.getMany(chunks.map((c) => chunkKey(series.ref, c.minTimeMs, c.seq)));
    const runs: Run[] = [];
    for (let i = 0; i < chunks.length; i++) {
      const value = values[i];
      if (value !== undefined) runs.push(decodeRange(this.chunkBytes(value), minTimeMs, maxTimeMs, chunks[i]!.seq));
    }
    return runs;
  }

  /** Window summaries of one series; without chunk summaries, from its samples. */
  protected async rollupOf(series: SeriesState, minTimeMs: number, maxTimeMs: number, stepMs: number): Promise<WindowSummary[]> {
    const { timestampsMs, values } = await this.read(series, minTimeMs, maxTimeMs);
    return rollupSamples(timestampsMs, values, minTimeMs, maxTimeMs, stepMs);
  }

  /** The `C` value a closed chunk is written as (a checkpoint or a rewrite); phases may add to it. */
  protected storedChunk(chunk: ClosedChunk): Uint8Array {
    return chunkValue(chunk);
  }

  /** The chunk's bytes in a `C` value that `storedChunk` wrote. */
  protected chunkBytes(value: Uint8Array): Uint8Array {
    return value.subarray(8);
  }

  /** A persisted chunk's metadata was read at open from its `C` value. */
  protected chunkLoaded(_chunk: PersistedChunk, _value: Uint8Array): void {}

  /** A persisted chunk is deleted with `ops`. */
  protected chunkDropped(_series: SeriesState, _chunk: PersistedChunk, _ops: KvOp[]): void {}

  /** A checkpoint is about to write `moved` with `ops` (one synced batch): add what belongs with it. */
  protected async checkpointing(_moved: { series: SeriesState; chunks: ClosedChunk[] }[], _ops: KvOp[]): Promise<void> {}

  /** A delete rewrites a series to `kept` (empty: the series goes) with `ops`, for `[minTimeMs, maxTimeMs]`. */
  protected async rewriting(_series: SeriesState, _kept: { timestampsMs: number[]; values: Float64Array }, _minTimeMs: number, _maxTimeMs: number, _ops: KvOp[]): Promise<void> {}

  /** Retention removes a series (all its chunks expired) with `ops`. */
  protected async retiring(_series: SeriesState, _ops: KvOp[]): Promise<void> {}

  /** A retention pass at `nowMs` writes `ops`: add what the phase expires itself. */
  protected async retaining(_nowMs: number, _ops: KvOp[]): Promise<void> {}

  /** `series.persisted` changed (chunks added or replaced) and is durable. */
  protected chunksPersisted(_series: SeriesState): void {}

  /** Right after the KV engine opened, before anything is read from it (a phase's layout migration). */
  protected async opening(): Promise<void> {}

  /** After the series and chunks are loaded, before the write-ahead records are replayed. */
  protected async loaded(): Promise<void> {}

  querier(minTimeMs: number, maxTimeMs: number): Querier {
    const inRange = async (matchers: LabelMatcher[]): Promise<Labels[]> => {
      const out: Labels[] = [];
      for (const series of this.candidates(matchers, minTimeMs, maxTimeMs)) {
        if (await this.hasSampleIn(series, minTimeMs, maxTimeMs)) out.push(series.labels);
      }
      return out;
    };
    return {
      select: async (matchers, hints) => {
        const out: SeriesSamples[] = [];
        const shard = hints?.shard;
        const all = this.candidates(matchers, minTimeMs, maxTimeMs);
        const candidates = shard === undefined ? all : all.filter((s) => seriesShard(s.labels, shard.count) === shard.index);
        let readSamples = 0;
        for (const series of candidates) for (const chunk of this.overlapping(series, minTimeMs, maxTimeMs)) readSamples += chunk.count;
        // Refused before anything is decoded: the samples of every chunk the range touches, in memory or not
        // (series that turn out empty in range still count).
        if (hints?.limits !== undefined) {
          let touched = readSamples;
          for (const series of candidates) touched += this.memorySampleCount(series, minTimeMs, maxTimeMs);
          const refused = selectLimitError(hints.limits, candidates.length, touched, 'samples (whole chunks the range touches)');
          if (refused !== undefined) throw refused;
        }
        const read = await this.readAll(candidates, minTimeMs, maxTimeMs, readSamples);
        candidates.forEach((series, i) => {
          if (read[i]!.timestampsMs.length > 0) out.push({ labels: series.labels, ...read[i]! });
        });
        return out;
      },
      series: inRange,
      labelNames: async (matchers = []) => labelNamesOf(await inRange(matchers)),
      labelValues: async (name, matchers = []) => labelValuesOf(await inRange(matchers), name),
      rollup: async (matchers, stepMs) => {
        rollupWindows(minTimeMs, maxTimeMs, stepMs);
        const out: SeriesRollup[] = [];
        for (const series of this.candidates(matchers, minTimeMs, maxTimeMs)) {
          const windows = await this.rollupOf(series, minTimeMs, maxTimeMs, stepMs);
          if (windows.length > 0) out.push({ labels: series.labels, windows });
        }
        return out;
      },
    };
  }

  deleteSeries(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): Promise<number> {
    return this.exclusive(async () => {
      // Everything into the KV engine first, so no record replays a deleted sample.
      await this.checkpoint();
      let deleted = 0;
      const ops: KvOp[] = [];
      const rewritten: { series: SeriesState; chunks: ClosedChunk[] }[] = [];
      const emptied: SeriesState[] = [];
      for (const series of this.candidates(matchers, minTimeMs, maxTimeMs)) {
        const all = await this.read(series, 0, Number.MAX_SAFE_INTEGER);
        const keptTimes: number[] = [];
        const keptValues = new Float64Builder();
        for (let i = 0; i < all.timestampsMs.length; i++) {
          const t = all.timestampsMs[i]!;
          if (t >= minTimeMs && t <= maxTimeMs) deleted += 1;
          else {
            keptTimes.push(t);
            keptValues.push(all.values[i]!);
          }
        }
        const kept = { timestampsMs: keptTimes, values: keptValues.finish() };
        if (kept.timestampsMs.length === all.timestampsMs.length) continue;
        await this.rewriting(series, kept, minTimeMs, maxTimeMs, ops);
        for (const chunk of series.persisted) {
          ops.push({ type: 'del', key: chunkKey(series.ref, chunk.minTimeMs, chunk.seq) });
          this.chunkDropped(series, chunk, ops);
        }
        ops.push({ type: 'del', key: idKey(KEY_TAG.head, series.ref) });
        if (kept.timestampsMs.length === 0) {
          ops.push({ type: 'del', key: idKey(KEY_TAG.info, series.ref) });
          emptied.push(series);
          continue;
        }
        const chunks = this.chunksOf(kept);
        for (const chunk of chunks) {
          ops.push({ type: 'put', key: chunkKey(series.ref, chunk.minTimeMs, chunk.seq), value: this.storedChunk(chunk) });
        }
        rewritten.push({ series, chunks });
      }
      if (deleted === 0) return 0;
      ops.push({ type: 'put', key: metaKey('stats'), value: encoder.encode(JSON.stringify({ samples: this.samples - deleted })) });
      await this.kv.batch(ops, { sync: true });
      for (const series of emptied) this.forget(series);
      for (const { series, chunks } of rewritten) {
        series.persisted = chunks.map(persistedOf);
        this.chunksPersisted(series);
        series.head = undefined;
        series.headDirty = false;
        series.newestMs = chunks.at(-1)!.maxTimeMs;
      }
      this.samples -= deleted;
      this.disk.touch();
      return deleted;
    });
  }

  async *scan(): AsyncIterable<WireSample[]> {
    let batch: WireSample[] = [];
    for (const series of [...this.byRef.values()]) {
      const { timestampsMs, values } = await this.read(series, 0, Number.MAX_SAFE_INTEGER);
      for (let i = 0; i < timestampsMs.length; i++) batch.push([series.labels, timestampsMs[i]!, values[i]!]);
      if (batch.length >= SCAN_SAMPLES_PER_CHUNK) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  stats(): StoreStats {
    let chunks = 0;
    for (const series of this.byRef.values()) chunks += series.persisted.length + series.closed.length + (series.head === undefined ? 0 : 1);
    const bytes = this.disk.bytes;
    return { series: this.series.size, samples: this.samples, chunks, bytes, bytesPerSample: this.samples === 0 ? 0 : bytes / this.samples };
  }

  flush(): Promise<void> {
    return this.exclusive(async () => {
      await this.checkpoint();
      await this.kv.compactAll();
      await this.disk.refresh();
    });
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    if (this.kv === undefined) return;
    if (options.destroy !== true && !this.closed && !this.broken) await this.exclusive(() => this.checkpoint()).catch((error: unknown) => this.context.log.error('checkpoint on close failed; records are replayed on open', { error }));
    this.closed = true;
    this.checkpointTimer?.cancel();
    this.retention?.stop();
    this.disk.stop();
    await this.serial;
    await this.kv.close(options);
  }
}
