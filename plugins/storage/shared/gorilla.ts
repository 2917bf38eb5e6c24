/**
 * The Gorilla chunk (Pelkonen et al., "Gorilla: A Fast, Scalable, In-Memory Time Series
 * Database", VLDB 2015) with millisecond timestamps as Prometheus's XOR chunk adapts it: one
 * series' samples as delta-of-delta timestamps and XOR-ed float64 values. The layout below is
 * that of the data of Prometheus's XOR chunk (encoding 1, tsdb/chunkenc/xor.go, read for its
 * facts; not run against Prometheus here), limited to timestamps ≥ 0. docs/storage/chunks.md
 * has it with a worked example.
 *
 *   chunk     := count:16 · sample₀ · sample₁ · … · sampleₙ₋₁ · zero bits up to a byte boundary
 *   count     := the number of samples, unsigned big-endian (at most CHUNK_SAMPLES_MAX)
 *   sample₀   := t₀ as a varint (zig-zag, then 7 bits a byte, low group first, top bit = more) ·
 *                the 64 bits of v₀
 *   sample₁   := Δ₁ = t₁ − t₀ as a uvarint · value₁
 *   sampleᵢ   := timeᵢ · valueᵢ for i ≥ 2, where D = Δᵢ − Δᵢ₋₁ (the delta of deltas) and
 *     timeᵢ   := '0'                 D = 0
 *              | '10'   · D:14       −8 191 ≤ D ≤ 8 192
 *              | '110'  · D:17       −65 535 ≤ D ≤ 65 536
 *              | '1110' · D:20       −524 287 ≤ D ≤ 524 288
 *              | '1111' · D:64       otherwise
 *     (D:n is D in n-bit two's complement; a reader subtracts 2ⁿ from a field above 2ⁿ⁻¹.)
 *   valueᵢ    := with X = bits(vᵢ) XOR bits(vᵢ₋₁), and (L, T) the window of the last '11':
 *                '0'                              X = 0
 *              | '10' · the 64 − L − T bits of X between its top L and bottom T bits
 *                                                 X has at least L leading and T trailing zeros
 *              | '11' · L′:5 · S:6 · S bits of X  otherwise; the new window is L′ = min(leading
 *                zeros of X, 31) (5 bits hold no more), T′ = trailing zeros of X, and
 *                S = 64 − L′ − T′ significant bits, written as S mod 64 (S = 64 as 0).
 *
 * Bits are written most significant first. sample₀ begins at byte 2 and is 64 bits plus whole
 * bytes, so both varints are byte-aligned. Timestamps are integers 0 ≤ t ≤ 2⁵³ − 1 (the
 * integers a JS number holds exactly), so a varint takes 1 to 8 bytes and D fits 64 bits.
 *
 * Why these timestamp buckets and not the paper's (7, 9, 12 bits, then 32): the paper's are
 * sized for seconds, where ±64 covers a jittery 60 s interval. In milliseconds a few ms of
 * scrape jitter already costs 4–5 bits, a changed or missed 15 s scrape moves D by 15 000 and
 * a gap of 25 days overflows 32 bits. Prometheus's buckets give 14 bits to jitter and interval
 * changes up to ±8 s, 17 bits to a missed scrape up to ±65 s, 20 bits to gaps up to ±8.7 min
 * and 64 bits to anything, and keeping them makes the chunk readable by Prometheus tools.
 * Why the zig-zag varint for t₀ although t₀ ≥ 0: it is what Prometheus writes, and it costs
 * nothing here (a millisecond timestamp of today is 41 bits, 6 bytes either way).
 *
 * Speed: no BigInt anywhere. A float64 is handled as its two 32-bit halves (through one shared
 * Float64Array/Uint32Array pair), leading and trailing zeros come from Math.clz32, and the bit
 * stream is 32-bit words (bitstream.ts). Decoded values are written as their two halves straight
 * into the caller's Float64Array, so NaN payloads, −0, ±∞ and subnormals keep every bit.
 * Callers should keep values in typed arrays too: V8 sets the quiet bit of a signalling NaN
 * (Prometheus's staleness marker 0x7ff0000000000002 is one) stored in a plain Array of numbers.
 */
import { BitWriter, loadWords, peek32, readBits } from './bitstream.js';

