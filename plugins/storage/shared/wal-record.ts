/**
 * The head's write-ahead record: what one commit appended, with final timestamps (server
 * stamps already resolved), so replay is exact and needs no rule of its own.
 *
 *   record  = count:u32  { ref:u32  timestampMs:f64  value:f64 }*count      (20 bytes a sample)
 *
 * A timestamp is an integer below 2^53, so a float64 carries it exactly; the value's 64 bits
 * are copied as two 32-bit halves, never through a JavaScript number, so NaN payloads
 * (staleness markers) survive. The record is the value of a `W<seq>` key in the KV engine,
 * written in the same atomic, synced batch as the queue positions it came from.
 */
export const WAL_SAMPLE_BYTES = 20;

export interface WalSamples {
  count: number;
  refs: Uint32Array;
  timestampsMs: Float64Array;
  /** The values' bits, two uint32 halves per value (high, low). */
  valueBits: Uint32Array;
}

const scratch = new DataView(new ArrayBuffer(8));

/** Builds a record sample by sample. */
export class WalRecordWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private count = 0;

  constructor(capacity: number) {
    this.buffer = new Uint8Array(4 + Math.max(1, capacity) * WAL_SAMPLE_BYTES);
    this.view = new DataView(this.buffer.buffer);
  }

  add(ref: number, timestampMs: number, value: number): void {
    const at = 4 + this.count * WAL_SAMPLE_BYTES;
    if (at + WAL_SAMPLE_BYTES > this.buffer.length) {
      const grown = new Uint8Array(this.buffer.length * 2);
      grown.set(this.buffer);
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    this.view.setUint32(at, ref);
    this.view.setFloat64(at + 4, timestampMs);
    scratch.setFloat64(0, value);
    this.view.setUint32(at + 12, scratch.getUint32(0));
    this.view.setUint32(at + 16, scratch.getUint32(4));
    this.count += 1;
  }

  get samples(): number {
    return this.count;
  }

  finish(): Uint8Array {
    this.view.setUint32(0, this.count);
    return this.buffer.subarray(0, 4 + this.count * WAL_SAMPLE_BYTES);
  }
}

/** Reads a record; throws on one whose length does not match its count (a corrupt store). */
export function readWalRecord(bytes: Uint8Array): WalSamples {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.length >= 4 ? view.getUint32(0) : -1;
  if (count < 0 || bytes.length !== 4 + count * WAL_SAMPLE_BYTES) throw new Error(`WAL record of ${bytes.length} bytes does not hold ${count} samples`);
  const refs = new Uint32Array(count);
  const timestampsMs = new Float64Array(count);
  const valueBits = new Uint32Array(count * 2);
  for (let i = 0, at = 4; i < count; i++, at += WAL_SAMPLE_BYTES) {
    refs[i] = view.getUint32(at);
    timestampsMs[i] = view.getFloat64(at + 4);
    valueBits[2 * i] = view.getUint32(at + 12);
    valueBits[2 * i + 1] = view.getUint32(at + 16);
  }
  return { count, refs, timestampsMs, valueBits };
}

/** The float64 whose bits are (high, low). */
export function valueFromBits(high: number, low: number): number {
  scratch.setUint32(0, high);
  scratch.setUint32(4, low);
  return scratch.getFloat64(0);
}
