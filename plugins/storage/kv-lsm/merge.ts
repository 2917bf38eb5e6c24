/**
 * The k-way merge under every range read and every compaction: one cursor per source
 * (memtables and tables), ranked newest first, combined by a binary heap into one cursor
 * over distinct keys. Where several sources hold a key, the newest source's entry wins and
 * the others are skipped: that is how an overwrite or a tombstone hides older data.
 *
 * Tombstones are passed through: a range read drops them, a compaction decides whether it
 * may (compaction.ts).
 */
import { compareBytes } from './bytes.js';
import type { Cursor } from './cursor.js';

export class MergeCursor implements Cursor {
  /** Heap of source ranks; the top is the smallest key (largest when reverse), the newest source among equal keys. */
  private readonly heap: number[] = [];

  /** @param sources cursors already positioned, newest source first. */
  constructor(
    private readonly sources: Cursor[],
    private readonly reverse: boolean,
  ) {
    for (let rank = 0; rank < sources.length; rank++) if (sources[rank]!.valid()) this.push(rank);
  }

  /** Whether source `a` comes before source `b`. */
  private before(a: number, b: number): boolean {
    const order = compareBytes(this.sources[a]!.key(), this.sources[b]!.key());
    if (order !== 0) return this.reverse ? order > 0 : order < 0;
    return a < b;
  }

  private push(rank: number): void {
    const heap = this.heap;
    let at = heap.push(rank) - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.before(heap[at]!, heap[parent]!)) break;
      [heap[at], heap[parent]] = [heap[parent]!, heap[at]!];
      at = parent;
    }
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let at = 0;
      for (;;) {
        const left = 2 * at + 1;
        const right = left + 1;
        let smallest = at;
        if (left < heap.length && this.before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === at) break;
        [heap[at], heap[smallest]] = [heap[smallest]!, heap[at]!];
        at = smallest;
      }
    }
    return top;
  }

  valid(): boolean {
    return this.heap.length > 0;
  }

  key(): Uint8Array {
    return this.sources[this.heap[0]!]!.key();
  }

  value(): Uint8Array | null {
    return this.sources[this.heap[0]!]!.value();
  }

  /** Advances every source that is on the current key. */
  next(): void | Promise<void> {
    const key = this.key();
    const moved: number[] = [];
    let waits: Promise<void>[] | undefined;
    while (this.heap.length > 0 && compareBytes(this.sources[this.heap[0]!]!.key(), key) === 0) {
      const rank = this.pop();
      moved.push(rank);
      const wait = this.sources[rank]!.next();
      if (wait) (waits ??= []).push(wait);
    }
    if (waits === undefined) {
      this.reinsert(moved);
      return undefined;
    }
    return Promise.all(waits).then(() => this.reinsert(moved));
  }

  private reinsert(ranks: number[]): void {
    for (const rank of ranks) if (this.sources[rank]!.valid()) this.push(rank);
  }
}
