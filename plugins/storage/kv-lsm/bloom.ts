/**
 * A bloom filter per SSTable: a point read asks it before touching any block, and a "no"
 * is certain, so a key absent from a table costs no disk read there. With b bits per key and
 * k = round(b · ln 2) probes the false-positive rate is about 0.6185^b (≈ 1 % at b = 10).
 *
 * The k probe positions come from two hashes by double hashing (Kirsch and Mitzenmacher):
 * position_i = (h1 + i · h2) mod m. h1 and h2 are MurmurHash3 (x86, 32-bit) of the key with
 * two seeds, so they are independent enough without k separate hash computations.
 *
 * Encoded form: [k: u8][bit array, m / 8 bytes]; bit j is byte j >> 3, bit j & 7.
 */
import { ByteReader } from './bytes.js';

const SEED_FIRST = 0x2545f491;
const SEED_SECOND = 0x9e3779b9;
/** Smallest bit array, so a table of one key still gets a useful filter. */
const FILTER_BITS_MIN = 64;
/** Most probes: beyond ~30 the filter only gets slower. */
const PROBES_MAX = 30;

/** MurmurHash3 x86 32-bit of `key` with `seed`. */
export function murmur3(key: Uint8Array, seed: number): number {
  let hash = seed | 0;
  const length = key.length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    hash ^= k;
    hash = (hash << 13) | (hash >>> 19);
    hash = (Math.imul(hash, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= key[whole + 2]! << 16;
    if (tail >= 2) k ^= key[whole + 1]! << 8;
    k ^= key[whole]!;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    hash ^= k;
  }
  hash ^= length;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

export const probesFor = (bitsPerKey: number): number => Math.max(1, Math.min(PROBES_MAX, Math.round(bitsPerKey * Math.LN2)));

export class BloomFilter {
  private readonly bitCount: number;

  constructor(
    private readonly bits: Uint8Array,
    private readonly probes: number,
  ) {
    this.bitCount = bits.length * 8;
  }

  /** False only when `key` was certainly not added. */
  mayContain(key: Uint8Array): boolean {
    const first = murmur3(key, SEED_FIRST);
    const second = murmur3(key, SEED_SECOND);
    for (let i = 0; i < this.probes; i++) {
      const bit = (first + i * second) % this.bitCount;
      if ((this.bits[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  }

  static decode(buffer: Buffer): BloomFilter {
    const reader = new ByteReader(buffer);
    const probes = reader.u8();
    if (probes < 1 || probes > PROBES_MAX) throw new RangeError(`bloom filter with ${probes} probes`);
    return new BloomFilter(reader.bytes(reader.remaining), probes);
  }
}

/** Collects the keys of a table being written, then lays out its filter. */
export class BloomBuilder {
  private readonly firsts: number[] = [];
  private readonly seconds: number[] = [];

  constructor(private readonly bitsPerKey: number) {}

  add(key: Uint8Array): void {
    this.firsts.push(murmur3(key, SEED_FIRST));
    this.seconds.push(murmur3(key, SEED_SECOND));
  }

  /** The encoded filter: [probes u8][bits]. */
  finish(): Buffer {
    const probes = probesFor(this.bitsPerKey);
    const byteCount = Math.ceil(Math.max(FILTER_BITS_MIN, this.firsts.length * this.bitsPerKey) / 8);
    const bitCount = byteCount * 8;
    const out = Buffer.alloc(1 + byteCount);
    out[0] = probes;
    for (let k = 0; k < this.firsts.length; k++) {
      const first = this.firsts[k]!;
      const second = this.seconds[k]!;
      for (let i = 0; i < probes; i++) {
        const bit = (first + i * second) % bitCount;
        out[1 + (bit >>> 3)]! |= 1 << (bit & 7);
      }
    }
    return out;
  }
}
