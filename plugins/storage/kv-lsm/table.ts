/**
 * An open SSTable: its file handle, its sparse index and bloom filter in memory, and its
 * blocks read on demand with positional reads.
 *
 * A point read goes key range → bloom filter → index bisection → one block (from the cache
 * or one read) → bisection in the block. A range read is a cursor that reads runs of
 * consecutive blocks with one read (readahead) in either direction.
 *
 * Tables are shared by the engine's current table set and by every snapshot that still sees
 * them; `refs` counts those holders. A table dropped by compaction is deleted from disk only
 * when its last holder lets go (see versions.ts), so an open snapshot keeps reading it.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { compareBytes } from './bytes.js';
import { decodeBlock, type DecodedBlock } from './block.js';
import { BloomFilter } from './bloom.js';
import type { BlockCache } from './block-cache.js';
import { aboveLower, belowUpper, overlaps, EMPTY_CURSOR, type Bounds, type Cursor } from './cursor.js';
import { decodeFooter, decodeIndex, FOOTER_BYTES, type TableIndex } from './table-format.js';
import { KvCorruptionError } from './errors.js';
import type { Found } from './memtable.js';

/** Index of the first key ≥ `key` (or > `key` when `after`) in a sorted array. */
function bisect(keys: Uint8Array[], key: Uint8Array, after: boolean): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const order = compareBytes(keys[middle]!, key);
    if (order < 0 || (after && order === 0)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Counters the engine reports in its stats, shared by its tables. */
export interface TableCounters {
  /** Point reads a bloom filter answered "certainly not here" (no block read). */
  bloomNegatives: number;
  /** Block reads from disk (runs of blocks count once). */
  blockReads: number;
}

export class Table {
  /** Holders: the current table set and each snapshot or iteration that sees this table. */
  refs = 0;
  /** Set once compaction has replaced it: deleted when `refs` reaches 0. */
  obsolete = false;

  private constructor(
    readonly number: number,
    readonly path: string,
    readonly bytes: number,
    private readonly handle: FileHandle,
    private readonly index: TableIndex,
    private readonly bloom: BloomFilter,
    private readonly cache: BlockCache,
    private readonly counters: TableCounters,
  ) {}

  get smallest(): Uint8Array {
    return this.index.smallest;
  }
  get largest(): Uint8Array {
    return this.index.largest;
  }
  get entries(): number {
    return this.index.entries;
  }
  get tombstones(): number {
    return this.index.tombstones;
  }
  get blocks(): number {
    return this.index.offsets.length;
  }

  /** Opens a table and checks its footer, index and bloom filter; a table that does not check out is `KvCorruptionError`. */
  static async open(path: string, number: number, cache: BlockCache, counters: TableCounters): Promise<Table> {
    const handle = await open(path, 'r');
    try {
      const bytes = (await handle.stat()).size;
      const fail = (why: string, cause?: unknown): KvCorruptionError => new KvCorruptionError(path, why, { cause });
      if (bytes < FOOTER_BYTES) throw fail(`${bytes} bytes, shorter than a footer`);
      const footer = decodeFooter(await readAt(handle, bytes - FOOTER_BYTES, FOOTER_BYTES));
      if (typeof footer === 'string') throw fail(footer);
      if (footer.indexOffset + footer.indexLength !== bytes - FOOTER_BYTES || footer.bloomOffset + footer.bloomLength !== footer.indexOffset) throw fail('footer offsets do not tile the file');
      const indexBytes = await readAt(handle, footer.indexOffset, footer.indexLength);
      const bloomBytes = await readAt(handle, footer.bloomOffset, footer.bloomLength);
      if (crc32(indexBytes) !== footer.indexCrc) throw fail('index CRC mismatch');
      if (crc32(bloomBytes) !== footer.bloomCrc) throw fail('bloom filter CRC mismatch');
      let index: TableIndex;
      let bloom: BloomFilter;
      try {
        index = decodeIndex(indexBytes);
        bloom = BloomFilter.decode(bloomBytes);
      } catch (error) {
        throw fail('index or bloom filter does not decode', error);
      }
      if (index.offsets.length === 0 || index.entries === 0) throw fail('table without entries');
      return new Table(number, path, bytes, handle, index, bloom, cache, counters);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Whether this table can hold `key`: inside its key range and not ruled out by its bloom filter. */
  mayContain(key: Uint8Array): boolean {
    if (compareBytes(key, this.index.smallest) < 0 || compareBytes(key, this.index.largest) > 0) return false;
    return this.bloom.mayContain(key);
  }

  /** The entry for `key` (a tombstone has value null), or undefined when the table does not have it. */
  async get(key: Uint8Array): Promise<Found | undefined> {
    if (compareBytes(key, this.index.smallest) < 0 || compareBytes(key, this.index.largest) > 0) return undefined;
    if (!this.bloom.mayContain(key)) {
      this.counters.bloomNegatives += 1;
      return undefined;
    }
    const blockIndex = this.blockFor(key);
    if (blockIndex < 0) return undefined;
    let block = this.cache.get(this.number, blockIndex);
    if (block === undefined) {
      block = await this.readBlock(blockIndex);
      this.cache.set(this.number, blockIndex, block);
    }
    const at = bisect(block.keys, key, false);
    if (at === block.keys.length || compareBytes(block.keys[at]!, key) !== 0) return undefined;
    return { value: block.values[at]! };
  }

  /** The block whose key range would hold `key`: the last one whose first key is ≤ key; -1 when key is below the table. */
  private blockFor(key: Uint8Array): number {
    return bisect(this.index.firstKeys, key, true) - 1;
  }

  private async readBlock(blockIndex: number): Promise<DecodedBlock> {
    this.counters.blockReads += 1;
    return this.decode(blockIndex, await readAt(this.handle, this.index.offsets[blockIndex]!, this.index.lengths[blockIndex]!));
  }

  private decode(blockIndex: number, bytes: Buffer): DecodedBlock {
    try {
      return decodeBlock(bytes);
    } catch (error) {
      throw new KvCorruptionError(this.path, `block ${blockIndex}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Decoded blocks from `first` towards `last` (inclusive, either order), read with one read
   * of at most `readaheadBytes` (always at least one block). Cached blocks are taken from the cache.
   */
  async readRun(first: number, last: number, readaheadBytes: number): Promise<Map<number, DecodedBlock>> {
    const step = last >= first ? 1 : -1;
    const run = new Map<number, DecodedBlock>();
    const cached = this.cache.get(this.number, first);
    if (cached !== undefined) return run.set(first, cached);
    let end = first;
    let bytes = this.index.lengths[first]!;
    while (end !== last && bytes + this.index.lengths[end + step]! <= readaheadBytes) {
      end += step;
      bytes += this.index.lengths[end]!;
    }
    const low = Math.min(first, end);
    const high = Math.max(first, end);
    const start = this.index.offsets[low]!;
    this.counters.blockReads += 1;
    const buffer = await readAt(this.handle, start, this.index.offsets[high]! + this.index.lengths[high]! - start);
    for (let i = low; i <= high; i++) {
      const from = this.index.offsets[i]! - start;
      run.set(i, this.decode(i, buffer.subarray(from, from + this.index.lengths[i]!)));
    }
    return run;
  }

  /** A cursor over this table's entries within bounds (tombstones included). */
  async cursor(bounds: Bounds, reverse: boolean, readaheadBytes: number): Promise<Cursor> {
    if (!overlaps(this.index.smallest, this.index.largest, bounds)) return EMPTY_CURSOR;
    const cursor = new TableCursor(this, bounds, reverse, readaheadBytes);
    await cursor.seek(this.index.firstKeys);
    return cursor;
  }

  /** Closes the file handle (waits for reads in flight). */
  async close(): Promise<void> {
    await this.handle.close();
  }
}

class TableCursor implements Cursor {
  private run = new Map<number, DecodedBlock>();
  private blockIndex = -1;
  private block: DecodedBlock | undefined;
  private position = 0;
  private done = false;

  constructor(
    private readonly table: Table,
    private readonly bounds: Bounds,
    private readonly reverse: boolean,
    private readonly readaheadBytes: number,
  ) {}

  /** Positions on the first entry in range, in the cursor's direction. */
  async seek(firstKeys: Uint8Array[]): Promise<void> {
    const last = firstKeys.length - 1;
    if (!this.reverse) {
      const lower = this.bounds.lower;
      const start = lower === undefined ? 0 : Math.max(0, bisect(firstKeys, lower.key, true) - 1);
      await this.enter(start);
      if (lower !== undefined) this.position = bisect(this.block!.keys, lower.key, !lower.inclusive);
    } else {
      const upper = this.bounds.upper;
      const start = upper === undefined ? last : bisect(firstKeys, upper.key, upper.inclusive) - 1;
      if (start < 0) {
        this.done = true;
        return;
      }
      await this.enter(start);
      this.position = upper === undefined ? this.block!.keys.length - 1 : bisect(this.block!.keys, upper.key, upper.inclusive) - 1;
    }
    const wait = this.settle();
    if (wait) await wait;
  }

  private async enter(blockIndex: number): Promise<void> {
    let block = this.run.get(blockIndex);
    if (block === undefined) {
      this.run = await this.table.readRun(blockIndex, this.reverse ? 0 : this.table.blocks - 1, this.readaheadBytes);
      block = this.run.get(blockIndex)!;
    }
    this.run.delete(blockIndex);
    this.blockIndex = blockIndex;
    this.block = block;
    this.position = this.reverse ? block.keys.length - 1 : 0;
  }

  /** Moves into the neighbouring block when the position left the current one; ends the cursor past the bounds. */
  private settle(): void | Promise<void> {
    const block = this.block!;
    if (this.position < 0 || this.position >= block.keys.length) {
      const nextBlock = this.blockIndex + (this.reverse ? -1 : 1);
      if (nextBlock < 0 || nextBlock >= this.table.blocks) {
        this.done = true;
        return undefined;
      }
      return this.enter(nextBlock).then(() => this.settle());
    }
    const key = block.keys[this.position]!;
    if (this.reverse ? !aboveLower(key, this.bounds.lower) : !belowUpper(key, this.bounds.upper)) this.done = true;
    return undefined;
  }

  valid(): boolean {
    return !this.done;
  }

  key(): Uint8Array {
    return this.block!.keys[this.position]!;
  }

  value(): Uint8Array | null {
    return this.block!.values[this.position]!;
  }

  next(): void | Promise<void> {
    this.position += this.reverse ? -1 : 1;
    return this.settle();
  }
}

/** Reads exactly `length` bytes at `position`; a file shorter than that is corruption. */
async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new KvCorruptionError('table', `file ends at ${position + filled}, expected ${length - filled} more bytes`);
    filled += bytesRead;
  }
  return buffer;
}
