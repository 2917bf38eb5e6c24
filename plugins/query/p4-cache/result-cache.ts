/**
 * Results of range queries by block: for one expression, step and lookback, the series of one
 * step-aligned block of time. An LRU with a byte limit (a block's points and labels, roughly);
 * `invalidate` forgets the blocks a late sample could change.
 */
import type { SeriesSamples } from '../../../core/model.js';

export interface CachedBlock {
  /** First and last step time of the block, ms. */
  startMs: number;
  endMs: number;
  backMs: number;
  forwardMs: number;
  series: SeriesSamples[];
  bytes: number;
}

/** Bytes a block is charged: 16 a point, the labels' text, and a fixed share for the entry. */
export function blockBytes(series: SeriesSamples[]): number {
  let bytes = 256;
  for (const s of series) bytes += 64 + JSON.stringify(s.labels).length * 2 + s.timestampsMs.length * 16;
  return bytes;
}

export class ResultCache {
  private readonly entries = new Map<string, CachedBlock>();
  bytesUsed = 0;
  hits = 0;
  misses = 0;
  evictions = 0;
  invalidations = 0;

  constructor(readonly bytesMax: number) {}

  get(key: string): CachedBlock | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    // Most recently used last.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  set(key: string, entry: CachedBlock): void {
    if (entry.bytes > this.bytesMax / 4) return;
    const held = this.entries.get(key);
    if (held !== undefined) {
      this.bytesUsed -= held.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, entry);
    this.bytesUsed += entry.bytes;
    for (const [oldest, value] of this.entries) {
      if (this.bytesUsed <= this.bytesMax) break;
      this.entries.delete(oldest);
      this.bytesUsed -= value.bytes;
      this.evictions += 1;
    }
  }

  /** Forgets every block whose answer a sample in `[minTimeMs, maxTimeMs]` can change. */
  invalidate(minTimeMs: number, maxTimeMs: number): number {
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.endMs >= minTimeMs - entry.forwardMs && entry.startMs <= maxTimeMs + entry.backMs) {
        this.entries.delete(key);
        this.bytesUsed -= entry.bytes;
        dropped += 1;
      }
    }
    this.invalidations += dropped;
    return dropped;
  }

  get size(): number {
    return this.entries.size;
  }
}
