/**
 * An LRU cache of decoded chunks with a byte limit: a dashboard that refreshes the same
 * 24 hours every 30 s decodes each chunk once, not once a refresh. A decoded chunk costs
 * 16 bytes a sample (two Float64Arrays); past the limit the least recently used go.
 * Keys name a chunk by series ref and sequence, which a rewrite never reuses, so an entry can
 * go stale only by never being asked for again.
 */
export interface DecodedChunk {
  timestampsMs: Float64Array;
  values: Float64Array;
}

const ENTRY_OVERHEAD_BYTES = 96;
/** Share of the bytes a chunk seen once may use: a long scan churns only this part. */
const PROBATION_SHARE = 0.25;

/** One LRU list: a map to nodes of a doubly linked list, oldest at the head (O(1) for every operation). */
class LruSegment {
  private readonly nodes = new Map<string, Node>();
  private oldest: Node | undefined;
  private newest: Node | undefined;
  bytes = 0;

  get size(): number {
    return this.nodes.size;
  }

  take(key: string): DecodedChunk | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    this.unlink(node);
    return node.chunk;
  }

  peekTouch(key: string): DecodedChunk | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    this.unlink(node);
    this.link(node);
    return node.chunk;
  }

  add(key: string, chunk: DecodedChunk): void {
    this.link({ key, chunk, size: sizeOf(chunk), older: undefined, newer: undefined });
  }

  /** Drops the oldest entry; returns false when empty. */
  dropOldest(): boolean {
    const node = this.oldest;
    if (node === undefined) return false;
    this.unlink(node);
    return true;
  }

  private link(node: Node): void {
    node.older = this.newest;
    node.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = node;
    this.newest = node;
    this.oldest ??= node;
    this.nodes.set(node.key, node);
    this.bytes += node.size;
  }

  private unlink(node: Node): void {
    if (node.older !== undefined) node.older.newer = node.newer;
    else this.oldest = node.newer;
    if (node.newer !== undefined) node.newer.older = node.older;
    else this.newest = node.older;
    this.nodes.delete(node.key);
    this.bytes -= node.size;
  }
}

interface Node {
  key: string;
  chunk: DecodedChunk;
  size: number;
  older: Node | undefined;
  newer: Node | undefined;
}

/**
 * Two LRU segments (the "2Q" idea): a chunk enters on probation and moves to the protected
 * segment when it is asked for again. A one-off scan of more chunks than fit — a 24-hour
 * query over every series — then evicts only other once-seen chunks, not the working set of
 * the dashboards that ask for the same chunks again and again.
 */
export class DecodedChunkCache {
  private readonly probation = new LruSegment();
  private readonly protected = new LruSegment();
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly bytesMax: number) {}

  get(key: string): DecodedChunk | undefined {
    const hot = this.protected.peekTouch(key);
    if (hot !== undefined) {
      this.hits += 1;
      return hot;
    }
    const seen = this.probation.take(key);
    if (seen === undefined) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    this.protected.add(key, seen);
    this.trim(this.protected, this.bytesMax - Math.min(this.probation.bytes, this.bytesMax * PROBATION_SHARE));
    return seen;
  }

  set(key: string, chunk: DecodedChunk): void {
    if (sizeOf(chunk) > this.bytesMax * PROBATION_SHARE) return;
    this.delete(key);
    this.probation.add(key, chunk);
    this.trim(this.probation, Math.max(this.bytesMax * PROBATION_SHARE, this.bytesMax - this.protected.bytes));
  }

  private trim(segment: LruSegment, bytesMax: number): void {
    while (segment.bytes > bytesMax && segment.dropOldest()) this.evictions += 1;
  }

  delete(key: string): void {
    this.probation.take(key);
    this.protected.take(key);
  }

  get size(): number {
    return this.probation.size + this.protected.size;
  }

  get bytesUsed(): number {
    return this.probation.bytes + this.protected.bytes;
  }
}

const sizeOf = (chunk: DecodedChunk): number => chunk.timestampsMs.byteLength + chunk.values.byteLength + ENTRY_OVERHEAD_BYTES;
