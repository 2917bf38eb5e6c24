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
 * - caches decoded chunks in an LRU with a byte limit (p4-time-index/decoded-cache.ts).
 *
 * Costs: a summary is 61 bytes or more per chunk on disk (~0.5 B a sample at 120 samples a
 * chunk) and its metadata in memory. Not built yet: scans spread over worker threads.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { KvOp } from '../../core/slots/kv.js';
import type { StorageContext } from '../../core/slots/storage.js';
import { accumulateSamples, finish, mergeLater, windowIndex, type WindowAccumulator, type WindowSummary } from '../../core/storage/rollup.js';
import { ChunkStore, chunkKey, chunkStoreOptions, chunkValue } from './shared/chunk-store.js';
import { LabelIndex, labelIndexOptions } from './shared/label-index.js';
import { decodeRange, decodeStored, type ClosedChunk, type PersistedChunk, type Run, type SeriesState } from './shared/chunk-series.js';
import { KEY_TAG, readTime } from './shared/keys.js';
import { DecodedChunkCache, type DecodedChunk } from './p4-time-index/decoded-cache.js';
import { SUMMARY_TAG, decodeSummary, splitTrailer, summarise, summaryTrailer, type StoredSummary } from './p4-time-index/summaries.js';

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
});
type Options = z.infer<typeof options>;

const DECODED_BYTES_PER_SAMPLE = 16;
/** Layout of this phase's chunk values: 1 = summaries under `Z` keys, 2 = summaries inside the `C` value. */
const LAYOUT = 2;
const encoder = new TextEncoder();
const LAYOUT_KEY = encoder.encode('Mlayout');
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

  constructor(context: StorageContext, phaseOptions: Options) {
    super(context, phaseOptions, new LabelIndex(phaseOptions));
    this.cache = new DecodedChunkCache(phaseOptions.decodedCacheBytes);
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
   * Windows from summaries where a chunk lies wholly inside one window and the range, from
   * decoded samples elsewhere. Only for series whose pieces do not overlap in time.
   */
  protected override async rollupOf(series: SeriesState, minTimeMs: number, maxTimeMs: number, stepMs: number): Promise<WindowSummary[]> {
    if ((series.outOfOrder?.size ?? 0) > 0) return super.rollupOf(series, minTimeMs, maxTimeMs, stepMs);
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
    for (let i = 1; i < pieces.length; i++) if (pieces[i]!.minTimeMs <= pieces[i - 1]!.maxTimeMs) return super.rollupOf(series, minTimeMs, maxTimeMs, stepMs);
    const summarised = (p: Piece): boolean =>
      p.summary !== undefined && p.minTimeMs >= minTimeMs && p.maxTimeMs <= maxTimeMs && windowIndex(minTimeMs, stepMs, p.minTimeMs) === windowIndex(minTimeMs, stepMs, p.maxTimeMs);
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
        const startMs = minTimeMs + windowIndex(minTimeMs, stepMs, piece.minTimeMs) * stepMs;
        add({ startMs, count: s.count, exact: { parts: [...s.exact.parts], special: s.exact.special }, min: s.min, max: s.max, first: s.first, firstMs: s.firstMs, last: s.last, lastMs: s.lastMs });
      } else if (piece.run !== undefined) {
        for (const window of accumulateSamples(piece.run.timestampsMs, piece.run.values, minTimeMs, maxTimeMs, stepMs)) add(window);
      }
    }
    return windows.map(finish);
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
