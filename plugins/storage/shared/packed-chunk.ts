/**
 * The packed chunk: how a *closed* chunk can be stored when its values are decimals, which is
 * what most scraped metrics are (counters are integers, gauges have a few decimals).
 *
 * Gorilla's XOR of two float64 values is small only when the values share their binary
 * digits: for 12.34 → 12.37 the XOR keeps ~50 significant bits, because neither number is a
 * short binary fraction. And its delta-of-delta buckets are sized for intervals that rarely
 * change, while a scraper's millisecond jitter changes them every sample. This format
 * trades Gorilla's per-sample choices for per-chunk ones, which a chunk can afford once it is
 * closed and no more samples arrive:
 *
 * - values: find the smallest e (0 ≤ e ≤ 15) for which every value is n/10^e with n an
 *   integer (the check is exact: `n / 10^e === v`, and decoding computes the same division,
 *   so values come back bit for bit); then store n₀ and the deltas nᵢ − nᵢ₋₁ minus their
 *   minimum, in the fewest bits that hold the largest (frame of reference). A constant series
 *   costs 0 bits a sample; a counter that grows by 0–100 costs 7.
 * - timestamps: either the offsets from a regular grid t₀ + i·B (B the mean interval), or
 *   the deltas, each minus its minimum, in fixed width — whichever is narrower. Jitter of
 *   ±4 ms costs 4 bits a sample on the grid instead of Gorilla's 16.
 *
 * Anything else (NaN, ±Inf, staleness markers, −0, values that are no short decimal, or a
 * chunk the packing would not make smaller) stays a Gorilla chunk: `packChunk` returns
 * undefined and the caller keeps the Gorilla bytes.
 *
 *   chunk  := count:16 · 0x01 · mode:8 · t₀ uvarint · times · e:8 · n₀ zvarint · deltas · bits
 *   times  := (mode 0, grid)  B uvarint · rmin zvarint · tw:8
 *           | (mode 1, delta) Δmin uvarint · tw:8                      (absent when count = 1)
 *   deltas := dmin zvarint · vw:8                                       (absent when count = 1)
 *   bits   := (count − 1) fields of tw bits (time), then (count − 1) fields of vw bits (value)
 *
 * The byte after the count tells the formats apart: in a Gorilla chunk it begins the zig-zag
 * varint of t₀ ≥ 0, whose lowest bit is always 0; here it is 0x01. So `count:16` stays where
 * every reader looks for it, and chunks written before this format existed read unchanged.
 * uvarint/zvarint: 7 bits a byte, low group first, top bit = more (zvarint: zig-zag first).
 */
import { BitWriter, loadWords, readBits } from './bitstream.js';

export const PACKED_MARKER = 0x01;
/** Largest decimal exponent tried: 10^15 is exact in float64 and covers micro-units of most readings. */
export const DECIMAL_EXPONENT_MAX = 15;
/** Largest |n| kept: deltas of two such integers (and their spread) stay within 2^53. */
const INTEGER_MAX = 2 ** 50;
const TWO_32 = 4_294_967_296;
const POW10 = Array.from({ length: DECIMAL_EXPONENT_MAX + 1 }, (_, e) => 10 ** e);

const MODE_GRID = 0;
const MODE_DELTA = 1;

export const isPackedChunk = (bytes: Uint8Array): boolean => bytes.length > 2 && (bytes[2]! & 1) === 1;

/** Bits needed to hold 0…max (max ≥ 0 an integer < 2^53). */
function widthOf(max: number): number {
  if (max === 0) return 0;
  if (max < TWO_32) return 32 - Math.clz32(max);
  return 64 - Math.clz32(Math.floor(max / TWO_32));
}