/** Samples a chunk holds at most: the 16-bit count field. Prometheus cuts its chunks at 120. */
export const CHUNK_SAMPLES_MAX = 65_535;
/** The largest timestamp a chunk holds (milliseconds): the largest integer a number holds exactly. */
export const CHUNK_TIMESTAMP_MS_MAX = Number.MAX_SAFE_INTEGER;
/** Bytes of the header (the sample count). */
export const CHUNK_HEADER_BYTES = 2;

/** Base class of the errors this codec throws. */
export class ChunkError extends Error {
  override name = 'ChunkError';
}
/** Thrown by append when a timestamp is smaller than the previous one. */
export class ChunkOrderError extends ChunkError {
  override name = 'ChunkOrderError';
}
/** Thrown by append when a timestamp is not an integer in 0 … CHUNK_TIMESTAMP_MS_MAX. */
export class ChunkTimestampError extends ChunkError {
  override name = 'ChunkTimestampError';
}
/** Thrown by append when the chunk already holds CHUNK_SAMPLES_MAX samples. */
export class ChunkFullError extends ChunkError {
  override name = 'ChunkFullError';
}
/**
 * Thrown by decoding and resume when bytes are not a chunk: too short for their count, a field
 * out of range, non-zero padding. A chunk has no checksum: a flipped bit that still makes a
 * well-formed chunk decodes to wrong samples; the storage layer's checksum catches that.
 */
export class ChunkCorruptError extends ChunkError {
  override name = 'ChunkCorruptError';
}

/** Index of the high and low 32-bit halves of a float64 in a Uint32Array view of it. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HIGH = LITTLE_ENDIAN ? 1 : 0;
const LOW = 1 - HIGH;
const scratchFloat = new Float64Array(1);
const scratchHalves = new Uint32Array(scratchFloat.buffer);

/** Leading-zero count meaning "no window yet": no real count reaches it, so '10' is never chosen. */
const NO_WINDOW = 255;
/** Bits one append writes at most: '1111' · 64 bits, then '11' · 5 · 6 · 64 bits = 145. */
const APPEND_BITS_MAX = 160;
const TWO_POW_32 = 4_294_967_296;

function trailingZeros32(word: number): number {
  return 31 - Math.clz32(word & -word);
}

/**
 * Appends samples to one chunk, in time order. Not safe for concurrent use; cheap to keep one
 * per series head. `bytes()` may be called at any time (e.g. for a checkpoint) and `resume`
 * continues from what it returned.
 */
export class ChunkAppender {
  private writer: BitWriter;
  private sampleCount = 0;
  private firstMs = 0;
  private lastMs = 0;
  private deltaMs = 0;
  private valueHigh = 0;
  private valueLow = 0;
  private leadingZeros = NO_WINDOW;
  private trailingZeros = 0;

  constructor() {
    this.writer = new BitWriter();
    this.writer.reserve(16);
    this.writer.write(0, 16);
  }

  /**
   * Restores the appender that had written `bytes` (from `bytes()`), so that appending more
   * samples gives exactly the bytes one appender would have given for all of them. Throws
   * ChunkCorruptError when `bytes` is not a chunk. `bytes` is copied, not kept.
   */
  static resume(bytes: Uint8Array): ChunkAppender {
    const count = chunkSampleCount(bytes);
    const timestampsMs = new Float64Array(count);
    decodeSamples(bytes, 0, CHUNK_TIMESTAMP_MS_MAX, timestampsMs, new Uint32Array(2 * count), 0);
    const end = decodeEnd;
    const byteLength = (end.bitPosition + 7) >>> 3;
    // Bytes past the last sample may only be zero. Prometheus before 3.0 sometimes wrote one
    // such byte; dropping it gives the bytes this encoder would have written.
    for (let at = byteLength; at < bytes.length; at++) {
      if (bytes[at] !== 0) throw new ChunkCorruptError(`chunk has data after its ${count} samples, at byte ${at}`);
    }
    const appender = new ChunkAppender();
    try {
      appender.writer = BitWriter.fromBytes(bytes.subarray(0, byteLength), end.bitPosition);
    } catch (error) {
      throw new ChunkCorruptError('chunk padding bits are not zero', { cause: error });
    }
    appender.sampleCount = count;
    appender.firstMs = timestampsMs[0] ?? 0;
    appender.lastMs = timestampsMs[count - 1] ?? 0;
    appender.deltaMs = end.deltaMs;
    appender.valueHigh = end.valueHigh;
    appender.valueLow = end.valueLow;
    appender.leadingZeros = end.leadingZeros;
    appender.trailingZeros = end.trailingZeros;
    return appender;
  }

