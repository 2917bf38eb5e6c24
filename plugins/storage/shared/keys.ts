/**
 * Byte encodings shared by the storage phases' key layouts. Keys compare byte-wise, so
 * integers are written big-endian and timestamps with their sign bit flipped: byte order is
 * then numeric order, and a range of keys is a range of times.
 */
export const KEY_TAG = { series: 0x53, info: 0x49, newest: 0x58, data: 0x44, chunk: 0x43, head: 0x48, meta: 0x4d } as const;
const TWO_32 = 4_294_967_296;

/** `<tag><id u32>` */
export function idKey(tag: number, id: number): Uint8Array {
  const key = new Uint8Array(5);
  key[0] = tag;
  new DataView(key.buffer).setUint32(1, id);
  return key;
}

/** Writes an order-preserving 8-byte timestamp (integers within ±2^53). */
export function writeTime(view: DataView, at: number, timestampMs: number): void {
  const high = Math.floor(timestampMs / TWO_32);
  view.setUint32(at, (high + 0x80000000) >>> 0);
  view.setUint32(at + 4, timestampMs - high * TWO_32);
}

export function readTime(bytes: Uint8Array, at: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (view.getUint32(at) - 0x80000000) * TWO_32 + view.getUint32(at + 4);
}

export function timeBytes(timestampMs: number): Uint8Array {
  const bytes = new Uint8Array(8);
  writeTime(new DataView(bytes.buffer), 0, timestampMs);
  return bytes;
}

/** `D<id u32><t t64>`: one raw sample (phase 1). */
export function dataKey(id: number, timestampMs: number): Uint8Array {
  const key = new Uint8Array(13);
  const view = new DataView(key.buffer);
  key[0] = KEY_TAG.data;
  view.setUint32(1, id);
  writeTime(view, 5, timestampMs);
  return key;
}

/** A float64 as 8 bytes; NaN payloads (staleness markers) are kept bit for bit. */
export function float64Bytes(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value);
  return bytes;
}

export function readFloat64(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(0);
}
