/**
 * An LRU cache of decoded chunks with a byte limit: a dashboard that refreshes the same
 * 24 hours every 30 s decodes each chunk once, not once a refresh. A decoded chunk costs
 * 16 bytes a sample (two Float64Arrays); the least recently used are evicted past the limit.
 * Keys name a chunk by series ref and sequence, which a rewrite never reuses, so an entry can
 * go stale only by never being asked for again.
 */
export interface DecodedChunk {
  timestampsMs: Float64Array;
  values: Float64Array;
}

const ENTRY_OVERHEAD_BYTES = 96;

export class DecodedChunkCache {
  /** Map iteration order is insertion order: re-inserting on a hit makes it the LRU order. */
  private readonly entries = new Map<string, DecodedChunk>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly bytesMax: number) {}

  get(key: string): DecodedChunk | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  set(key: string, chunk: DecodedChunk): void {
    const size = sizeOf(chunk);
    if (size > this.bytesMax) return;
    const held = this.entries.get(key);
    if (held !== undefined) {
      this.bytes -= sizeOf(held);
      this.entries.delete(key);
    }
    this.entries.set(key, chunk);
    this.bytes += size;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.bytesMax) break;
      this.entries.delete(oldest);
      this.bytes -= sizeOf(entry);
      this.evictions += 1;
    }
  }

  delete(key: string): void {
    const held = this.entries.get(key);
    if (held === undefined) return;
    this.entries.delete(key);
    this.bytes -= sizeOf(held);
  }

  get size(): number {
    return this.entries.size;
  }

  get bytesUsed(): number {
    return this.bytes;
  }
}

const sizeOf = (chunk: DecodedChunk): number => chunk.timestampsMs.byteLength + chunk.values.byteLength + ENTRY_OVERHEAD_BYTES;