  /** Samples appended. */
  get count(): number {
    return this.sampleCount;
  }
  /** Timestamp of the first sample (ms), undefined while the chunk is empty. */
  get firstTimestampMs(): number | undefined {
    return this.sampleCount === 0 ? undefined : this.firstMs;
  }
  /** Timestamp of the last sample (ms), undefined while the chunk is empty. */
  get lastTimestampMs(): number | undefined {
    return this.sampleCount === 0 ? undefined : this.lastMs;
  }
  /** Value of the last sample, bit for bit; undefined (not NaN, which is a value) while empty. */
  get lastValue(): number | undefined {
    if (this.sampleCount === 0) return undefined;
    scratchHalves[HIGH] = this.valueHigh;
    scratchHalves[LOW] = this.valueLow;
    return scratchFloat[0];
  }
  /** Bytes the chunk takes now (what `bytes()` would return). */
  get byteLength(): number {
    return this.writer.byteLength;
  }

  /** The chunk so far: a copy the caller owns; later appends do not change it. */
  bytes(): Uint8Array {
    // The count is written here rather than on every append: the words keep a stale count.
    const bytes = this.writer.toBytes();
    bytes[0] = this.sampleCount >>> 8;
    bytes[1] = this.sampleCount & 0xff;
    return bytes;
  }

  /**
   * Appends one sample. `timestampMs` MUST be an integer 0 … CHUNK_TIMESTAMP_MS_MAX and at least
   * the previous one (equal is allowed); any float64 is a value, kept bit for bit. Throws
   * ChunkTimestampError, ChunkOrderError or ChunkFullError and leaves the chunk unchanged.
   */
  append(timestampMs: number, value: number): void {
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) {
      throw new ChunkTimestampError(`timestamp ${timestampMs} is not an integer number of milliseconds in 0 … ${CHUNK_TIMESTAMP_MS_MAX}`);
    }
    const count = this.sampleCount;
    if (count !== 0 && timestampMs < this.lastMs) {
      throw new ChunkOrderError(`timestamp ${timestampMs} ms is before the chunk's last timestamp ${this.lastMs} ms`);
    }
    if (count === CHUNK_SAMPLES_MAX) throw new ChunkFullError(`chunk already holds ${CHUNK_SAMPLES_MAX} samples`);
    scratchFloat[0] = value;
    const high = scratchHalves[HIGH]!;
    const low = scratchHalves[LOW]!;
    const writer = this.writer;
    writer.reserve(APPEND_BITS_MAX);
    if (count === 0) {
      writeUvarint(writer, timestampMs * 2);
      writer.write(high, 32);
      writer.write(low, 32);
      this.firstMs = timestampMs;
    } else {
      const deltaMs = timestampMs - this.lastMs;
      if (count === 1) {
        writeUvarint(writer, deltaMs);
      } else {
        const dod = deltaMs - this.deltaMs;
        if (dod === 0) writer.write(0, 1);
        else if (dod >= -8_191 && dod <= 8_192) writer.write((0b10 << 14) | (dod & 0x3fff), 16);
        else if (dod >= -65_535 && dod <= 65_536) writer.write((0b110 << 17) | (dod & 0x1ffff), 20);
        else if (dod >= -524_287 && dod <= 524_288) writer.write((0b1110 << 20) | (dod & 0xfffff), 24);
        else {
          const dodHigh = Math.floor(dod / TWO_POW_32);
          writer.write(0b1111, 4);
          writer.write(dodHigh, 32);
          writer.write(dod - dodHigh * TWO_POW_32, 32);
        }
      }
      this.deltaMs = deltaMs;
      this.writeValue(high, low);
    }
    this.valueHigh = high;
    this.valueLow = low;
    this.lastMs = timestampMs;
    this.sampleCount = count + 1;
  }

  private writeValue(high: number, low: number): void {
    const writer = this.writer;
    const xorHigh = high ^ this.valueHigh;
    const xorLow = low ^ this.valueLow;
    if ((xorHigh | xorLow) === 0) {
      writer.write(0, 1);
      return;
    }
    const leading = xorHigh !== 0 ? Math.clz32(xorHigh) : 32 + Math.clz32(xorLow);
    const trailing = xorLow !== 0 ? trailingZeros32(xorLow) : 32 + trailingZeros32(xorHigh);
    let windowLeading = this.leadingZeros;
    let windowTrailing = this.trailingZeros;
    let control: number;
    let controlBits: number;
    if (leading >= windowLeading && trailing >= windowTrailing) {
      control = 0b10;
      controlBits = 2;
    } else {
      windowLeading = leading < 31 ? leading : 31;
      windowTrailing = trailing;
      control = (0b11 << 11) | (windowLeading << 6) | ((64 - windowLeading - windowTrailing) & 63);
      controlBits = 13;
      this.leadingZeros = windowLeading;
      this.trailingZeros = windowTrailing;
    }
    // The window starts in the high half because windowLeading ≤ 31.
    const significant = 64 - windowLeading - windowTrailing;
    if (windowTrailing >= 32) {
      const bits = xorHigh >>> (windowTrailing - 32);
      // One write for control and bits when they fit a word (small changes, the common case).
      if (controlBits + significant <= 32) {
        writer.write((control << significant) | bits, controlBits + significant);
      } else {
        writer.write(control, controlBits);
        writer.write(bits, significant);
      }
    } else {
      writer.write(control, controlBits);
      writer.write(xorHigh, 32 - windowLeading);
      writer.write(xorLow >>> windowTrailing, 32 - windowTrailing);
    }
  }
}

