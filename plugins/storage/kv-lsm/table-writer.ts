/**
 * Writes one SSTable front to back from entries given in ascending key order (a flush or a
 * compaction): blocks are cut when they reach the block size, their first keys go to the
 * sparse index, every key goes to the bloom filter, and the footer is written last, then
 * the file is fsynced. Until the manifest names the table it is not part of the database;
 * a crash before that leaves an orphan that the next open deletes.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { compareBytes } from './bytes.js';
import { BlockBuilder } from './block.js';
import { BloomBuilder } from './bloom.js';
import { encodeFooter, encodeIndex, type TableIndex } from './table-format.js';
import { TABLE_WRITE_BUFFER_BYTES } from './limits.js';
import { assert } from './errors.js';
import { writeAll } from './files.js';

export interface WrittenTable {
  number: number;
  path: string;
  bytes: number;
  entries: number;
  tombstones: number;
}

export class TableWriter {
  private readonly block = new BlockBuilder();
  private readonly bloom: BloomBuilder;
  private readonly index: TableIndex = { offsets: [], lengths: [], firstKeys: [], smallest: new Uint8Array(0), largest: new Uint8Array(0), entries: 0, tombstones: 0 };
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** File offset of the next block. */
  private offset = 0;
  private lastKey: Uint8Array | undefined;

  private constructor(
    private readonly handle: FileHandle,
    readonly number: number,
    readonly path: string,
    private readonly blockBytes: number,
    bloomBitsPerKey: number,
  ) {
    this.bloom = new BloomBuilder(bloomBitsPerKey);
  }

  /** Creates the file; it must not exist (table numbers are never reused). */
  static async create(path: string, number: number, blockBytes: number, bloomBitsPerKey: number): Promise<TableWriter> {
    return new TableWriter(await open(path, 'wx'), number, path, blockBytes, bloomBitsPerKey);
  }

  get entries(): number {
    return this.index.entries;
  }

  /**
   * Adds an entry; keys strictly ascending. The key and value are copied into the block at
   * once, so views into other buffers are fine. Returns a promise when it hands buffered blocks to the file.
   */
  add(key: Uint8Array, value: Uint8Array | null): void | Promise<void> {
    assert(this.lastKey === undefined || compareBytes(this.lastKey, key) < 0, 'table keys must be strictly ascending');
    if (this.index.entries === 0) this.index.smallest = Uint8Array.prototype.slice.call(key);
    this.lastKey = key;
    this.block.add(key, value);
    this.bloom.add(key);
    this.index.entries += 1;
    if (value === null) this.index.tombstones += 1;
    if (this.block.bytes >= this.blockBytes) {
      this.cutBlock();
      if (this.pendingBytes >= TABLE_WRITE_BUFFER_BYTES) return this.writePending();
    }
    return undefined;
  }

  private cutBlock(): void {
    const first = this.block.first!;
    const encoded = this.block.finish();
    this.index.offsets.push(this.offset);
    this.index.lengths.push(encoded.length);
    this.index.firstKeys.push(first);
    this.offset += encoded.length;
    this.pending.push(encoded);
    this.pendingBytes += encoded.length;
  }

  private async writePending(): Promise<void> {
    const buffers = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await writeAll(this.handle, buffers);
  }

  /** Writes the last block, the bloom filter, the index and the footer; fsyncs and closes. At least one entry must have been added. */
  async finish(): Promise<WrittenTable> {
    assert(this.index.entries > 0 && this.lastKey !== undefined, 'a table has at least one entry');
    if (this.block.entries > 0) this.cutBlock();
    this.index.largest = Uint8Array.prototype.slice.call(this.lastKey);
    const bloom = this.bloom.finish();
    const bloomOffset = this.offset;
    const index = encodeIndex(this.index);
    const indexOffset = bloomOffset + bloom.length;
    const footer = encodeFooter({ bloomOffset, bloomLength: bloom.length, bloomCrc: crc32(bloom), indexOffset, indexLength: index.length, indexCrc: crc32(index) });
    this.pending.push(bloom, index, footer);
    await this.writePending();
    await this.handle.sync();
    await this.handle.close();
    return { number: this.number, path: this.path, bytes: indexOffset + index.length + footer.length, entries: this.index.entries, tombstones: this.index.tombstones };
  }

  /** Gives up: closes and deletes the partial file. */
  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await unlink(this.path).catch(() => undefined);
  }
}
