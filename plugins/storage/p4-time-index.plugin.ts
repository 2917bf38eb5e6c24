/**
 * Craft #3, phase 4 — time-range optimisation. Phase 3 found the right series fast; reading
 * them still decoded every sample of every chunk in range. This phase:
 *
 * - keeps each series' chunks sorted by start time and finds those of a range by binary
 *   search (every chunk spans less than `chunkRangeMs`, so a chunk ending in the range
 *   starts at most that long before it) — the block-level time index;
 * - stores a summary beside every chunk (count, exact sum, min, max, first, last:
 *   p4-time-index/summaries.ts), so a rollup window that covers a whole chunk adds the
 *   summary instead of decoding it: `sum/avg/max over 24 h` touches 2 chunk edges a series
 *   instead of 5,760 samples. Where pieces of a series overlap (out-of-order writes) the
 *   summaries could count a replaced value, so such a series is rolled up from samples;
 * - caches decoded chunks in an LRU with a byte limit (p4-time-index/decoded-cache.ts);
 * - optionally downsamples (`downsampling` levels such as 5 m and 1 h): stored per-series
 *   bucket summaries that rollups read instead of chunks and that outlive the raw samples'
 *   retention (p4-time-index/downsampling.ts).
 *
 * Costs: a summary is about 25 bytes per chunk inside the chunk's value (~0.05 B a sample at
 * 480 samples a chunk) and its metadata in memory; a level costs one key of ~40 bytes per
 * series and bucket. Scans inside storage run on the actor's thread (the query engine's
 * phase 3 spreads work over worker threads, reading storage in shards of series).
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { WorkerPool } from '../../core/workers/pool.js';
import { definePlugin } from '../../core/plugins/define.js';
import type { KvOp } from '../../core/slots/kv.js';
import type { StorageContext } from '../../core/slots/storage.js';
import { accumulateSamples, finish, mergeLater, windowIndex, type WindowAccumulator, type WindowSummary } from '../../core/storage/rollup.js';
import { ChunkStore, chunkKey, chunkStoreOptions, chunkValue } from './shared/chunk-store.js';
import { LabelIndex, labelIndexOptions } from './shared/label-index.js';
import { decodeRange, decodeStored, mergeRuns, type ClosedChunk, type PersistedChunk, type Run, type SeriesState } from './shared/chunk-series.js';
import { KEY_TAG, readTime } from './shared/keys.js';
import { DecodedChunkCache, type DecodedChunk } from './p4-time-index/decoded-cache.js';
import { SUMMARY_TAG, decodeSummary, splitTrailer, summarise, summaryTrailer, type StoredSummary } from './p4-time-index/summaries.js';
import { packScanTasks, type ScanResult, type ScanTask } from './p4-time-index/scan-task.js';
import { alignDown, alignUp, bucketKey, bucketOps, bucketRange, bucketStartOf, decodeBucket, downsamplingSchema, encodeBucket, levelRange, type Level } from './p4-time-index/downsampling.js';

const options = chunkStoreOptions.extend(labelIndexOptions.shape).extend({
  /** Phase 4 packs closed chunks (decimal values, jittered timestamps) where that is smaller than Gorilla. */
  chunkEncoding: z.enum(['gorilla', 'packed']).default('packed'),
  /**
   * Samples at which a head is cut: 480, so a 15 s scrape fills one chunk per 2 h block. A packed
   * chunk's header, key and summary cost ~60 bytes whatever its length (0.5 B a sample at 120
   * samples, 0.13 at 480), while Gorilla gains little past 120; the price is a longer head in memory.
   */
  chunkSamplesMax: z.number().int().min(2).max(65_535).default(480),
  /** Bytes of decoded chunks the LRU cache keeps. */
  decodedCacheBytes: z.number().int().min(0).default(64 * 1024 * 1024),
  /** Worker threads that decode a large select's chunks (0: decode on the actor's thread). */
  scanWorkers: z.number().int().min(0).max(64).default(Math.min(availableParallelism(), 4)),
  /** A select reading at least this many stored samples decodes them in the scan workers. */
  scanWorkersSamplesMin: z.number().int().min(1).default(200_000),
  /** Downsampling levels, e.g. `[{resolutionMs: 300000}, {resolutionMs: 3600000, retentionMs: …}]` (p4-time-index/downsampling.ts). */
  downsampling: downsamplingSchema,
});
type Options = z.infer<typeof options>;

