/**
 * One series in the Gorilla store: an in-memory head chunk that takes in-order samples,
 * closed chunks waiting for the next checkpoint, chunks already in the KV engine, and a
 * small buffer of out-of-order samples older than the head.
 *
 * Pieces may overlap in time (out-of-order writes, rewrites after a delete). Every piece has
 * a sequence number from one store-wide counter, given when it starts taking samples; for a
 * timestamp held by several pieces, the piece with the highest sequence holds the current
 * value, because it was written last. The head and the out-of-order buffer never overlap
 * each other: the buffer only takes samples older than the head's first one.
 */
import { ChunkAppender, decodeChunk, decodeChunkRange, chunkSampleCount, type DecodedChunk } from './gorilla.js';
import { decodePackedRange, isPackedChunk, packChunk } from './packed-chunk.js';
import { Float64Builder, type Labels } from '../../../core/model.js';
import type { WindowSummary } from '../../../core/storage/rollup.js';

/** Count, sum, min, max, first and last of a chunk's samples (staleness markers left out; rules in core/storage/rollup.ts). */
export type ChunkSummary = Omit<WindowSummary, 'startMs'>;

/** A chunk in the KV engine: `C<ref><minT><seq>` → `<maxT t64><chunk bytes>`. */
export interface PersistedChunk {
  minTimeMs: number;
  maxTimeMs: number;
  count: number;
  seq: number;
  /** Set by phases that keep chunk summaries. */
  summary?: ChunkSummary;
}

/** The metadata a persisted chunk keeps of a closed one. */
export function persistedOf(chunk: ClosedChunk): PersistedChunk {
  const { minTimeMs, maxTimeMs, count, seq, summary } = chunk;
  return summary === undefined ? { minTimeMs, maxTimeMs, count, seq } : { minTimeMs, maxTimeMs, count, seq, summary };
}

/** A chunk cut from the head (or built from the out-of-order buffer), not yet in the KV engine. */
export interface ClosedChunk extends PersistedChunk {
  bytes: Uint8Array;
}

export interface SeriesState {
  ref: number;
  labels: Labels;
  key: string;
  head: ChunkAppender | undefined;
  headSeq: number;
  /** The head changed since the last checkpoint. */
  headDirty: boolean;
  closed: ClosedChunk[];
  persisted: PersistedChunk[];
  /** Out-of-order samples older than the head's first, time → value. */
  outOfOrder: Map<number, number> | undefined;
  /** Newest timestamp the series holds (−∞ when empty). */
  newestMs: number;
  /** `SERIES_PENDING` until a commit creates it in the store, `SERIES_LIVE`, `SERIES_GONE` once deleted. */
  status: number;
  /**
   * Scratch of the commit that last touched the series (`mark` is that commit's number): its
   * newest timestamp as the commit moves it, and the commit's earliest and latest sample for
   * it. Fields rather than maps keyed by series, because the commit loop runs once per sample.
   */
  mark: number;
  markNewestMs: number;
  markMinMs: number;
  markMaxMs: number;
}

/** `SeriesState.status`: made by an appender, not yet committed. */
export const SERIES_PENDING = 0;
/** `SeriesState.status`: in the store's maps and index. */
export const SERIES_LIVE = 1;
/** `SeriesState.status`: deleted; an appender that still holds it finds the series again by labels. */
export const SERIES_GONE = 2;

/** Samples of a piece, in time order. */
export interface Run {
  timestampsMs: Float64Array;
  values: Float64Array;
  seq: number;
}

/** The sequence of the out-of-order buffer when merged: newer than every chunk, older than the head. */
export const OUT_OF_ORDER_SEQ = Number.MAX_SAFE_INTEGER - 1;
export const HEAD_SEQ = Number.MAX_SAFE_INTEGER;

export function newSeries(ref: number, labels: Labels, key: string): SeriesState {
  return {
    ref, labels, key, head: undefined, headSeq: 0, headDirty: false, closed: [], persisted: [], outOfOrder: undefined, newestMs: -Infinity,
    status: SERIES_PENDING, mark: 0, markNewestMs: -Infinity, markMinMs: Infinity, markMaxMs: -Infinity,
  };
}

/** How closed chunks are written: as Gorilla chunks, or packed where that is smaller (packed-chunk.ts). */
export type ChunkEncoding = 'gorilla' | 'packed';

/**
 * Decodes the samples of a stored chunk — Gorilla or packed, told apart by the byte after the
 * count — with minTimeMs ≤ t ≤ maxTimeMs into the arrays from `offset`; returns how many.
 */
export function decodeStoredRange(bytes: Uint8Array, minTimeMs: number, maxTimeMs: number, timestampsMs: Float64Array, values: Float64Array, offset = 0): number {
  return isPackedChunk(bytes) ? decodePackedRange(bytes, minTimeMs, maxTimeMs, timestampsMs, values, offset) : decodeChunkRange(bytes, minTimeMs, maxTimeMs, timestampsMs, values, offset);
}

