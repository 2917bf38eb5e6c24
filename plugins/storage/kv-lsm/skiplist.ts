/**
 * The memtable's sorted structure: a skip list of versions ordered by (key ascending,
 * sequence number descending). Every write inserts a new node, so a key overwritten after a
 * snapshot keeps its older version for that snapshot; `seekVisible(key, seq)` lands on the
 * newest version a reader at `seq` may see.
 *
 * Why a skip list: inserts and seeks are O(log n) without rebalancing, and an insert only
 * links a new node in front of existing ones, so a cursor parked on a node stays valid while
 * writes go on (the JavaScript event loop interleaves them between its steps). There are no
 * back links: reverse iteration seeks "last node before key" again, O(log n) per step, as
 * LevelDB's memtable does.
 *
 * Heights come from a fixed-seed xorshift generator, so a run is reproducible.
 */
import { compareBytes } from './bytes.js';
import { SKIPLIST_HEIGHT_MAX } from './limits.js';

/** One version of a key. `value` null is a tombstone (a delete). */
export interface SkipNode {
  readonly key: Uint8Array;
  readonly seq: number;
  readonly value: Uint8Array | null;
  readonly next: (SkipNode | null)[];
}

/** One level up with probability 1/4, as in LevelDB. */
const BRANCHING = 4;
const RANDOM_SEED = 0x9e3779b9;

export class SkipList {
  private readonly head: SkipNode = { key: new Uint8Array(0), seq: Infinity, value: null, next: new Array<SkipNode | null>(SKIPLIST_HEIGHT_MAX).fill(null) };
  private height = 1;
  private random = RANDOM_SEED;
  /** Nodes (versions) in the list. */
  count = 0;
  /** Scratch space of `insert` (the predecessor at each level), reused: one insert at a time, synchronously. */
  private readonly update = new Array<SkipNode>(SKIPLIST_HEIGHT_MAX);

  private randomHeight(): number {
    let height = 1;
    for (;;) {
      // xorshift32
      this.random ^= this.random << 13;
      this.random ^= this.random >>> 17;
      this.random ^= this.random << 5;
      if ((this.random >>> 0) % BRANCHING !== 0 || height >= SKIPLIST_HEIGHT_MAX) return height;
      height += 1;
    }
  }

  /** Whether `node` sorts before the version (key, seq). */
  private static before(node: SkipNode, key: Uint8Array, seq: number): boolean {
    const order = compareBytes(node.key, key);
    return order < 0 || (order === 0 && node.seq > seq);
  }

  /** Inserts a version; (key, seq) must be new (sequence numbers are unique). */
  insert(key: Uint8Array, seq: number, value: Uint8Array | null): void {
    const update = this.update;
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (let next = node.next[level]; next != null && SkipList.before(next, key, seq); next = node.next[level]) node = next;
      update[level] = node;
    }
    const height = this.randomHeight();
    for (let level = this.height; level < height; level++) update[level] = this.head;
    this.height = Math.max(this.height, height);
    const inserted: SkipNode = { key, seq, value, next: new Array<SkipNode | null>(height) };
    for (let level = 0; level < height; level++) {
      inserted.next[level] = update[level]!.next[level] ?? null;
      update[level]!.next[level] = inserted;
    }
    this.count += 1;
  }

  /** First node at or after (key, seq): the newest version of `key` with sequence ≤ seq, if `key` has one; else the next key's first node. */
  seekVisible(key: Uint8Array, seq: number): SkipNode | null {
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (let next = node.next[level]; next != null && SkipList.before(next, key, seq); next = node.next[level]) node = next;
    }
    return node.next[0] ?? null;
  }

  /** First node of the first key above `key` (strictly greater). */
  seekAfter(key: Uint8Array): SkipNode | null {
    return this.seekVisible(key, -Infinity);
  }

  /** Last node whose key is below `key` (or at most `key` when `inclusive`); null when there is none. */
  seekLast(key: Uint8Array, inclusive: boolean): SkipNode | null {
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (let next = node.next[level]; next != null; next = node.next[level]) {
        const order = compareBytes(next.key, key);
        if (order > 0 || (order === 0 && !inclusive)) break;
        node = next;
      }
    }
    return node === this.head ? null : node;
  }

  first(): SkipNode | null {
    return this.head.next[0] ?? null;
  }

  /** The last node of the list (the oldest version of the greatest key). */
  last(): SkipNode | null {
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (let next = node.next[level]; next != null; next = node.next[level]) node = next;
    }
    return node === this.head ? null : node;
  }
}