const DECODED_BYTES_PER_SAMPLE = 16;
/** Chunk keys one batch of a parallel scan reads (and decodes) at a time: bounds the bytes held at once. */
const SCAN_READ_KEYS_MAX = 16_384;
/** A level serves windows not lined up with its buckets when they are at least this many buckets long. */
const EDGE_FACTOR = 4;
/** More separate edge reads than this in one series' rollup, and it reads chunks instead. */
const EDGE_READS_MAX = 256;
/** Layout of this phase's chunk values: 1 = summaries under `Z` keys, 2 = summaries inside the `C` value. */
const LAYOUT = 2;
const encoder = new TextEncoder();
const LAYOUT_KEY = encoder.encode('Mlayout');
const DOWNSAMPLING_KEY = encoder.encode('Mdownsampling');
const decoder = new TextDecoder();
const cacheKey = (series: SeriesState, chunk: PersistedChunk): string => `${series.ref}:${chunk.seq}`;

/** The slice of a decoded chunk in `[minTimeMs, maxTimeMs]`, as a run. */
function slice(chunk: DecodedChunk, minTimeMs: number, maxTimeMs: number, seq: number): Run {
  const t = chunk.timestampsMs;
  let from = 0;
  while (from < t.length && t[from]! < minTimeMs) from++;
  let to = from;
  while (to < t.length && t[to]! <= maxTimeMs) to++;
  return { timestampsMs: t.subarray(from, to), values: chunk.values.subarray(from, to), seq };
}

class TimeIndexStore extends ChunkStore {
  private readonly cache: DecodedChunkCache;
  /** Downsampling levels in force, coarsest first (a rollup takes the coarsest that fits its windows). */
  private levels: Level[] = [];
  /** Per level (by resolution), the cut-off its last retention pass applied. */
  private readonly retainedCutoffMs = new Map<number, number>();

  /** Decodes large scans' chunks in worker threads (p4-time-index/scan-task.ts); started on first use. */
  private scanPool: WorkerPool<ScanTask, ScanResult> | undefined;

  constructor(context: StorageContext, phaseOptions: Options) {
    super(context, phaseOptions, new LabelIndex(phaseOptions));
    this.cache = new DecodedChunkCache(phaseOptions.decodedCacheBytes);
  }

  override async close(options: { destroy?: boolean } = {}): Promise<void> {
    await super.close(options);
    await this.scanPool?.close();
  }

