/**
 * Byte helpers shared by the on-disk formats: the key order, and a writer and a reader of
 * little-endian fixed-width integers. Fixed widths (u8, u32, u64) rather than varints keep
 * every format readable with a hex dump next to the doc (docs/storage/lsm.md); the space
 * this costs is a few bytes per entry.
 *
 * The reader never reads past its end: a short or malformed buffer raises `ShortReadError`,
 * which the WAL reader turns into "torn tail" and the table reader into corruption.
 */

/** Up to this common length a loop in JavaScript is faster than the call into the native `Buffer.compare` (short keys are the common case). */
const COMPARE_IN_JS_BYTES_MAX = 64;

/** The key order of the slot: unsigned byte-wise, a prefix sorts first (memcmp semantics, as `Buffer.compare`). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = a.length < b.length ? a.length : b.length;
  if (length > COMPARE_IN_JS_BYTES_MAX) return Buffer.compare(a, b);
  for (let i = 0; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Largest integer a u64 field holds here: JavaScript numbers are exact up to 2^53. */
const U64_SAFE_MAX = Number.MAX_SAFE_INTEGER;
const TWO_32 = 0x1_0000_0000;

/** Raised by `ByteReader` when the buffer ends before a field does. */
export class ShortReadError extends Error {
  override readonly name = 'ShortReadError';
}

/** A growable buffer written front to back. */
export class ByteWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initialBytes = 256) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  get size(): number {
    return this.length;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.length + bytes) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
    return this;
  }

  u64(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > U64_SAFE_MAX) throw new RangeError(`u64 field out of range: ${value}`);
    this.reserve(8);
    this.buffer.writeUInt32LE(value % TWO_32, this.length);
    this.buffer.writeUInt32LE(Math.floor(value / TWO_32), this.length + 4);
    this.length += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** u32 length, then the bytes. */
  sized(value: Uint8Array): this {
    return this.u32(value.length).bytes(value);
  }

  /** Overwrites a u32 written earlier (e.g. a count known only at the end). */
  patchU32(at: number, value: number): void {
    this.buffer.writeUInt32LE(value, at);
  }

  /** The bytes written so far (a view: valid until the next write). */
  view(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** A copy of the bytes written so far, then empty again. */
  take(): Buffer {
    const out = Buffer.from(this.view());
    this.length = 0;
    return out;
  }

  reset(): void {
    this.length = 0;
  }
}

/** Reads fields front to back from `buffer[start, end)`; slices are views into the buffer. */
export class ByteReader {
  offset: number;

  constructor(
    private readonly buffer: Buffer,
    start = 0,
    private readonly end = buffer.length,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.end) throw new ShortReadError(`need ${bytes} bytes at ${this.offset}, have ${this.end - this.offset}`);
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const low = this.buffer.readUInt32LE(this.offset);
    const high = this.buffer.readUInt32LE(this.offset + 4);
    this.offset += 8;
    const value = high * TWO_32 + low;
    if (value > U64_SAFE_MAX) throw new ShortReadError(`u64 field beyond 2^53 at ${this.offset - 8}`);
    return value;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  /** u32 length, then that many bytes. */
  sized(): Buffer {
    return this.bytes(this.u32());
  }
}