/** Writes an unsigned integer 0 … 2⁵⁴ as a uvarint (whole bytes; the writer is byte-aligned here). */
function writeUvarint(writer: BitWriter, value: number): void {
  let rest = value;
  while (rest >= 0x80) {
    writer.write((rest % 0x80) | 0x80, 8);
    rest = Math.floor(rest / 0x80);
  }
  writer.write(rest, 8);
}

/** The number of samples in a chunk, read from its header. Throws ChunkCorruptError. */
export function chunkSampleCount(bytes: Uint8Array): number {
  if (bytes.length < CHUNK_HEADER_BYTES) throw new ChunkCorruptError(`chunk of ${bytes.length} bytes has no header`);
  return (bytes[0]! << 8) | bytes[1]!;
}

/** Samples of one chunk, in time order. */
export interface DecodedChunk {
  timestampsMs: Float64Array;
  values: Float64Array;
}

/** Decodes a whole chunk into new arrays. Throws ChunkCorruptError. */
export function decodeChunk(bytes: Uint8Array): DecodedChunk {
  const count = chunkSampleCount(bytes);
  const timestampsMs = new Float64Array(count);
  const values = new Float64Array(count);
  decodeChunkRange(bytes, 0, CHUNK_TIMESTAMP_MS_MAX, timestampsMs, values, 0);
  return { timestampsMs, values };
}

/**
 * Decodes a whole chunk into the caller's arrays from index `offset`; returns the number of
 * samples written (the chunk's count). Throws RangeError when the arrays are too short.
 */
export function decodeChunkInto(bytes: Uint8Array, timestampsMs: Float64Array, values: Float64Array, offset = 0): number {
  return decodeChunkRange(bytes, 0, CHUNK_TIMESTAMP_MS_MAX, timestampsMs, values, offset);
}

/**
 * Decodes the samples with minTimestampMs ≤ t ≤ maxTimestampMs (inclusive, ms) into the caller's
 * arrays from index `offset`, and returns how many it wrote. Stops reading at the first sample
 * past maxTimestampMs. Throws RangeError when the arrays have no room for a sample in range
 * (size them by chunkSampleCount), ChunkCorruptError when `bytes` is not a chunk. This is the
 * fast path: a query decodes every chunk it reads into one pair of arrays with it.
 */
export function decodeChunkRange(
  bytes: Uint8Array,
  minTimestampMs: number,
  maxTimestampMs: number,
  timestampsMs: Float64Array,
  values: Float64Array,
  offset = 0,
): number {
  // A typed array ignores writes at a negative index: refuse the offset rather than lose samples.
  if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`offset ${offset} is not an index`);
  // Values are stored as their two halves, never as a number, so no NaN can be canonicalised.
  const valueHalves = new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
  return decodeSamples(bytes, minTimestampMs, maxTimestampMs, timestampsMs, valueHalves, offset);
}

/**
 * Reads one chunk's samples in order, one at a time, without allocating per sample. Obtain one
 * with `chunkIterator`; reuse it for many chunks with `reset`. Not safe for concurrent use.
 */