  /**
   * A select that reads at least `scanWorkersSamplesMin` stored samples: the chunks not in the
   * cache are read in one batch, decoded in the scan workers, and merged with each series'
   * in-memory pieces here; smaller selects read series by series.
   */
  protected override async readAll(candidates: SeriesState[], minTimeMs: number, maxTimeMs: number, readSamples: number): Promise<{ timestampsMs: number[]; values: Float64Array }[]> {
    const { scanWorkers, scanWorkersSamplesMin } = this.options as Options;
    if (scanWorkers === 0 || readSamples < scanWorkersSamplesMin) return super.readAll(candidates, minTimeMs, maxTimeMs, readSamples);
    const keep = readSamples * DECODED_BYTES_PER_SAMPLE <= this.cache.bytesMax;
    // Everything in memory first, before any await (a checkpoint may move it).
    const plans = candidates.map((series) => {
      const chunks = this.overlapping(series, minTimeMs, maxTimeMs);
      return { series, chunks, decoded: chunks.map((c) => this.cache.get(cacheKey(series, c))), runs: this.memoryRuns(series, minTimeMs, maxTimeMs) };
    });
    const missing: { plan: number; chunk: number }[] = [];
    plans.forEach((plan, p) => plan.decoded.forEach((d, c) => d === undefined && missing.push({ plan: p, chunk: c })));
    for (let from = 0; from < missing.length; from += SCAN_READ_KEYS_MAX) {
      const part = missing.slice(from, from + SCAN_READ_KEYS_MAX);
      const values = await this.kv.getMany(part.map(({ plan, chunk }) => chunkKey(plans[plan]!.series.ref, plans[plan]!.chunks[chunk]!.minTimeMs, plans[plan]!.chunks[chunk]!.seq)));
      const found = part.filter((_, i) => values[i] !== undefined); // a chunk a delete or retention just removed
      const bytes = values.filter((v): v is Uint8Array => v !== undefined).map((v) => this.chunkBytes(v));
      this.scanPool ??= new WorkerPool<ScanTask, ScanResult>({
        file: new URL('./p4-time-index/scan-worker.js', import.meta.url),
        name: 'storage scan pool',
        errorCode: 'CRAFT_STORE_CORRUPT',
        size: scanWorkers,
        transfer: (task) => [task.bytes.buffer, task.ends.buffer] as ArrayBuffer[],
      });
      const pool = this.scanPool;
      const tasks = packScanTasks(bytes, scanWorkers * 2);
      const results = await Promise.all(tasks.map(({ task }) => pool.run(task)));
      tasks.forEach(({ first }, t) => {
        const { starts, timestampsMs, values: decodedValues } = results[t]!;
        for (let i = 0; i + 1 < starts.length; i++) {
          const { plan, chunk } = found[first + i]!;
          const target = plans[plan]!;
          const range = [starts[i]!, starts[i + 1]!] as const;
          // A cached chunk gets arrays of its own, not views that would keep the task's buffer alive.
          const decoded = keep ? { timestampsMs: timestampsMs.slice(...range), values: decodedValues.slice(...range) } : { timestampsMs: timestampsMs.subarray(...range), values: decodedValues.subarray(...range) };
          if (keep) this.cache.set(cacheKey(target.series, target.chunks[chunk]!), decoded);
          target.decoded[chunk] = decoded;
        }
      });
    }
    return plans.map(({ chunks, decoded, runs }) => {
      decoded.forEach((chunk, i) => {
        if (chunk !== undefined) runs.push(slice(chunk, minTimeMs, maxTimeMs, chunks[i]!.seq));
      });
      return mergeRuns(runs);
    });
  }

  protected override storedChunk(chunk: ClosedChunk): Uint8Array {
    const summary = summarise(decodeStored(chunk.bytes));
    if (summary !== undefined) chunk.summary = summary;
    return chunkValue(chunk, summaryTrailer(summary, chunk.minTimeMs, chunk.maxTimeMs));
  }

  protected override chunkBytes(value: Uint8Array): Uint8Array {
    return value.subarray(8, splitTrailer(value).end);
  }

  protected override chunkLoaded(chunk: PersistedChunk, value: Uint8Array): void {
    const { summary } = splitTrailer(value);
    if (summary.length > 0) chunk.summary = decodeSummary(summary, chunk.minTimeMs, chunk.maxTimeMs);
  }

  protected override chunkDropped(series: SeriesState, chunk: PersistedChunk): void {
    this.cache.delete(cacheKey(series, chunk));
  }

  protected override chunksPersisted(series: SeriesState): void {
    series.persisted.sort((a, b) => a.minTimeMs - b.minTimeMs || a.seq - b.seq);
  }