/** Every sample of a stored chunk (either format). */
export function decodeStored(bytes: Uint8Array): DecodedChunk {
  if (!isPackedChunk(bytes)) return decodeChunk(bytes);
  const count = chunkSampleCount(bytes);
  const timestampsMs = new Float64Array(count);
  const values = new Float64Array(count);
  decodePackedRange(bytes, 0, Number.MAX_SAFE_INTEGER, timestampsMs, values, 0);
  return { timestampsMs, values };
}

/** The bytes a closed chunk is stored as: the Gorilla bytes, or the packed ones when asked for and smaller. */
export function closedChunkBytes(gorilla: Uint8Array, encoding: ChunkEncoding, samples?: DecodedChunk): Uint8Array {
  if (encoding === 'gorilla') return gorilla;
  const { timestampsMs, values } = samples ?? decodeChunk(gorilla);
  return packChunk(timestampsMs, values, timestampsMs.length, gorilla.length) ?? gorilla;
}

/** The head appender a checkpointed head's bytes (Gorilla, or packed by `closedChunkBytes`) continue. */
export function resumeHead(bytes: Uint8Array): ChunkAppender {
  if (!isPackedChunk(bytes)) return ChunkAppender.resume(bytes);
  const { timestampsMs, values } = decodeStored(bytes);
  const head = new ChunkAppender();
  for (let i = 0; i < timestampsMs.length; i++) head.append(timestampsMs[i]!, values[i]!);
  return head;
}

export function decodeRange(bytes: Uint8Array, minTimeMs: number, maxTimeMs: number, seq: number): Run {
  const count = chunkSampleCount(bytes);
  const timestampsMs = new Float64Array(count);
  const values = new Float64Array(count);
  const n = decodeStoredRange(bytes, minTimeMs, maxTimeMs, timestampsMs, values, 0);
  return { timestampsMs: timestampsMs.subarray(0, n), values: values.subarray(0, n), seq };
}

export function outOfOrderRun(buffer: Map<number, number>, minTimeMs: number, maxTimeMs: number): Run {
  const times = [...buffer.keys()].filter((t) => t >= minTimeMs && t <= maxTimeMs).sort((a, b) => a - b);
  const timestampsMs = new Float64Array(times);
  const values = new Float64Array(times.length);
  for (let i = 0; i < times.length; i++) values[i] = buffer.get(times[i]!)!;
  return { timestampsMs, values, seq: OUT_OF_ORDER_SEQ };
}

/**
 * Joins runs into one strictly ascending series. Runs that do not overlap are concatenated
 * (the common case: in-order data); otherwise the run with the higher sequence wins a tie.
 */
export function mergeRuns(runs: Run[]): { timestampsMs: number[]; values: Float64Array } {
  const timestampsMs: number[] = [];
  // Values go from typed array to typed array only: a NaN's payload (staleness) must survive.
  const values = new Float64Builder();
  const nonEmpty = runs.filter((r) => r.timestampsMs.length > 0).sort((a, b) => a.timestampsMs[0]! - b.timestampsMs[0]! || a.seq - b.seq);
  let disjoint = true;
  for (let i = 1; i < nonEmpty.length; i++) {
    if (nonEmpty[i]!.timestampsMs[0]! <= nonEmpty[i - 1]!.timestampsMs.at(-1)!) disjoint = false;
  }
  if (disjoint) {
    for (const run of nonEmpty) {
      for (let i = 0; i < run.timestampsMs.length; i++) {
        timestampsMs.push(run.timestampsMs[i]!);
        values.push(run.values[i]!);
      }
    }
    return { timestampsMs, values: values.finish() };
  }
  const latest = new Map<number, { run: Run; index: number }>();
  for (const run of nonEmpty) {
    for (let i = 0; i < run.timestampsMs.length; i++) {
      const t = run.timestampsMs[i]!;
      const held = latest.get(t);
      if (held === undefined || held.run.seq < run.seq) latest.set(t, { run, index: i });
    }
  }
  for (const t of [...latest.keys()].sort((a, b) => a - b)) {
    const { run, index } = latest.get(t)!;
    timestampsMs.push(t);
    values.push(run.values[index]!);
  }
  return { timestampsMs, values: values.finish() };
}

/** The head with one sample put in place (replacing the value at an equal time): decode, merge, re-encode. */
export function rebuildHead(head: ChunkAppender, timestampMs: number, value: number): { head: ChunkAppender; replaced: boolean } {
  const { timestampsMs, values } = decodeChunk(head.bytes());
  const next = new ChunkAppender();
  let placed = false;
  let replaced = false;
  for (let i = 0; i < timestampsMs.length; i++) {
    const t = timestampsMs[i]!;
    if (!placed && timestampMs <= t) {
      next.append(timestampMs, value);
      placed = true;
      if (timestampMs === t) {
        replaced = true;
        continue;
      }
    }
    next.append(t, values[i]!);
  }
  if (!placed) next.append(timestampMs, value);
  return { head: next, replaced };
}

/** Whether a decoded run holds `timestampMs` (binary search). */
export function runHas(timestampsMs: Float64Array, timestampMs: number): boolean {
  let low = 0;
  let high = timestampsMs.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const t = timestampsMs[middle]!;
    if (t === timestampMs) return true;
    if (t < timestampMs) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}
