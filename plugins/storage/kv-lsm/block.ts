/**
 * Data blocks: the unit an SSTable is read in. A block holds a run of sorted entries and
 * ends with a CRC32 of everything before it, so a bit flip in a table is detected when the
 * block is read rather than served as data.
 *
 *   block  = [entryCount u32] entry* [crc32 u32]
 *   entry  = [kind u8: 0 put, 1 tombstone][keyLength u32][valueLength u32][key][value]
 *
 * No prefix compression and no restart points (LevelDB has both): a block is decoded whole
 * into arrays of keys and values and searched by bisection. A decoded block is what the
 * block cache keeps, and it makes reverse iteration inside a block an index step.
 */
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter, ShortReadError } from './bytes.js';

const KIND_PUT = 0;
const KIND_TOMBSTONE = 1;
/** Header of an entry: kind, key length, value length. */
const ENTRY_HEADER_BYTES = 9;
/** Bytes after the entries. */
const BLOCK_TRAILER_BYTES = 4;
/** What a decoded entry costs in memory besides its bytes (two array slots, two views), for the cache's accounting. */
export const DECODED_ENTRY_OVERHEAD_BYTES = 96;

export interface DecodedBlock {
  readonly keys: Uint8Array[];
  /** null is a tombstone. */
  readonly values: (Uint8Array | null)[];
  /** Memory the decoded block holds, for the cache. */
  readonly bytes: number;
}

/** Accumulates one block's entries in key order. */
export class BlockBuilder {
  private readonly writer = new ByteWriter(8 * 1024);
  private count = 0;
  private firstKey: Uint8Array | undefined;

  constructor() {
    this.writer.u32(0);
  }

  get entries(): number {
    return this.count;
  }

  /** Encoded size if finished now. */
  get bytes(): number {
    return this.writer.size + BLOCK_TRAILER_BYTES;
  }

  /** The block's first key (a copy), for the table's sparse index. */
  get first(): Uint8Array | undefined {
    return this.firstKey;
  }

  add(key: Uint8Array, value: Uint8Array | null): void {
    if (this.count === 0) this.firstKey = Uint8Array.prototype.slice.call(key);
    this.writer.u8(value === null ? KIND_TOMBSTONE : KIND_PUT).u32(key.length).u32(value?.length ?? 0).bytes(key);
    if (value !== null) this.writer.bytes(value);
    this.count += 1;
  }

  /** The encoded block; the builder is empty afterwards. */
  finish(): Buffer {
    this.writer.patchU32(0, this.count);
    this.writer.u32(crc32(this.writer.view()));
    const out = this.writer.take();
    this.writer.u32(0);
    this.count = 0;
    this.firstKey = undefined;
    return out;
  }
}

/** Decodes a block read from disk; throws (with the reason) when it is not one. */
export function decodeBlock(buffer: Buffer): DecodedBlock {
  if (buffer.length < 4 + BLOCK_TRAILER_BYTES) throw new ShortReadError(`block of ${buffer.length} bytes`);
  const bodyEnd = buffer.length - BLOCK_TRAILER_BYTES;
  const stored = buffer.readUInt32LE(bodyEnd);
  if (crc32(buffer.subarray(0, bodyEnd)) !== stored) throw new ShortReadError('block CRC mismatch');
  const reader = new ByteReader(buffer, 0, bodyEnd);
  const count = reader.u32();
  if (count * ENTRY_HEADER_BYTES > reader.remaining) throw new ShortReadError(`block claims ${count} entries`);
  const keys = new Array<Uint8Array>(count);
  const values = new Array<Uint8Array | null>(count);
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    const keyLength = reader.u32();
    const valueLength = reader.u32();
    keys[i] = reader.bytes(keyLength);
    if (kind === KIND_TOMBSTONE) {
      if (valueLength !== 0) throw new ShortReadError('tombstone with a value');
      values[i] = null;
    } else if (kind === KIND_PUT) {
      values[i] = reader.bytes(valueLength);
    } else {
      throw new ShortReadError(`entry kind ${kind}`);
    }
  }
  if (reader.remaining !== 0) throw new ShortReadError(`${reader.remaining} bytes after the last entry`);
  return { keys, values, bytes: buffer.length + count * DECODED_ENTRY_OVERHEAD_BYTES };
}