  /**
   * Stores of the first layout kept each summary under a `Z` key of its own; they are moved
   * into their chunks' values once, in one synced batch, before the chunks are read.
   */
  protected override async opening(): Promise<void> {
    if ((await this.kv.get(LAYOUT_KEY)) !== undefined) return;
    const summaries = new Map<string, Uint8Array>();
    const ops: KvOp[] = [];
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(SUMMARY_TAG), lt: Uint8Array.of(SUMMARY_TAG + 1) })) {
      for (const [key, value] of entries) {
        summaries.set(Buffer.from(key.subarray(1)).toString('hex'), value);
        ops.push({ type: 'del', key });
      }
    }
    for await (const entries of this.kv.iterate({ gte: Uint8Array.of(KEY_TAG.chunk), lt: Uint8Array.of(KEY_TAG.chunk + 1) })) {
      for (const [key, value] of entries) {
        const old = summaries.get(Buffer.from(key.subarray(1)).toString('hex'));
        const minTimeMs = readTime(key, 5);
        const maxTimeMs = readTime(value, 0);
        const trailer = summaryTrailer(old === undefined ? undefined : decodeSummary(old, minTimeMs, maxTimeMs), minTimeMs, maxTimeMs);
        const moved = new Uint8Array(value.length + trailer.length);
        moved.set(value, 0);
        moved.set(trailer, value.length);
        ops.push({ type: 'put', key, value: moved });
      }
    }
    ops.push({ type: 'put', key: LAYOUT_KEY, value: encoder.encode(String(LAYOUT)) });
    await this.kv.batch(ops, { sync: true });
    if (summaries.size > 0) this.context.log.info('moved chunk summaries into their chunks (layout 2)', { chunks: summaries.size });
  }

  /**
   * Levels as configured, each with the time its buckets are complete from: kept from the last
   * open for a level configured before; now (rounded up) for a new level on a store holding data,
   * since its older chunks have no buckets; 0 on an empty store. Levels no longer configured
   * are deleted.
   */
  protected override async loaded(): Promise<void> {
    const stored = await this.kv.get(DOWNSAMPLING_KEY);
    const saved = stored === undefined ? [] : (JSON.parse(decoder.decode(stored)) as { levels: { resolutionMs: number; sinceMs: number }[] }).levels;
    const empty = this.byRef.size === 0;
    const nowMs = this.context.clock.now();
    const configured = (this.options as Options).downsampling;
    this.levels = configured
      .map((l) => ({ ...l, sinceMs: saved.find((s) => s.resolutionMs === l.resolutionMs)?.sinceMs ?? (empty ? 0 : alignUp(nowMs, l.resolutionMs)) }))
      .sort((a, b) => b.resolutionMs - a.resolutionMs);
    const ops: KvOp[] = [];
    for (const gone of saved.filter((s) => !configured.some((l) => l.resolutionMs === s.resolutionMs))) {
      for await (const entries of this.kv.iterate(levelRange(gone.resolutionMs))) for (const [key] of entries) ops.push({ type: 'del', key });
    }
    const next = JSON.stringify({ levels: this.levels.map(({ resolutionMs, sinceMs }) => ({ resolutionMs, sinceMs })) });
    if (ops.length > 0 || (stored === undefined ? this.levels.length > 0 : decoder.decode(stored) !== next)) {
      ops.push({ type: 'put', key: DOWNSAMPLING_KEY, value: encoder.encode(next) });
      await this.kv.batch(ops, { sync: true });
    }
  }

  /** The buckets of the chunks a checkpoint writes, settled ones only, in its batch. */
  protected override async checkpointing(moved: { series: SeriesState; chunks: ClosedChunk[] }[], ops: KvOp[]): Promise<void> {
    for (const level of this.levels) {
      const resolutionMs = level.resolutionMs;
      for (const { series, chunks } of moved) {
        if (chunks.length === 0) continue;
        // Chunks and out-of-order samples are all written now; only the open head is not.
        const head = series.head;
        const settledMs = head !== undefined && head.count > 0 ? alignDown(head.firstTimestampMs!, resolutionMs) : Infinity;
        const ranges = chunks
          .map((c) => [alignDown(c.minTimeMs, resolutionMs), Math.min(alignDown(c.maxTimeMs, resolutionMs) + resolutionMs, settledMs)] as [number, number])
          .filter(([from, to]) => to > from)
          .sort((a, b) => a[0] - b[0]);
        const merged: [number, number][] = [];
        for (const range of ranges) {
          const last = merged.at(-1);
          if (last !== undefined && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
          else merged.push(range);
        }
        for (const [fromMs, toMs] of merged) bucketOps(resolutionMs, series.ref, await this.accumulators(series, fromMs, toMs - 1, resolutionMs, fromMs), ops);
      }
    }
  }

  /**
   * A delete rewrites the series into chunks, the open head included: the buckets of the
   * deleted range and of what was unsettled go, and those holding kept samples come back.
   */
  protected override async rewriting(series: SeriesState, kept: { timestampsMs: number[]; values: Float64Array }, minTimeMs: number, maxTimeMs: number, ops: KvOp[]): Promise<void> {
    const lastKeptMs = kept.timestampsMs.at(-1) ?? 0;
    for (const { resolutionMs } of this.levels) {
      const fromMs = alignDown(Math.max(0, Math.min(minTimeMs, this.settledBefore(series))), resolutionMs);
      const untilMs = Math.max(maxTimeMs, lastKeptMs);
      const endMs = untilMs >= Number.MAX_SAFE_INTEGER - resolutionMs ? Number.MAX_SAFE_INTEGER : alignDown(untilMs, resolutionMs) + resolutionMs;
      for await (const entries of this.kv.iterate(bucketRange(resolutionMs, series.ref, fromMs, endMs))) for (const [key] of entries) ops.push({ type: 'del', key });
      for (const window of accumulateSamples(kept.timestampsMs, kept.values, fromMs, endMs - 1, resolutionMs, fromMs)) {
        if (window.count > 0) ops.push({ type: 'put', key: bucketKey(resolutionMs, series.ref, window.startMs), value: encodeBucket(window, resolutionMs) });
      }
    }
  }

  /** A series retention removes takes its buckets along. */
  protected override async retiring(series: SeriesState, ops: KvOp[]): Promise<void> {
    for (const { resolutionMs } of this.levels) {
      for await (const entries of this.kv.iterate(bucketRange(resolutionMs, series.ref, 0, Number.MAX_SAFE_INTEGER))) for (const [key] of entries) ops.push({ type: 'del', key });
    }
  }

  /**
   * Each level's own retention: buckets older than it go. The cut-off moves once a bucket, so a
   * pass scans every series' buckets only when it has moved (every pass once after an open).
   */
  protected override async retaining(nowMs: number, ops: KvOp[]): Promise<void> {
    for (const { resolutionMs, retentionMs } of this.levels) {
      if (retentionMs === 0) continue;
      const cutoffMs = alignDown(nowMs - retentionMs, resolutionMs);
      if (this.retainedCutoffMs.get(resolutionMs) === cutoffMs) continue;
      this.retainedCutoffMs.set(resolutionMs, cutoffMs);
      for (const series of this.byRef.values()) {
        for await (const entries of this.kv.iterate(bucketRange(resolutionMs, series.ref, 0, cutoffMs))) for (const [key] of entries) ops.push({ type: 'del', key });
      }
    }
  }

  private findChunk(series: SeriesState, minTimeMs: number, seq: number): PersistedChunk | undefined {
    const list = series.persisted;
    let at = this.lowerBound(list, minTimeMs);
    for (; at < list.length && list[at]!.minTimeMs === minTimeMs; at++) if (list[at]!.seq === seq) return list[at];
    return undefined;
  }

  /** First index whose chunk starts at or after `timeMs`. */
  private lowerBound(list: PersistedChunk[], timeMs: number): number {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (list[middle]!.minTimeMs < timeMs) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  protected override overlapping(series: SeriesState, minTimeMs: number, maxTimeMs: number): PersistedChunk[] {
    const list = series.persisted;
    const out: PersistedChunk[] = [];
    for (let at = this.lowerBound(list, minTimeMs - this.options.chunkRangeMs); at < list.length && list[at]!.minTimeMs <= maxTimeMs; at++) {
      if (list[at]!.maxTimeMs >= minTimeMs) out.push(list[at]!);
    }
    return out;
  }

  /** `keep`: put what was decoded in the cache (false for a scan larger than the cache can hold). */
  private async decoded(series: SeriesState, chunks: PersistedChunk[], keep = true): Promise<(DecodedChunk | undefined)[]> {
    const out: (DecodedChunk | undefined)[] = chunks.map((c) => this.cache.get(cacheKey(series, c)));
    const missing = chunks.map((_, i) => i).filter((i) => out[i] === undefined);
    if (missing.length === 0) return out;
    const values = await this.kv.getMany(missing.map((i) => chunkKey(series.ref, chunks[i]!.minTimeMs, chunks[i]!.seq)));
    missing.forEach((i, k) => {
      const value = values[k];
      if (value === undefined) return;
      const chunk = decodeStored(this.chunkBytes(value));
      if (keep) this.cache.set(cacheKey(series, chunks[i]!), chunk);
      out[i] = chunk;
    });
    return out;
  }

  protected override async persistedRuns(series: SeriesState, chunks: PersistedChunk[], minTimeMs: number, maxTimeMs: number, readSamples = 0): Promise<Run[]> {
    // A scan that would fill the cache many times over would only churn it (and keep the GC busy): it reads through.
    const decoded = await this.decoded(series, chunks, readSamples * DECODED_BYTES_PER_SAMPLE <= this.cache.bytesMax);
    const runs: Run[] = [];
    decoded.forEach((chunk, i) => {
      if (chunk !== undefined) runs.push(slice(chunk, minTimeMs, maxTimeMs, chunks[i]!.seq));
    });
    return runs;
  }

  /**
   * Windows from downsampled buckets (p4-time-index/downsampling.ts) where a level fits, from
   * chunks elsewhere.
   *
   * - Windows that are whole multiples of a level's buckets and start on one (a range query
   *   whose step and start line up) read settled buckets only: no chunk is decoded, however
   *   short the windows.
   * - Other windows at least `EDGE_FACTOR` buckets long read buckets only where the raw samples
   *   are gone (before the series' oldest chunk: retention took them), and chunks with their
   *   summaries elsewhere — summaries held in memory beat a bucket scan over the store, and
   *   an edge of less than a bucket can only come from samples. So the instant
   *   `sum_over_time(x[30d])` over data whose raw samples are kept 7 days reads 23 days of
   *   hourly buckets and 7 days of chunk summaries.
   */
  protected override async rollupOf(series: SeriesState, minTimeMs: number, maxTimeMs: number, stepMs: number): Promise<WindowSummary[]> {
    const fromChunks = async (): Promise<WindowSummary[]> => (await this.accumulators(series, minTimeMs, maxTimeMs, stepMs, minTimeMs)).map(finish);
    const span = Math.min(stepMs, maxTimeMs - minTimeMs + 1);
    const aligned = (l: Level): boolean => stepMs % l.resolutionMs === 0 && minTimeMs % l.resolutionMs === 0;
    const level = this.levels.find((l) => aligned(l) || span >= EDGE_FACTOR * l.resolutionMs);
    if (level === undefined) return fromChunks();
    const resolutionMs = level.resolutionMs;
    const trustedFromMs = alignUp(level.sinceMs, resolutionMs);
    const settledMs = this.settledBefore(series);
    const rawFromMs = aligned(level) ? settledMs : Math.min(settledMs, series.persisted[0]?.minTimeMs ?? Infinity);
    const trustedToMs = alignDown(rawFromMs, resolutionMs);
    if (trustedToMs <= Math.max(minTimeMs, trustedFromMs)) return fromChunks();
    // Per window: [edge before][whole buckets][edge after]; neighbouring edges merge into one read.
    const sampleRanges: [number, number][] = [];
    const bucketSpans: [number, number][] = [];
    const fromSamples = (from: number, to: number): void => {
      const last = sampleRanges.at(-1);
      if (last !== undefined && last[1] + 1 >= from) last[1] = to;
      else sampleRanges.push([from, to]);
    };
    for (let startMs = minTimeMs; startMs <= maxTimeMs; startMs += stepMs) {
      const endMs = Math.min(startMs + stepMs - 1, maxTimeMs);
      const innerFrom = Math.max(alignUp(startMs, resolutionMs), trustedFromMs);
      const innerTo = Math.min(alignDown(endMs + 1, resolutionMs), trustedToMs);
      if (innerTo <= innerFrom) {
        fromSamples(startMs, endMs);
        continue;
      }
      if (innerFrom > startMs) fromSamples(startMs, innerFrom - 1);
      bucketSpans.push([innerFrom, innerTo]);
      if (innerTo <= endMs) fromSamples(innerTo, endMs);
      if (sampleRanges.length > EDGE_READS_MAX) return fromChunks();
    }
    const pieces: WindowAccumulator[] = [];
    for (const [from, to] of sampleRanges) pieces.push(...(await this.accumulators(series, from, to, stepMs, minTimeMs)));
    if (bucketSpans.length > 0) {
      // One scan over every bucket in reach; a bucket counts only inside its window's span.
      let at = 0;
      for await (const entries of this.kv.iterate(bucketRange(resolutionMs, series.ref, bucketSpans[0]![0], bucketSpans.at(-1)![1]))) {
        for (const [key, value] of entries) {
          const bucketMs = bucketStartOf(key);
          while (at < bucketSpans.length && bucketSpans[at]![1] <= bucketMs) at++;
          if (at === bucketSpans.length) break;
          if (bucketMs < bucketSpans[at]![0]) continue;
          const bucket = decodeBucket(value, bucketMs, resolutionMs);
          bucket.startMs = minTimeMs + windowIndex(minTimeMs, stepMs, bucketMs) * stepMs;
          pieces.push(bucket);
        }
      }
    }
    // Pieces never overlap in time: in time order, each window's pieces merge in turn.
    pieces.sort((a, b) => a.firstMs - b.firstMs);
    const windows: WindowAccumulator[] = [];
    for (const piece of pieces) {
      const last = windows.at(-1);
      if (last !== undefined && last.startMs === piece.startMs) mergeLater(last, piece);
      else windows.push(piece);
    }
    return windows.map(finish);
  }

  /**
   * The series' samples before this time are in buckets (once a checkpoint wrote them): the open
   * head, chunks not yet written and out-of-order samples not yet written are not.
   */
  private settledBefore(series: SeriesState): number {
    let settled = Infinity;
    const head = series.head;
    if (head !== undefined && head.count > 0) settled = head.firstTimestampMs!;
    for (const chunk of series.closed) settled = Math.min(settled, chunk.minTimeMs);
    if (series.outOfOrder !== undefined) for (const t of series.outOfOrder.keys()) settled = Math.min(settled, t);
    return settled;
  }

  /**
   * Windows (starting at `originMs` + k · step) of the samples in `[minTimeMs, maxTimeMs]`: from
   * summaries where a chunk lies wholly inside one window and the range, from decoded samples
   * elsewhere; from merged samples for a series whose pieces overlap in time.
   */
  private async accumulators(series: SeriesState, minTimeMs: number, maxTimeMs: number, stepMs: number, originMs: number): Promise<WindowAccumulator[]> {
    const fromSamples = async (): Promise<WindowAccumulator[]> => {
      const { timestampsMs, values } = await this.read(series, minTimeMs, maxTimeMs);
      return accumulateSamples(timestampsMs, values, minTimeMs, maxTimeMs, stepMs, originMs);
    };
    if ((series.outOfOrder?.size ?? 0) > 0) return fromSamples();
    // In-memory pieces first, before any await (a checkpoint may move them).
    const memory: { minTimeMs: number; maxTimeMs: number; run: Run }[] = [];
    for (const chunk of series.closed) {
      if (chunk.maxTimeMs >= minTimeMs && chunk.minTimeMs <= maxTimeMs) memory.push({ minTimeMs: chunk.minTimeMs, maxTimeMs: chunk.maxTimeMs, run: decodeRange(chunk.bytes, minTimeMs, maxTimeMs, chunk.seq) });
    }
    const head = series.head;
    if (head !== undefined && head.count > 0 && head.lastTimestampMs! >= minTimeMs && head.firstTimestampMs! <= maxTimeMs) {
      memory.push({ minTimeMs: head.firstTimestampMs!, maxTimeMs: head.lastTimestampMs!, run: decodeRange(head.bytes(), minTimeMs, maxTimeMs, 0) });
    }
    const persisted = this.overlapping(series, minTimeMs, maxTimeMs);
    type Piece = { minTimeMs: number; maxTimeMs: number; summary?: StoredSummary; chunk?: PersistedChunk; run?: Run };
    const pieces: Piece[] = [...persisted.map((c) => ({ minTimeMs: c.minTimeMs, maxTimeMs: c.maxTimeMs, summary: c.summary as StoredSummary | undefined, chunk: c })), ...memory];
    pieces.sort((a, b) => a.minTimeMs - b.minTimeMs);
    for (let i = 1; i < pieces.length; i++) if (pieces[i]!.minTimeMs <= pieces[i - 1]!.maxTimeMs) return fromSamples();
    const summarised = (p: Piece): boolean =>
      p.summary !== undefined && p.minTimeMs >= minTimeMs && p.maxTimeMs <= maxTimeMs && windowIndex(originMs, stepMs, p.minTimeMs) === windowIndex(originMs, stepMs, p.maxTimeMs);
    const toDecode = pieces.filter((p) => p.chunk !== undefined && !summarised(p));
    const decoded = await this.decoded(series, toDecode.map((p) => p.chunk!));
    toDecode.forEach((p, i) => {
      const chunk = decoded[i];
      if (chunk !== undefined) p.run = slice(chunk, minTimeMs, maxTimeMs, p.chunk!.seq);
    });
    const windows: WindowAccumulator[] = [];
    const add = (window: WindowAccumulator): void => {
      const last = windows.at(-1);
      if (last !== undefined && last.startMs === window.startMs) mergeLater(last, window);
      else windows.push(window);
    };
    for (const piece of pieces) {
      if (summarised(piece)) {
        const s = piece.summary!;
        if (s.count === 0) continue;
        const startMs = originMs + windowIndex(originMs, stepMs, piece.minTimeMs) * stepMs;
        add({ startMs, count: s.count, exact: { parts: [...s.exact.parts], special: s.exact.special }, min: s.min, max: s.max, first: s.first, firstMs: s.firstMs, last: s.last, lastMs: s.lastMs });
      } else if (piece.run !== undefined) {
        for (const window of accumulateSamples(piece.run.timestampsMs, piece.run.values, minTimeMs, maxTimeMs, stepMs, originMs)) add(window);
      }
    }
    return windows;
  }

  /** Cache figures, for benchmarks and `craft.storage.info` readers. */
  cacheStats(): { entries: number; bytes: number; hits: number; misses: number; evictions: number } {
    return { entries: this.cache.size, bytes: this.cache.bytesUsed, hits: this.cache.hits, misses: this.cache.misses, evictions: this.cache.evictions };
  }
}

export default definePlugin({
  id: 'storage.time-index',
  craft: 3,
  phase: 4,
  slot: 'storage.engine',
  version: '1.0.0',
  summary: 'Label index plus a time index of chunks, per-chunk summaries that answer rollups without decoding, and an LRU of decoded chunks',
  durable: true,
  options,
  create: (context, chosen) => new TimeIndexStore(context, chosen),
});