const zigzag = (x: number): number => (x >= 0 ? 2 * x : -2 * x - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

function writeUvarint(writer: BitWriter, value: number): void {
  let rest = value;
  while (rest >= 0x80) {
    writer.write((rest % 0x80) | 0x80, 8);
    rest = Math.floor(rest / 0x80);
  }
  writer.write(rest, 8);
}

/** Writes `value` (0 ≤ value < 2^53) in `width` bits, 0 ≤ width ≤ 53. */
function writeWide(writer: BitWriter, value: number, width: number): void {
  if (width === 0) return;
  if (width <= 32) writer.write(value, width);
  else {
    writer.write(Math.floor(value / TWO_32), width - 32);
    writer.write(value >>> 0, 32);
  }
}

/** The exponent at which every value is an integer over 10^e, or −1. */
function decimalExponent(values: ArrayLike<number>, count: number): number {
  let exponent = 0;
  for (let i = 0; i < count; i++) {
    const v = values[i]!;
    if (Object.is(v, -0)) return -1;
    while (!fitsDecimal(v, exponent)) if (++exponent > DECIMAL_EXPONENT_MAX) return -1;
  }
  // A value that fit at a smaller exponent need not fit at the final one: check them all again.
  for (; exponent <= DECIMAL_EXPONENT_MAX; exponent++) {
    let all = true;
    for (let i = 0; i < count && all; i++) all = fitsDecimal(values[i]!, exponent);
    if (all) return exponent;
  }
  return -1;
}

/** `v` as n / 10^exponent with the smallest exponent that holds it exactly, or undefined (−0, NaN, ±Inf, long fractions). */
export function decimalOf(v: number): { exponent: number; n: number } | undefined {
  if (Object.is(v, -0)) return undefined;
  for (let exponent = 0; exponent <= DECIMAL_EXPONENT_MAX; exponent++) {
    if (fitsDecimal(v, exponent)) return { exponent, n: Math.round(v * POW10[exponent]!) };
  }
  return undefined;
}

/** The value `decimalOf` described: the same float64, bit for bit. */
export const fromDecimal = (exponent: number, n: number): number => n / POW10[exponent]!;

export { zigzag, unzigzag };

function fitsDecimal(v: number, exponent: number): boolean {
  const scale = POW10[exponent]!;
  const n = Math.round(v * scale);
  return Math.abs(n) <= INTEGER_MAX && n / scale === v;
}

/**
 * The packed bytes of `count` samples (timestamps strictly ascending, integers ≥ 0), or
 * undefined when the values are not all decimals or packing would not beat `gorillaBytes`.
 */
export function packChunk(timestampsMs: ArrayLike<number>, values: ArrayLike<number>, count: number, gorillaBytes = Infinity): Uint8Array | undefined {
  if (count < 1 || count > 0xffff) return undefined;
  const exponent = decimalExponent(values, count);
  if (exponent < 0) return undefined;
  const scale = POW10[exponent]!;
  const t0 = timestampsMs[0]!;
  const n0 = Math.round(values[0]! * scale);
  // Time fields both ways; the narrower wins.
  let mode = MODE_DELTA;
  let timeBase = 0;
  let timeMin = 0;
  let timeWidth = 0;
  let valueMin = 0;
  let valueWidth = 0;
  if (count > 1) {
    const intervalMs = Math.round((timestampsMs[count - 1]! - t0) / (count - 1));
    let gridMin = Infinity;
    let gridMax = -Infinity;
    let deltaMin = Infinity;
    let deltaMax = -Infinity;
    let dMin = Infinity;
    let dMax = -Infinity;
    for (let i = 1; i < count; i++) {
      const offset = timestampsMs[i]! - t0 - i * intervalMs;
      const delta = timestampsMs[i]! - timestampsMs[i - 1]!;
      const d = Math.round(values[i]! * scale) - Math.round(values[i - 1]! * scale);
      if (offset < gridMin) gridMin = offset;
      if (offset > gridMax) gridMax = offset;
      if (delta < deltaMin) deltaMin = delta;
      if (delta > deltaMax) deltaMax = delta;
      if (d < dMin) dMin = d;
      if (d > dMax) dMax = d;
    }
    const gridWidth = widthOf(gridMax - gridMin);
    const deltaWidth = widthOf(deltaMax - deltaMin);
    if (gridWidth < deltaWidth) {
      mode = MODE_GRID;
      timeBase = intervalMs;
      timeMin = gridMin;
      timeWidth = gridWidth;
    } else {
      timeBase = deltaMin;
      timeWidth = deltaWidth;
    }
    valueMin = dMin;
    valueWidth = widthOf(dMax - dMin);
  }
  const headerBits = 8 * (4 + 9 + 9 + 1 + 1 + 9 + 9 + 1 + 8);
  const estimatedBytes = (headerBits + (count - 1) * (timeWidth + valueWidth) + 7) >>> 3;
  if (estimatedBytes > gorillaBytes + 32) return undefined;
  const writer = new BitWriter(((headerBits + (count - 1) * (timeWidth + valueWidth)) >>> 5) + 4);
  writer.reserve(headerBits + (count - 1) * (timeWidth + valueWidth));
  writer.write(count, 16);
  writer.write(PACKED_MARKER, 8);
  writer.write(mode, 8);
  writeUvarint(writer, t0);
  if (count > 1) {
    writeUvarint(writer, timeBase);
    if (mode === MODE_GRID) writeUvarint(writer, zigzag(timeMin));
    writer.write(timeWidth, 8);
  }
  writer.write(exponent, 8);
  writeUvarint(writer, zigzag(n0));
  if (count > 1) {
    writeUvarint(writer, zigzag(valueMin));
    writer.write(valueWidth, 8);
    for (let i = 1; i < count; i++) {
      const field = mode === MODE_GRID ? timestampsMs[i]! - t0 - i * timeBase - timeMin : timestampsMs[i]! - timestampsMs[i - 1]! - timeBase;
      writeWide(writer, field, timeWidth);
    }
    let previous = n0;
    for (let i = 1; i < count; i++) {
      const n = Math.round(values[i]! * scale);
      writeWide(writer, n - previous - valueMin, valueWidth);
      previous = n;
    }
  }
  if (writer.byteLength >= gorillaBytes) return undefined;
  return writer.toBytes();
}

/** A reader's position in a packed chunk; one per decode. */
class Cursor {
  position = 0;
  constructor(readonly words: Uint32Array) {}
  byte(): number {
    const value = readBits(this.words, this.position, 8);
    this.position += 8;
    return value;
  }
  uvarint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 0x80;
    }
    throw new RangeError('packed chunk: varint longer than 8 bytes');
  }
  wide(width: number): number {
    if (width === 0) return 0;
    if (width <= 32) {
      const value = readBits(this.words, this.position, width);
      this.position += width;
      return value;
    }
    const high = readBits(this.words, this.position, width - 32);
    const low = readBits(this.words, this.position + width - 32, 32);
    this.position += width;
    return high * TWO_32 + low;
  }
}

