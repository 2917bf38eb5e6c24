/**
 * A bloom filter that grows by `add` (fixed size, chosen up front): a set that may answer
 * "maybe" for a key it never saw, but never "no" for one it did. With m bits, k probes and n
 * keys the false-positive rate is about (1 − e^(−k·n/m))^k.
 *
 * Probe positions by double hashing (Kirsch–Mitzenmacher): position_i = (h1 + i·h2) mod m,
 * with h1, h2 two 32-bit FNV-1a-style hashes of the key's UTF-16 code units under different
 * offsets, so strings are hashed without encoding them to bytes first.
 */
export class StringBloom {
  private readonly bits: Uint32Array;
  private readonly bitCount: number;
  private added = 0;

  constructor(bitCount: number, private readonly probes: number) {
    if (!Number.isInteger(bitCount) || bitCount < 64) throw new RangeError(`a bloom filter needs at least 64 bits, not ${bitCount}`);
    if (!Number.isInteger(probes) || probes < 1 || probes > 30) throw new RangeError(`probes must be 1–30, not ${probes}`);
    this.bits = new Uint32Array(Math.ceil(bitCount / 32));
    this.bitCount = this.bits.length * 32;
  }

  add(key: string): void {
    const [first, second] = hashes(key);
    for (let i = 0; i < this.probes; i++) {
      const bit = (first + i * second) % this.bitCount;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.added += 1;
  }

  /** False only when `key` was certainly never added. */
  mayContain(key: string): boolean {
    const [first, second] = hashes(key);
    for (let i = 0; i < this.probes; i++) {
      const bit = (first + i * second) % this.bitCount;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  /** Keys added (repeats counted), for sizing reports. */
  get keysAdded(): number {
    return this.added;
  }

  get bytes(): number {
    return this.bits.byteLength;
  }
}

function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // Finalise (murmur3's mix) so that near-equal keys spread; the second hash must be odd to cycle all positions.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b = Math.imul(b ^ (b >>> 16), 0xc2b2ae35);
  b ^= b >>> 16;
  return [a >>> 0, (b | 1) >>> 0];
}
