/**
 * Per-client rate limiting over a sliding one-second window, as the seed's limiter.
 *
 * Each client has a ring of counters, one per `bucketMs` slice of time. A request is
 * admitted when the counters of every slice that overlaps (now - windowMs, now] sum to
 * less than the limit. Those slices cover the whole window, so no window of `windowMs`
 * ever holds more than `limit` admitted requests (property-tested); the price is that a
 * client may be refused up to one slice early.
 */
export interface RateLimiter {
  /** Counts one request of `client` at `nowMs`; false when it would exceed the limit (then it is not counted). */
  admit(client: string, nowMs: number): boolean;
}

/** Clients tracked at most; the least recently added is forgotten beyond this. */
export const RATE_LIMIT_CLIENTS_MAX = 100_000;
export const RATE_LIMIT_BUCKET_MS = 100;

interface Ring {
  /** counts[i] holds slice `slices[i]`. */
  counts: Int32Array;
  slices: Float64Array;
}

export class SlidingWindowLimiter implements RateLimiter {
  private readonly rings = new Map<string, Ring>();
  private readonly ringSize: number;

  constructor(
    private readonly limit: number,
    private readonly windowMs = 1_000,
    private readonly bucketMs = RATE_LIMIT_BUCKET_MS,
  ) {
    this.ringSize = Math.ceil(windowMs / bucketMs) + 1;
  }

  admit(client: string, nowMs: number): boolean {
    if (this.limit <= 0) return true;
    let ring = this.rings.get(client);
    if (ring === undefined) {
      if (this.rings.size >= RATE_LIMIT_CLIENTS_MAX) this.rings.delete(this.rings.keys().next().value!);
      ring = { counts: new Int32Array(this.ringSize), slices: new Float64Array(this.ringSize).fill(-1) };
      this.rings.set(client, ring);
    }
    const current = Math.floor(nowMs / this.bucketMs);
    const oldest = Math.floor((nowMs - this.windowMs) / this.bucketMs);
    let total = 0;
    for (let i = 0; i < this.ringSize; i++) {
      const slice = ring.slices[i]!;
      if (slice >= oldest && slice <= current) total += ring.counts[i]!;
    }
    if (total >= this.limit) return false;
    const at = current % this.ringSize;
    if (ring.slices[at] !== current) {
      ring.slices[at] = current;
      ring.counts[at] = 0;
    }
    ring.counts[at] = ring.counts[at]! + 1;
    return true;
  }
}

/** No limit (rate limiting disabled by configuration). */
export const unlimited: RateLimiter = { admit: () => true };