let sharedWords: Uint32Array = new Uint32Array(64);

/**
 * Decodes the samples with minTimeMs ≤ t ≤ maxTimeMs into the caller's arrays from `offset`;
 * returns how many it wrote. Arrays must have room for the chunk's count.
 */
export function decodePackedRange(bytes: Uint8Array, minTimeMs: number, maxTimeMs: number, timestampsMs: Float64Array, values: Float64Array, offset = 0): number {
  const count = (bytes[0]! << 8) | bytes[1]!;
  sharedWords = loadWords(bytes, sharedWords);
  const cursor = new Cursor(sharedWords);
  cursor.position = 16;
  if (cursor.byte() !== PACKED_MARKER) throw new RangeError('not a packed chunk');
  const mode = cursor.byte();
  const t0 = cursor.uvarint();
  let timeBase = 0;
  let timeMin = 0;
  let timeWidth = 0;
  if (count > 1) {
    timeBase = cursor.uvarint();
    if (mode === MODE_GRID) timeMin = unzigzag(cursor.uvarint());
    timeWidth = cursor.byte();
  }
  const scale = POW10[cursor.byte()];
  if (scale === undefined) throw new RangeError('packed chunk: decimal exponent out of range');
  const n0 = unzigzag(cursor.uvarint());
  let valueMin = 0;
  let valueWidth = 0;
  if (count > 1) {
    valueMin = unzigzag(cursor.uvarint());
    valueWidth = cursor.byte();
  }
  const timesAt = cursor.position;
  const valuesAt = timesAt + (count - 1) * timeWidth;
  let written = 0;
  let t = t0;
  let n = n0;
  const timeCursor = cursor;
  const valueCursor = new Cursor(sharedWords);
  valueCursor.position = valuesAt;
  for (let i = 0; i < count; i++) {
    if (i > 0) {
      const field = timeCursor.wide(timeWidth);
      t = mode === MODE_GRID ? t0 + i * timeBase + timeMin + field : t + timeBase + field;
      n += valueCursor.wide(valueWidth) + valueMin;
    }
    if (t > maxTimeMs) break;
    if (t >= minTimeMs) {
      timestampsMs[offset + written] = t;
      values[offset + written] = n / scale;
      written += 1;
    }
  }
  return written;
}
