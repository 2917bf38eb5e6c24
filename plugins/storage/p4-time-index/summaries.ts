/**
 * Chunk summaries: count, exact sum, min, max, first and last of a chunk's samples, computed
 * once when the chunk is written and stored beside it, so a rollup window that covers a
 * whole chunk adds the summary instead of decoding 120 samples.
 *
 *   (end of the chunk's C value)  0x02 · count uvarint · [ firstMs − minT uvarint · maxT − lastMs uvarint ·
 *                                   min · max · first · last · special · parts u8 · part × parts ]   (when count > 0)
 *
 * Every float is written compactly: one byte e ≤ 15 and the zig-zag varint of n when the value
 * is exactly n / 10^e (most readings are: `12.34` takes 3 bytes), else 0xff and the 8 bytes of
 * the float64. Times are offsets from the chunk's own bounds (0 unless the chunk begins or ends
 * with a staleness marker). A summary of a scraped chunk takes ~25 bytes instead of the 61 + 8
 * a part that the first layout (still read: it begins with the zero byte of its count u32) used.
 *
 * The sum is kept as its exact expansion (core/storage/rollup.ts), so merging summaries
 * gives the same bits as adding every sample. A chunk of only staleness markers has count 0.
 */
import { accumulateSamples, type WindowAccumulator } from '../../../core/storage/rollup.js';
import type { ChunkSummary } from '../shared/chunk-series.js';
import { decimalOf, fromDecimal, unzigzag, zigzag } from '../shared/packed-chunk.js';
import type { DecodedChunk } from './decoded-cache.js';

/** Parts of an exact sum a summary keeps at most; a longer expansion is not summarised (rare: it needs values spread over ~600 binary orders of magnitude). */
export const SUMMARY_PARTS_MAX = 32;
/** Tag of the first layout's summary keys `Z<ref u32><minT t64><seq u32>` (moved into chunk values on open). */
export const SUMMARY_TAG = 0x5a; // Z
const SUMMARY_VERSION = 0x02;
const RAW_FLOAT = 0xff;

export type StoredSummary = ChunkSummary & { exact: { parts: number[]; special: number } };

/** The summary of a decoded chunk, or undefined when its sum cannot be kept compactly. */
export function summarise(chunk: DecodedChunk): StoredSummary | undefined {
  const n = chunk.timestampsMs.length;
  if (n === 0) return undefined;
  const [window] = accumulateSamples(chunk.timestampsMs, chunk.values, chunk.timestampsMs[0]!, chunk.timestampsMs[n - 1]!, Number.MAX_SAFE_INTEGER) as [WindowAccumulator | undefined];
  if (window === undefined) return { count: 0, sum: 0, min: NaN, max: NaN, first: NaN, firstMs: 0, last: NaN, lastMs: 0, exact: { parts: [], special: 0 } };
  if (window.exact.parts.length > SUMMARY_PARTS_MAX) return undefined;
  const { count, min, max, first, firstMs, last, lastMs, exact } = window;
  return { count, sum: 0, min, max, first, firstMs, last, lastMs, exact };
}

const scratch = new DataView(new ArrayBuffer(8));

class ByteWriter {
  readonly bytes: number[] = [];
  uvarint(value: number): void {
    let rest = value;
    while (rest >= 0x80) {
      this.bytes.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.bytes.push(rest);
  }
  float(value: number): void {
    const decimal = decimalOf(value);
    if (decimal !== undefined) {
      this.bytes.push(decimal.exponent);
      this.uvarint(zigzag(decimal.n));
      return;
    }
    this.bytes.push(RAW_FLOAT);
    scratch.setFloat64(0, value);
    for (let i = 0; i < 8; i++) this.bytes.push(scratch.getUint8(i));
  }
}

class ByteReader {
  at = 0;
  constructor(private readonly bytes: Uint8Array) {}
  byte(): number {
    if (this.at >= this.bytes.length) throw new Error(`chunk summary ends early at byte ${this.at}`);
    return this.bytes[this.at++]!;
  }
  uvarint(): number {
    let value = 0;
    for (let scale = 1, i = 0; i < 8; i++, scale *= 0x80) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
    }
    throw new Error('chunk summary: varint longer than 8 bytes');
  }
  float(): number {
    const tag = this.byte();
    if (tag !== RAW_FLOAT) return fromDecimal(tag, unzigzag(this.uvarint()));
    for (let i = 0; i < 8; i++) scratch.setUint8(i, this.byte());
    return scratch.getFloat64(0);
  }
}