export interface ChunkIterator {
  /** Starts over on `bytes`, which it decodes at once (so it throws ChunkCorruptError here). */
  reset(bytes: Uint8Array): void;
  /** Moves to the next sample; false when there is none. */
  next(): boolean;
  /**
   * Moves forward to the first sample whose timestamp is ≥ `minTimestampMs` (ms), staying on the
   * current sample if it already is; false when there is none. Never moves backwards.
   */
  seek(minTimestampMs: number): boolean;
  /** Timestamp (ms) of the current sample; valid after next() or seek() returned true. */
  readonly timestampMs: number;
  /** Value of the current sample, bit for bit; valid after next() or seek() returned true. */
  readonly value: number;
  /** Samples in the chunk. */
  readonly count: number;
}

/** An iterator over `bytes` (see ChunkIterator). Throws ChunkCorruptError. */
export function chunkIterator(bytes: Uint8Array): ChunkIterator {
  const iterator = new DecodedChunkIterator();
  iterator.reset(bytes);
  return iterator;
}

/**
 * Iterates over a chunk decoded by the fast path into buffers it keeps for the next chunk: a
 * chunk is at most 65 535 samples (1 MiB of buffers), and decoding one whole is faster than
 * stepping a decoder sample by sample.
 */
class DecodedChunkIterator implements ChunkIterator {
  private timestamps = new Float64Array(0);
  private values = new Float64Array(0);
  private valueHalves = new Uint32Array(0);
  private sampleCount = 0;
  private index = -1;

  reset(bytes: Uint8Array): void {
    const count = chunkSampleCount(bytes);
    if (count > this.timestamps.length) {
      const capacity = Math.min(CHUNK_SAMPLES_MAX, Math.max(count, 2 * this.timestamps.length, 128));
      this.timestamps = new Float64Array(capacity);
      this.values = new Float64Array(capacity);
      this.valueHalves = new Uint32Array(this.values.buffer);
    }
    this.sampleCount = 0;
    this.index = -1;
    this.sampleCount = decodeSamples(bytes, 0, CHUNK_TIMESTAMP_MS_MAX, this.timestamps, this.valueHalves, 0);
  }

  get count(): number {
    return this.sampleCount;
  }
  get timestampMs(): number {
    return this.timestamps[this.index] ?? Number.NaN;
  }
  get value(): number {
    return this.values[this.index] ?? Number.NaN;
  }

  next(): boolean {
    if (this.index + 1 >= this.sampleCount) {
      this.index = this.sampleCount;
      return false;
    }
    this.index++;
    return true;
  }

  seek(minTimestampMs: number): boolean {
    if (this.index < 0) this.index = 0;
    const timestamps = this.timestamps;
    while (this.index < this.sampleCount && timestamps[this.index]! < minTimestampMs) this.index++;
    return this.index < this.sampleCount;
  }
}

/** The decoder's state after the last sample it read; resume continues from it. */
const decodeEnd = { bitPosition: 0, deltaMs: 0, valueHigh: 0, valueLow: 0, leadingZeros: NO_WINDOW, trailingZeros: 0 };
/** The decoder's word buffer, reused from chunk to chunk (decoding is synchronous). */
let decodeWords: Uint32Array = new Uint32Array(256);

/**
 * The decoder: writes the samples with minTimestampMs ≤ t ≤ maxTimestampMs into timestampsMs and
 * valueHalves (two 32-bit halves a value, in the platform's order) from `offset`, returns how
 * many, and leaves its state in `decodeEnd` when it read the whole chunk. One loop over local
 * variables: the state of a sample never leaves registers.
 */
