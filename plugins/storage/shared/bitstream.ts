/**
 * Bit streams over 32-bit words, most significant bit first: bit 0 of the stream is the top bit
 * of word 0, and the bytes of the stream are the words written big-endian. This is the bit
 * order of the Gorilla chunk (see gorilla.ts), so a stream's bytes are the chunk's bytes.
 *
 * Words rather than bytes because every field of a chunk is at most 32 bits wide once a 64-bit
 * field is split into its two halves, so a write touches at most two words and a read is two
 * loads, two shifts and an or — no loop over bytes and no BigInt. A reader converts a chunk's
 * bytes to words once (`loadWords`), into a buffer it reuses.
 *
 * The writer only appends: bits past `bitLength` are always zero, which is what lets `write`
 * or into the current word without masking and `fromBytes` continue a stream that was cut at
 * any bit.
 */

/** Words of room a new writer starts with (256 bytes); it doubles its room as it fills. */
export const WRITER_INITIAL_WORDS = 64;

/** Zero words kept after the last word of a read buffer, so a read may look one word ahead. */
export const READ_PADDING_WORDS = 2;

/** Appends fields of 1 to 32 bits to a growable stream. Not safe for concurrent use. */
export class BitWriter {
  /** The stream; bits past `bitLength` are zero. Owned by the writer: grows (is replaced) on `reserve`. */
  words: Uint32Array;
  /** Bits written so far. */
  bitLength = 0;

  constructor(initialWords = WRITER_INITIAL_WORDS) {
    this.words = new Uint32Array(Math.max(2, initialWords));
  }

  /**
   * A writer that continues the stream `bytes`, of which the first `bitLength` bits are data and
   * the rest MUST be zero (a RangeError otherwise, so a continued stream never ors into garbage).
   */
  static fromBytes(bytes: Uint8Array, bitLength: number): BitWriter {
    if (!(bitLength >= 0 && Math.ceil(bitLength / 8) === bytes.length)) {
      throw new RangeError(`a stream of ${bytes.length} bytes cannot end at bit ${bitLength}`);
    }
    const writer = new BitWriter(Math.max(WRITER_INITIAL_WORDS, (bytes.length >>> 2) * 2 + 4));
    loadWords(bytes, writer.words);
    const tailBits = bitLength & 31;
    const lastWord = writer.words[bitLength >>> 5] ?? 0;
    if (tailBits !== 0 && (lastWord & (0xffffffff >>> tailBits)) !== 0) {
      throw new RangeError(`the bits after bit ${bitLength} are not zero`);
    }
    writer.bitLength = bitLength;
    return writer;
  }

  /** Makes room for `bitCount` more bits, so the next writes of that many bits need no check. */
  reserve(bitCount: number): void {
    const wordsNeeded = ((this.bitLength + bitCount) >>> 5) + 2;
    if (wordsNeeded <= this.words.length) return;
    const grown = new Uint32Array(Math.max(wordsNeeded, this.words.length * 2));
    grown.set(this.words);
    this.words = grown;
  }

  /**
   * Appends the low `bitCount` bits of `value` (1 ≤ bitCount ≤ 32; higher bits are ignored).
   * The caller MUST have reserved the room.
   */
  write(value: number, bitCount: number): void {
    const bits = value & (0xffffffff >>> (32 - bitCount));
    const position = this.bitLength;
    const index = position >>> 5;
    const free = 32 - (position & 31);
    const words = this.words;
    if (bitCount <= free) {
      words[index] = words[index]! | (bits << (free - bitCount));
    } else {
      const spill = bitCount - free;
      words[index] = words[index]! | (bits >>> spill);
      words[index + 1] = bits << (32 - spill);
    }
    this.bitLength = position + bitCount;
  }

  /** Bytes the stream takes: whole bytes, the last one padded with zero bits. */
  get byteLength(): number {
    return (this.bitLength + 7) >>> 3;
  }

  /** A copy of the stream as bytes (big-endian words, cut to `byteLength`). */
  toBytes(): Uint8Array {
    const byteLength = this.byteLength;
    const bytes = new Uint8Array(byteLength);
    const words = this.words;
    const wholeWords = byteLength >>> 2;
    for (let index = 0; index < wholeWords; index++) {
      const word = words[index]!;
      const at = index << 2;
      bytes[at] = word >>> 24;
      bytes[at + 1] = word >>> 16;
      bytes[at + 2] = word >>> 8;
      bytes[at + 3] = word;
    }
    const last = words[wholeWords] ?? 0;
    for (let at = wholeWords << 2, shift = 24; at < byteLength; at++, shift -= 8) bytes[at] = last >>> shift;
    return bytes;
  }
}

/**
 * Loads `bytes` as big-endian words into `into` (or a new array), followed by at least
 * READ_PADDING_WORDS zero words; returns the array used. `into` is reused when it is large
 * enough, which lets a decoder keep one buffer for every chunk it reads.
 */
export function loadWords(bytes: Uint8Array, into?: Uint32Array): Uint32Array {
  const wordCount = (bytes.length + 3) >>> 2;
  const words = into !== undefined && into.length >= wordCount + READ_PADDING_WORDS ? into : new Uint32Array(wordCount + READ_PADDING_WORDS);
  const wholeWords = bytes.length >>> 2;
  for (let index = 0; index < wholeWords; index++) {
    const at = index << 2;
    words[index] = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  }
  let last = 0;
  for (let at = wholeWords << 2, shift = 24; at < bytes.length; at++, shift -= 8) last |= bytes[at]! << shift;
  words[wholeWords] = last;
  words.fill(0, wholeWords + 1, wordCount + READ_PADDING_WORDS);
  return words;
}

/**
 * The 32 bits starting at `bitPosition`, as an unsigned integer (bits past the data read as
 * the zero padding). `words` MUST come from `loadWords` or a writer, so the word after the one
 * addressed exists.
 */
export function peek32(words: Uint32Array, bitPosition: number): number {
  const index = bitPosition >>> 5;
  const offset = bitPosition & 31;
  // `>>> 1 >>> (31 - offset)` is `>>> (32 - offset)` without the shift by 32 that JS would
  // take as a shift by 0 when offset is 0.
  return ((words[index]! << offset) | ((words[index + 1]! >>> 1) >>> (31 - offset))) >>> 0;
}

/** The `bitCount` bits (1 ≤ bitCount ≤ 32) at `bitPosition`, as an unsigned integer. */
export function readBits(words: Uint32Array, bitPosition: number, bitCount: number): number {
  return peek32(words, bitPosition) >>> (32 - bitCount);
}
