/**
 * Chunk summaries: count, exact sum, min, max, first and last of a chunk's samples, computed
 * once when the chunk is written and stored beside it, so a rollup window that covers a
 * whole chunk adds the summary instead of decoding 120 samples.
 *
 *   Z<ref u32><minT t64><seq u32> → count u32  min f64  max f64  first f64  firstMs f64
 *                                   last f64  lastMs f64  special f64  parts u8  part f64 × parts
 *
 * The sum is kept as its exact expansion (core/storage/rollup.ts), so merging summaries
 * gives the same bits as adding every sample. A chunk of only staleness markers has count 0.
 */
import { accumulateSamples, type WindowAccumulator } from '../../../core/storage/rollup.js';
import type { ChunkSummary } from '../shared/chunk-series.js';
import { KEY_TAG } from '../shared/keys.js';
import type { DecodedChunk } from './decoded-cache.js';

/** Parts of an exact sum a summary keeps at most; a longer expansion is not summarised (rare: it needs values spread over ~600 binary orders of magnitude). */
export const SUMMARY_PARTS_MAX = 32;
export const SUMMARY_TAG = 0x5a; // Z

export type StoredSummary = ChunkSummary & { exact: { parts: number[]; special: number } };

export function summaryKey(chunkKey: Uint8Array): Uint8Array {
  const key = chunkKey.slice();
  key[0] = SUMMARY_TAG;
  return key;
}

/** Whether `key[0]` is the chunk tag this module mirrors. */
export const isChunkKey = (key: Uint8Array): boolean => key[0] === KEY_TAG.chunk;

/** The summary of a decoded chunk, or undefined when its sum cannot be kept compactly. */
export function summarise(chunk: DecodedChunk): StoredSummary | undefined {
  const n = chunk.timestampsMs.length;
  if (n === 0) return undefined;
  const [window] = accumulateSamples(chunk.timestampsMs, chunk.values, chunk.timestampsMs[0]!, chunk.timestampsMs[n - 1]!, Number.MAX_SAFE_INTEGER) as [WindowAccumulator | undefined];
  if (window === undefined) return { count: 0, sum: 0, min: NaN, max: NaN, first: NaN, firstMs: 0, last: NaN, lastMs: 0, exact: { parts: [], special: 0 } };
  if (window.exact.parts.length > SUMMARY_PARTS_MAX) return undefined;
  const { count, min, max, first, firstMs, last, lastMs, exact } = window;
  return { count, sum: 0, min, max, first, firstMs, last, lastMs, exact };
}

export function encodeSummary(summary: StoredSummary): Uint8Array {
  const parts = summary.exact.parts;
  const bytes = new Uint8Array(4 + 7 * 8 + 1 + parts.length * 8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, summary.count);
  [summary.min, summary.max, summary.first, summary.firstMs, summary.last, summary.lastMs, summary.exact.special].forEach((v, i) => view.setFloat64(4 + i * 8, v));
  view.setUint8(60, parts.length);
  parts.forEach((p, i) => view.setFloat64(61 + i * 8, p));
  return bytes;
}

export function decodeSummary(bytes: Uint8Array): StoredSummary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = (i: number): number => view.getFloat64(4 + i * 8);
  const partCount = view.getUint8(60);
  if (bytes.length !== 61 + partCount * 8) throw new Error(`chunk summary of ${bytes.length} bytes does not hold ${partCount} parts`);
  const parts = Array.from({ length: partCount }, (_, i) => view.getFloat64(61 + i * 8));
  return { count: view.getUint32(0), sum: 0, min: f(0), max: f(1), first: f(2), firstMs: f(3), last: f(4), lastMs: f(5), exact: { parts, special: f(6) } };
}