function decodeSamples(
  bytes: Uint8Array,
  minTimestampMs: number,
  maxTimestampMs: number,
  timestampsMs: Float64Array,
  valueHalves: Uint32Array,
  offset: number,
): number {
  const count = chunkSampleCount(bytes);
  if (count === 0) {
    decodeEnd.bitPosition = CHUNK_HEADER_BYTES * 8;
    decodeEnd.leadingZeros = NO_WINDOW;
    return 0;
  }
  const words = (decodeWords = loadWords(bytes, decodeWords));
  const bitLength = bytes.length * 8;
  const room = Math.min(timestampsMs.length, valueHalves.length >>> 1);
  let at = offset;
  let position = CHUNK_HEADER_BYTES * 8;

  const zigzag = readUvarint(words, position);
  position = uvarintEnd;
  if (zigzag % 2 !== 0 || zigzag > CHUNK_TIMESTAMP_MS_MAX * 2) throw new ChunkCorruptError(`first timestamp (zig-zag ${zigzag}) is outside 0 … ${CHUNK_TIMESTAMP_MS_MAX}`);
  let timestampMs = zigzag / 2;
  let valueHigh = readBits(words, position, 32) | 0;
  let valueLow = readBits(words, position + 32, 32) | 0;
  position += 64;
  let deltaMs = 0;
  let leading = NO_WINDOW;
  let trailing = 0;
  for (let index = 0; ; ) {
    if (position > bitLength) throw new ChunkCorruptError(`chunk of ${bitLength >>> 3} bytes ends inside sample ${index} of ${count}`);
    if (timestampMs >= minTimestampMs) {
      if (timestampMs > maxTimestampMs) break;
      if (at >= room) throw new RangeError(`output arrays of ${room} samples have no room for sample ${index} at index ${at}`);
      timestampsMs[at] = timestampMs;
      valueHalves[2 * at + HIGH] = valueHigh;
      valueHalves[2 * at + LOW] = valueLow;
      at++;
    }
    index++;
    if (index === count) {
      decodeEnd.bitPosition = position;
      decodeEnd.deltaMs = deltaMs;
      decodeEnd.valueHigh = valueHigh;
      decodeEnd.valueLow = valueLow;
      decodeEnd.leadingZeros = leading;
      decodeEnd.trailingZeros = trailing;
      break;
    }

    if (index === 1) {
      deltaMs = readUvarint(words, position);
      position = uvarintEnd;
    } else {
      const head = peek32(words, position);
      let dod: number;
      // Sign extension by shifts, not a comparison: the sign of scrape jitter is random, and a
      // mispredicted branch a sample cost a third of the decoding time.
      if (head >>> 31 === 0) {
        dod = 0;
        position += 1;
      } else if (head >>> 30 === 0b10) {
        dod = (head << 2) >> 18;
        if (dod === -8_192) dod = 8_192;
        position += 16;
      } else if (head >>> 29 === 0b110) {
        dod = (head << 3) >> 15;
        if (dod === -65_536) dod = 65_536;
        position += 20;
      } else if (head >>> 28 === 0b1110) {
        dod = (head << 4) >> 12;
        if (dod === -524_288) dod = 524_288;
        position += 24;
      } else {
        dod = (readBits(words, position + 4, 32) | 0) * TWO_POW_32 + readBits(words, position + 36, 32);
        position += 68;
      }
      deltaMs += dod;
    }
    if (!(deltaMs >= 0 && timestampMs + deltaMs <= CHUNK_TIMESTAMP_MS_MAX)) {
      throw new ChunkCorruptError(`sample ${index}: delta ${deltaMs} ms after ${timestampMs} ms is outside 0 … ${CHUNK_TIMESTAMP_MS_MAX}`);
    }
    timestampMs += deltaMs;

    const head = peek32(words, position);
    if (head >>> 31 === 0) {
      position += 1;
      continue;
    }
    if (head >>> 30 === 0b10) {
      if (leading === NO_WINDOW) throw new ChunkCorruptError(`sample ${index}: value reuses a window before any was set`);
      position += 2;
    } else {
      leading = (head >>> 25) & 31;
      const significant = ((head >>> 19) & 63) || 64;
      trailing = 64 - leading - significant;
      if (trailing < 0) throw new ChunkCorruptError(`sample ${index}: value window of ${leading} leading zeros and ${significant} bits exceeds 64 bits`);
      position += 13;
    }
    // The window starts in the high half because leading ≤ 31.
    if (trailing >= 32) {
      const bitCount = 64 - leading - trailing;
      valueHigh ^= readBits(words, position, bitCount) << (trailing - 32);
      position += bitCount;
    } else {
      valueHigh ^= readBits(words, position, 32 - leading);
      position += 32 - leading;
      valueLow ^= readBits(words, position, 32 - trailing) << trailing;
      position += 32 - trailing;
    }
  }
  return at - offset;
}

/** Bit position after the last uvarint read (a second result, to avoid allocating one). */
let uvarintEnd = 0;

/** Reads a byte-aligned uvarint of at most 8 bytes (56 bits: enough for every valid field). */
function readUvarint(words: Uint32Array, bitPosition: number): number {
  let value = 0;
  let scale = 1;
  for (let byteIndex = 0; byteIndex < 8; byteIndex++) {
    const byte = readBits(words, bitPosition + byteIndex * 8, 8);
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      uvarintEnd = bitPosition + (byteIndex + 1) * 8;
      return value;
    }
    scale *= 0x80;
  }
  throw new ChunkCorruptError('varint longer than 8 bytes');
}
