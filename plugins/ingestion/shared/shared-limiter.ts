/**
 * The per-client rate limiter for phases that validate on several threads: its state lives
 * in a SharedArrayBuffer that every worker maps, and Atomics-based mutexes guard it.
 *
 * With one lock (phases 1–3) every request of every client serialises on it — the seed's
 * global mutex. With N locks (phase 4 on) the table is split into N regions, a client
 * hashes to one region, and only clients of the same region contend: lock striping.
 * `lockWaits` counts acquisitions that found the lock taken, to make contention visible.
 *
 * The window logic is the same as SlidingWindowLimiter (slices of 100 ms covering the
 * last second), so the same guarantee holds: never more than `limit` admitted per window.
 */
import type { RateLimiter } from '../../../core/ingestion/rate-limit.js';
import { RATE_LIMIT_BUCKET_MS } from '../../../core/ingestion/rate-limit.js';

const RING = 11; // ceil(1000 / 100) + 1 slices
const SLOT_INTS = 3 + 2 * RING; // hashA, hashB, used, counts[RING], slices[RING]
const HEADER_INTS = 3; // limit, shards, slotsPerShard (the base slice, too large for 32 bits, is a float64 before them)
const BASE_BYTES = 8;
const PROBES_MAX = 16;

function hashA(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

function hashB(text: string): number {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 33) + text.charCodeAt(i)) | 0;
  return h | 1; // never 0, so 0 means "empty slot"
}

export interface SharedLimiterLayout {
  buffer: SharedArrayBuffer;
}

export class SharedRateLimiter implements RateLimiter {
  private readonly ints: Int32Array;
  private readonly limit: number;
  private readonly shards: number;
  private readonly slotsPerShard: number;
  private readonly baseSlice: number;
  /** Offsets: locks after the header, then one wait counter per shard, then the table. */
  private readonly locksAt = HEADER_INTS;
  private readonly waitsAt: number;
  private readonly tableAt: number;

  /** Allocates the shared state: `shards` = 1 is one global lock. */
  static create(limit: number, shards: number, slotsPerShard = 4_096): SharedRateLimiter {
    const ints = HEADER_INTS + 2 * shards + shards * slotsPerShard * SLOT_INTS;
    const buffer = new SharedArrayBuffer(BASE_BYTES + ints * 4);
    // Slices are stored relative to this base so they fit in 32 bits (for ~6 years).
    new Float64Array(buffer, 0, 1)[0] = Math.floor(Date.now() / RATE_LIMIT_BUCKET_MS) - 1_000;
    const view = new Int32Array(buffer, BASE_BYTES);
    view[0] = limit;
    view[1] = shards;
    view[2] = slotsPerShard;
    return new SharedRateLimiter(buffer);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.ints = new Int32Array(buffer, BASE_BYTES);
    this.limit = this.ints[0]!;
    this.shards = this.ints[1]!;
    this.slotsPerShard = this.ints[2]!;
    this.baseSlice = new Float64Array(buffer, 0, 1)[0]!;
    this.waitsAt = this.locksAt + this.shards;
    this.tableAt = this.waitsAt + this.shards;
  }

  /** Acquisitions that had to wait, per shard. */
  lockWaits(): number[] {
    return Array.from({ length: this.shards }, (_, i) => Atomics.load(this.ints, this.waitsAt + i));
  }

  private lock(shard: number): void {
    const at = this.locksAt + shard;
    if (Atomics.compareExchange(this.ints, at, 0, 1) === 0) return;
    Atomics.add(this.ints, this.waitsAt + shard, 1);
    for (let spins = 0; ; spins++) {
      if (Atomics.compareExchange(this.ints, at, 0, 1) === 0) return;
      // Spin briefly, then sleep until the holder notifies (or 1 ms passes).
      if (spins > 64) Atomics.wait(this.ints, at, 1, 1);
    }
  }

  private unlock(shard: number): void {
    const at = this.locksAt + shard;
    Atomics.store(this.ints, at, 0);
    Atomics.notify(this.ints, at, 1);
  }

  admit(client: string, nowMs: number): boolean {
    if (this.limit <= 0) return true;
    const a = hashA(client);
    const b = hashB(client);
    const shard = (a >>> 0) % this.shards;
    this.lock(shard);
    try {
      const slot = this.findSlot(shard, a, b);
      const current = Math.floor(nowMs / RATE_LIMIT_BUCKET_MS) - this.baseSlice;
      const oldest = Math.floor((nowMs - 1_000) / RATE_LIMIT_BUCKET_MS) - this.baseSlice;
      const counts = slot + 3;
      const slices = counts + RING;
      let total = 0;
      for (let i = 0; i < RING; i++) {
        const s = this.ints[slices + i]!;
        if (s >= oldest && s <= current && s !== 0) total += this.ints[counts + i]!;
      }
      if (total >= this.limit) return false;
      const at = ((current % RING) + RING) % RING;
      if (this.ints[slices + at] !== current) {
        this.ints[slices + at] = current;
        this.ints[counts + at] = 0;
      }
      this.ints[counts + at] = this.ints[counts + at]! + 1;
      return true;
    } finally {
      this.unlock(shard);
    }
  }

  /** The slot of a client within its shard's region (open addressing; the home slot is reused when the region is full). */
  private findSlot(shard: number, a: number, b: number): number {
    const region = this.tableAt + shard * this.slotsPerShard * SLOT_INTS;
    const home = ((a >>> 8) ^ b) >>> 0;
    for (let probe = 0; probe < PROBES_MAX; probe++) {
      const slot = region + ((home + probe) % this.slotsPerShard) * SLOT_INTS;
      if (this.ints[slot + 2] === 0) {
        this.ints[slot] = a;
        this.ints[slot + 1] = b;
        this.ints[slot + 2] = 1;
        this.ints.fill(0, slot + 3, slot + SLOT_INTS);
        return slot;
      }
      if (this.ints[slot] === a && this.ints[slot + 1] === b) return slot;
    }
    const slot = region + (home % this.slotsPerShard) * SLOT_INTS;
    this.ints[slot] = a;
    this.ints[slot + 1] = b;
    this.ints.fill(0, slot + 3, slot + SLOT_INTS);
    return slot;
  }
}
