/**
 * Parallel scans: a large select's chunks, decoded in worker threads (core/workers/pool.ts).
 * The main thread reads the chunk bytes from the KV engine (LevelDB reads on its own threads
 * already), packs them into tasks of about equal bytes, and merges what comes back; the
 * workers do the CPU-bound part — Gorilla or packed decoding, 16 bytes out for every ~1.2 in.
 *
 * A task is one buffer of chunks end to end (moved to the worker); its answer is every
 * sample of every chunk in one pair of arrays, with each chunk's start (moved back).
 */
import { decodeStoredRange } from '../shared/chunk-series.js';
import { chunkSampleCount } from '../shared/gorilla.js';

export interface ScanTask {
  bytes: Uint8Array;
  /** End offset of each chunk in `bytes`. */
  ends: Int32Array;
}

export interface ScanResult {
  /** Start of chunk i's samples; `starts[n]` is the total. */
  starts: Int32Array;
  timestampsMs: Float64Array;
  values: Float64Array;
}

export function runScanTask(task: ScanTask): ScanResult {
  const n = task.ends.length;
  const starts = new Int32Array(n + 1);
  for (let i = 0, from = 0; i < n; from = task.ends[i]!, i++) starts[i + 1] = starts[i]! + chunkSampleCount(task.bytes.subarray(from, task.ends[i]));
  const timestampsMs = new Float64Array(starts[n]!);
  const values = new Float64Array(starts[n]!);
  for (let i = 0, from = 0; i < n; from = task.ends[i]!, i++) {
    const written = decodeStoredRange(task.bytes.subarray(from, task.ends[i]), 0, Number.MAX_SAFE_INTEGER, timestampsMs, values, starts[i]!);
    if (written !== starts[i + 1]! - starts[i]!) throw new RangeError(`chunk ${i} of a scan task holds ${written} samples, its header says ${starts[i + 1]! - starts[i]!}`);
  }
  return { starts, timestampsMs, values };
}

/** Packs chunk bytes (in order) into at most `count` tasks of about equal size; returns each task's first chunk index too. */
export function packScanTasks(chunks: Uint8Array[], count: number): { task: ScanTask; first: number }[] {
  let total = 0;
  for (const c of chunks) total += c.length;
  const target = Math.max(1, Math.ceil(total / Math.max(1, count)));
  const out: { task: ScanTask; first: number }[] = [];
  let first = 0;
  while (first < chunks.length) {
    let end = first;
    let bytes = 0;
    while (end < chunks.length && (end === first || bytes + chunks[end]!.length <= target)) bytes += chunks[end++]!.length;
    const buffer = new Uint8Array(bytes);
    const ends = new Int32Array(end - first);
    let at = 0;
    for (let i = first; i < end; i++) {
      buffer.set(chunks[i]!, at);
      at += chunks[i]!.length;
      ends[i - first] = at;
    }
    out.push({ task: { bytes: buffer, ends }, first });
    first = end;
  }
  return out;
}
