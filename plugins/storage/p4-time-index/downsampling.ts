/**
 * Downsampling: per series, stored window summaries (count, exact sum, min, max, first, last)
 * of fixed, aligned buckets — 5 minutes, 1 hour, whatever `downsampling` lists — that rollups
 * read instead of samples, and that outlive the raw samples' retention.
 *
 *   R<resolution ms u32><ref u32><bucket start t64> → summary (summaries.ts's compact form)
 *
 * A bucket is computed from the series' samples when the chunks holding it are written (at a
 * checkpoint, in the same synced batch), recomputed when a late sample's chunk is written or a
 * delete rewrites the series, and only once it is *settled*: wholly before the series' open
 * head. So where a level is in force (from `sinceMs`, when the level was first configured), a
 * settled bucket that is not stored holds no sample — that is what lets a read trust it.
 */
import { z } from 'zod';
import type { KvOp } from '../../../core/slots/kv.js';
import type { WindowAccumulator } from '../../../core/storage/rollup.js';
import { readTime, writeTime } from '../shared/keys.js';
import { decodeSummary, encodeSummary } from './summaries.js';

export const DOWNSAMPLE_TAG = 0x52; // R
export const LEVELS_MAX = 4;

export const downsamplingSchema = z
  .array(
    z
      .object({
        /** Bucket length, ms (at most ~49 days: it is a u32 in the key). */
        resolutionMs: z.number().int().min(1).max(0xffffffff),
        /** How long buckets are kept, ms; 0 keeps them as long as their series lives. */
        retentionMs: z.number().int().min(0).default(0),
      })
      .strict(),
  )
  .max(LEVELS_MAX)
  .default([])
  .refine((levels) => new Set(levels.map((l) => l.resolutionMs)).size === levels.length, 'two levels share a resolution');

export interface Level {
  resolutionMs: number;
  retentionMs: number;
  /** Buckets from here on are complete (the level was configured then). */
  sinceMs: number;
}

export function bucketKey(resolutionMs: number, ref: number, startMs: number): Uint8Array {
  const key = new Uint8Array(17);
  const view = new DataView(key.buffer);
  key[0] = DOWNSAMPLE_TAG;
  view.setUint32(1, resolutionMs);
  view.setUint32(5, ref);
  writeTime(view, 9, startMs);
  return key;
}

export const bucketStartOf = (key: Uint8Array): number => readTime(key, 9);

/** Keys of a series' buckets starting in `[fromMs, toMs)`. */
export function bucketRange(resolutionMs: number, ref: number, fromMs: number, toMs: number): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: bucketKey(resolutionMs, ref, Math.max(0, fromMs)), lt: bucketKey(resolutionMs, ref, Math.max(0, toMs)) };
}

/** Every key of one resolution (a level no longer configured is dropped by this range). */
export function levelRange(resolutionMs: number): { gte: Uint8Array; lt: Uint8Array } {
  const gte = Uint8Array.of(DOWNSAMPLE_TAG, 0, 0, 0, 0);
  new DataView(gte.buffer).setUint32(1, resolutionMs);
  // The next resolution's first key (or the next tag, after the largest resolution).
  const lt = resolutionMs === 0xffffffff ? Uint8Array.of(DOWNSAMPLE_TAG + 1) : Uint8Array.of(DOWNSAMPLE_TAG, 0, 0, 0, 0);
  if (resolutionMs !== 0xffffffff) new DataView(lt.buffer).setUint32(1, resolutionMs + 1);
  return { gte, lt };
}

export const alignDown = (ms: number, resolutionMs: number): number => Math.floor(ms / resolutionMs) * resolutionMs;
export const alignUp = (ms: number, resolutionMs: number): number => Math.ceil(ms / resolutionMs) * resolutionMs;

export function encodeBucket(window: WindowAccumulator, resolutionMs: number): Uint8Array {
  const { count, min, max, first, firstMs, last, lastMs, exact } = window;
  return encodeSummary({ count, sum: 0, min, max, first, firstMs, last, lastMs, exact }, window.startMs, window.startMs + resolutionMs - 1);
}

export function decodeBucket(bytes: Uint8Array, startMs: number, resolutionMs: number): WindowAccumulator {
  const s = decodeSummary(bytes, startMs, startMs + resolutionMs - 1);
  return { startMs, count: s.count, exact: { parts: [...s.exact.parts], special: s.exact.special }, min: s.min, max: s.max, first: s.first, firstMs: s.firstMs, last: s.last, lastMs: s.lastMs };
}

/**
 * Puts for a series' buckets from its windows. A bucket a checkpoint recomputes can only have
 * gained samples (writes add or replace; only a delete removes, and `rewriting` handles those),
 * so there is nothing to delete here.
 */
export function bucketOps(resolutionMs: number, ref: number, windows: WindowAccumulator[], ops: KvOp[]): void {
  for (const window of windows) {
    if (window.count > 0) ops.push({ type: 'put', key: bucketKey(resolutionMs, ref, window.startMs), value: encodeBucket(window, resolutionMs) });
  }
}