/** The bytes of a summary of the chunk spanning `[minTimeMs, maxTimeMs]`. */
export function encodeSummary(summary: StoredSummary, minTimeMs: number, maxTimeMs: number): Uint8Array {
  const out = new ByteWriter();
  out.bytes.push(SUMMARY_VERSION);
  out.uvarint(summary.count);
  if (summary.count > 0) {
    out.uvarint(summary.firstMs - minTimeMs);
    out.uvarint(maxTimeMs - summary.lastMs);
    for (const value of [summary.min, summary.max, summary.first, summary.last, summary.exact.special]) out.float(value);
    out.bytes.push(summary.exact.parts.length);
    for (const part of summary.exact.parts) out.float(part);
  }
  return Uint8Array.from(out.bytes);
}

export function decodeSummary(bytes: Uint8Array, minTimeMs: number, maxTimeMs: number): StoredSummary {
  if (bytes[0] === 0) return decodeFirstLayout(bytes);
  if (bytes[0] !== SUMMARY_VERSION) throw new Error(`chunk summary of unknown layout ${bytes[0]}`);
  const input = new ByteReader(bytes);
  input.at = 1;
  const count = input.uvarint();
  if (count === 0) return { count: 0, sum: 0, min: NaN, max: NaN, first: NaN, firstMs: 0, last: NaN, lastMs: 0, exact: { parts: [], special: 0 } };
  const firstMs = minTimeMs + input.uvarint();
  const lastMs = maxTimeMs - input.uvarint();
  const [min, max, first, last, special] = [input.float(), input.float(), input.float(), input.float(), input.float()];
  const parts = Array.from({ length: input.byte() }, () => input.float());
  if (input.at !== bytes.length) throw new Error(`chunk summary has ${bytes.length - input.at} bytes after its parts`);
  return { count, sum: 0, min, max, first, firstMs, last, lastMs, exact: { parts, special } };
}

/**
 * The summary as stored at the end of its chunk's `C` value: `<summary><length u16>` (length 0:
 * no summary, e.g. a sum too long to keep). Inside the chunk's own value it costs no key, and
 * the open that reads every chunk's metadata reads the summaries with it.
 */
export function summaryTrailer(summary: StoredSummary | undefined, minTimeMs: number, maxTimeMs: number): Uint8Array {
  const bytes = summary === undefined ? new Uint8Array(0) : encodeSummary(summary, minTimeMs, maxTimeMs);
  const trailer = new Uint8Array(bytes.length + 2);
  trailer.set(bytes, 0);
  trailer[bytes.length] = bytes.length >>> 8;
  trailer[bytes.length + 1] = bytes.length & 0xff;
  return trailer;
}

/** Where the summary trailer of a `C` value begins, and the summary's bytes (empty when none). */
export function splitTrailer(value: Uint8Array): { end: number; summary: Uint8Array } {
  const length = (value[value.length - 2]! << 8) | value[value.length - 1]!;
  const end = value.length - 2 - length;
  if (end < 8) throw new Error(`chunk value of ${value.length} bytes cannot hold a summary of ${length}`);
  return { end, summary: value.subarray(end, value.length - 2) };
}

/** The first layout: count u32, seven float64 (min max first firstMs last lastMs special), parts u8, parts. */
function decodeFirstLayout(bytes: Uint8Array): StoredSummary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const f = (i: number): number => view.getFloat64(4 + i * 8);
  const partCount = view.getUint8(60);
  if (bytes.length !== 61 + partCount * 8) throw new Error(`chunk summary of ${bytes.length} bytes does not hold ${partCount} parts`);
  const parts = Array.from({ length: partCount }, (_, i) => view.getFloat64(61 + i * 8));
  return { count: view.getUint32(0), sum: 0, min: f(0), max: f(1), first: f(2), firstMs: f(3), last: f(4), lastMs: f(5), exact: { parts, special: f(6) } };
}
