/**
 * The memtable: the newest writes, in memory and sorted, until it is full and flushed to an
 * SSTable. Every operation is a new version tagged with a sequence number (assigned in
 * commit order, kept in memory only), so reads at a snapshot's sequence number see exactly
 * the writes committed before it, even while the memtable keeps taking writes.
 *
 * A memtable also remembers the WAL files that hold its writes: once it is in a table, those
 * files are no longer needed and are deleted.
 *
 * Its size counts keys, values and a fixed per-node overhead; the engine freezes it once that
 * passes the `memtableBytes` option.
 */
import { SkipList, type SkipNode } from './skiplist.js';
import { aboveLower, belowUpper, type Bounds, type Cursor } from './cursor.js';
import { compareBytes } from './bytes.js';
import { MEMTABLE_NODE_OVERHEAD_BYTES } from './limits.js';

/** Older versions a forward cursor steps over one by one before it seeks past them. */
const OLDER_VERSIONS_WALKED_MAX = 8;

/** What a lookup found: a value, or a tombstone (value null). Undefined from `get` means "not here, look in older data". */
export interface Found {
  value: Uint8Array | null;
}

export class Memtable {
  private readonly list = new SkipList();
  /** Bytes of keys, values and node overhead. */
  bytes = 0;

  /** @param walNumbers the WAL files whose records are in this memtable, oldest first. */
  constructor(readonly walNumbers: number[]) {}

  get versions(): number {
    return this.list.count;
  }

  /** Adds a version. The memtable keeps `key` and `value` as given: the caller hands over bytes nobody else changes. */
  put(key: Uint8Array, seq: number, value: Uint8Array | null): void {
    this.list.insert(key, seq, value);
    this.bytes += key.length + (value?.length ?? 0) + MEMTABLE_NODE_OVERHEAD_BYTES;
  }

  /** The newest version of `key` with sequence ≤ seq. */
  get(key: Uint8Array, seq: number): Found | undefined {
    const node = this.list.seekVisible(key, seq);
    if (node === null || compareBytes(node.key, key) !== 0) return undefined;
    return { value: node.value };
  }

  /** A cursor over the newest version (≤ seq) of each key within bounds; tombstones included. */
  cursor(seq: number, bounds: Bounds, reverse: boolean): Cursor {
    return reverse ? new ReverseCursor(this.list, seq, bounds) : new ForwardCursor(this.list, seq, bounds);
  }
}

/** What both directions share: the node a cursor stands on. */
abstract class NodeCursor implements Cursor {
  protected node: SkipNode | null = null;

  valid(): boolean {
    return this.node !== null;
  }

  key(): Uint8Array {
    return this.node!.key;
  }

  value(): Uint8Array | null {
    return this.node!.value;
  }

  abstract next(): void;
}

class ForwardCursor extends NodeCursor {
  constructor(
    private readonly list: SkipList,
    private readonly seq: number,
    private readonly bounds: Bounds,
  ) {
    super();
    const lower = bounds.lower;
    let node = lower === undefined ? list.first() : lower.inclusive ? list.seekVisible(lower.key, seq) : list.seekAfter(lower.key);
    node = this.settle(node);
    this.node = node;
  }

  /** From the first node of some key (or a visible version of it), the first visible version at or after it; null past the upper bound. */
  private settle(start: SkipNode | null): SkipNode | null {
    let node = start;
    while (node !== null) {
      if (!belowUpper(node.key, this.bounds.upper)) return null;
      if (node.seq <= this.seq) return node;
      // Versions of one key run newest first: the next node is this key's older version or the next key.
      node = node.next[0] ?? null;
    }
    return null;
  }

  next(): void {
    // Walk past a few older versions of the current key; a key overwritten many times is left by a seek instead, O(log n) rather than O(versions).
    const key = this.node!.key;
    let node = this.node!.next[0] ?? null;
    for (let steps = 0; node !== null && compareBytes(node.key, key) === 0; steps++) {
      if (steps === OLDER_VERSIONS_WALKED_MAX) {
        node = this.list.seekAfter(key);
        break;
      }
      node = node.next[0] ?? null;
    }
    this.node = this.settle(node);
  }
}


class ReverseCursor extends NodeCursor {
  constructor(
    private readonly list: SkipList,
    private readonly seq: number,
    private readonly bounds: Bounds,
  ) {
    super();
    const upper = bounds.upper;
    this.node = this.settle(upper === undefined ? list.last() : list.seekLast(upper.key, upper.inclusive));
  }

  /** From any node of some key, that key's newest visible version; if it has none, the same for earlier keys. Null below the lower bound. */
  private settle(start: SkipNode | null): SkipNode | null {
    let node = start;
    while (node !== null) {
      if (!aboveLower(node.key, this.bounds.lower)) return null;
      const visible = this.list.seekVisible(node.key, this.seq);
      if (visible !== null && compareBytes(visible.key, node.key) === 0) return visible;
      node = this.list.seekLast(node.key, false);
    }
    return null;
  }

  next(): void {
    this.node = this.settle(this.list.seekLast(this.node!.key, false));
  }
}
