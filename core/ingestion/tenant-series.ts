/**
 * Cardinality limits per tenant, checked by the ingestion sink before a write is queued:
 *
 *   seriesPerTenantMax            active series a tenant may have (seen within `activeSeriesWindowMs`);
 *                                 a write that would add more is refused: 400 (series_per_tenant)
 *   newSeriesPerTenantPerMinute   series a tenant may create a minute (a token bucket holding a
 *                                 minute's worth); a write over it: 429 with Retry-After (new_series_per_minute)
 *   activeSeriesMax               active series of all tenants together, so that many tenants
 *                                 cannot exhaust memory either: 503 with Retry-After (series_total)
 *
 * A series is identified by a 53-bit hash of its label pairs, keyed by a random seed, that does
 * not depend on their order; a collision (about 1 in 10⁹ pairs of series at 150,000 series)
 * makes two series count as one. The tracker is per ingestion process (each of phase 8's loops keeps its own): with
 * several, a tenant's effective limit is that many times the configured one (docs/errors.md).
 * A write is counted when it is admitted, before the queue acknowledges it; a write the queue
 * then refuses (503) still counts its series as seen for the window.
 */
import type { WireSample } from '../model.js';
import type { RejectReason } from './series-limits.js';

export interface TenantSeriesLimits {
  seriesPerTenantMax: number;
  newSeriesPerTenantPerMinute: number;
  activeSeriesMax: number;
  activeSeriesWindowMs: number;
}

export interface TenantRefusal {
  reason: RejectReason;
  limit: string;
  max: number;
  status: 400 | 429 | 503;
  retryAfterS?: number;
  message: string;
}

/**
 * The order-independent 53-bit hash of each sample's series, keyed by `seed` (random per
 * ingestion actor, `IngestionLimits.seriesHashSeed`): two independent 32-bit hashes of each
 * "name\xffvalue" pair — FNV-1a and a multiply-xorshift, both started from the seed — summed over
 * the pairs, make the 32 high and 21 low bits. Without the seed a client cannot search for label
 * values whose series count as one (which would let it slip past the cardinality limits).
 */
export function seriesHashes(samples: readonly WireSample[], seed = 0): Float64Array {
  const out = new Float64Array(samples.length);
  const basis1 = (0x811c9dc5 ^ seed) >>> 0;
  const basis2 = (0x5bd1e995 ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < samples.length; i++) {
    const labels = samples[i]![0];
    let a = 0;
    let b = 0;
    for (const key in labels) {
      let h1 = basis1;
      let h2 = basis2;
      for (let c = 0; c < key.length; c++) {
        const code = key.charCodeAt(c);
        h1 = Math.imul(h1 ^ code, 0x01000193);
        h2 = Math.imul(h2 ^ code, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      }
      h1 = Math.imul(h1 ^ 0xff, 0x01000193);
      h2 = Math.imul(h2 ^ 0xff, 0x5bd1e995);
      h2 ^= h2 >>> 15;
      const value = labels[key]!;
      for (let c = 0; c < value.length; c++) {
        const code = value.charCodeAt(c);
        h1 = Math.imul(h1 ^ code, 0x01000193);
        h2 = Math.imul(h2 ^ code, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      }
      a = (a + (h1 >>> 0)) >>> 0;
      b = (b + (h2 >>> 0)) >>> 0;
    }
    out[i] = a * 0x200000 + (b & 0x1fffff);
  }
  return out;
}

interface Tenant {
  /** Series hash → when last seen, ms. */
  seen: Map<number, number>;
  tokens: number;
  tokensAtMs: number;
}

/** How often idle series are forgotten, ms. */
const SWEEP_EVERY_MS = 60_000;

export class TenantSeriesLimiter {
  private readonly tenants = new Map<string, Tenant>();
  private active = 0;
  private lastSweepMs = 0;

  constructor(private readonly limits: TenantSeriesLimits) {}

  /** Active series now, all tenants. */
  get activeSeries(): number {
    return this.active;
  }

  /** Active series of one tenant. */
  seriesOf(tenant: string): number {
    return this.tenants.get(tenant)?.seen.size ?? 0;
  }

  /** Admits a write of these series for `tenant` (and records them), or says which limit refuses it. */
  admit(tenant: string, series: ArrayLike<number>, nowMs: number): TenantRefusal | undefined {
    if (nowMs - this.lastSweepMs >= SWEEP_EVERY_MS) this.sweep(nowMs);
    let t = this.tenants.get(tenant);
    if (t === undefined) {
      t = { seen: new Map(), tokens: this.limits.newSeriesPerTenantPerMinute, tokensAtMs: nowMs };
      this.tenants.set(tenant, t);
    }
    // Count the write's series this tenant has not seen (each once, however often the write repeats it);
    // a known series' time is refreshed only when it is older than an eighth of the window.
    let fresh = 0;
    let counted: Set<number> | undefined;
    let stale = false;
    const refreshBefore = nowMs - this.limits.activeSeriesWindowMs / 8;
    for (let i = 0; i < series.length; i++) {
      const h = series[i]!;
      const at = t.seen.get(h);
      if (at !== undefined) {
        if (at < refreshBefore) stale = true;
        continue;
      }
      counted ??= new Set();
      if (counted.has(h)) continue;
      counted.add(h);
      fresh += 1;
    }
    if (fresh > 0) {
      const { seriesPerTenantMax, newSeriesPerTenantPerMinute, activeSeriesMax } = this.limits;
      if (t.seen.size + fresh > seriesPerTenantMax) {
        return { reason: 'series_per_tenant', limit: 'seriesPerTenantMax', max: seriesPerTenantMax, status: 400, message: `tenant ${JSON.stringify(tenant)} has ${t.seen.size} active series; ${fresh} new would pass seriesPerTenantMax=${seriesPerTenantMax} (series are active for ${Math.round(this.limits.activeSeriesWindowMs / 60_000)} min after their last sample)` };
      }
      const perMs = newSeriesPerTenantPerMinute / 60_000;
      t.tokens = Math.min(newSeriesPerTenantPerMinute, t.tokens + (nowMs - t.tokensAtMs) * perMs);
      t.tokensAtMs = nowMs;
      if (fresh > t.tokens) {
        // More new series in one request than a whole minute allows can never succeed: a 400, not a 429.
        if (fresh > newSeriesPerTenantPerMinute) return { reason: 'new_series_per_minute', limit: 'newSeriesPerTenantPerMinute', max: newSeriesPerTenantPerMinute, status: 400, message: `one request creates ${fresh} new series, more than newSeriesPerTenantPerMinute=${newSeriesPerTenantPerMinute}; split it` };
        const retryAfterS = Math.max(1, Math.ceil((fresh - t.tokens) / perMs / 1_000));
        return { reason: 'new_series_per_minute', limit: 'newSeriesPerTenantPerMinute', max: newSeriesPerTenantPerMinute, status: 429, retryAfterS, message: `tenant ${JSON.stringify(tenant)} would create ${fresh} new series; newSeriesPerTenantPerMinute=${newSeriesPerTenantPerMinute} leaves ${Math.floor(t.tokens)} now` };
      }
      if (this.active + fresh > activeSeriesMax) {
        return { reason: 'series_total', limit: 'activeSeriesMax', max: activeSeriesMax, status: 503, retryAfterS: 60, message: `the platform holds ${this.active} active series; ${fresh} new would pass activeSeriesMax=${activeSeriesMax}` };
      }
      t.tokens -= fresh;
      this.active += fresh;
    }
    if (fresh > 0) for (const h of counted!) t.seen.set(h, nowMs);
    if (stale) for (let i = 0; i < series.length; i++) if (t.seen.get(series[i]!)! < refreshBefore) t.seen.set(series[i]!, nowMs);
    return undefined;
  }

  /** Forgets series not seen within the window, and tenants left with none. */
  sweep(nowMs: number): void {
    this.lastSweepMs = nowMs;
    const cutoff = nowMs - this.limits.activeSeriesWindowMs;
    for (const [name, t] of this.tenants) {
      for (const [h, at] of t.seen) {
        if (at < cutoff) {
          t.seen.delete(h);
          this.active -= 1;
        }
      }
      // A tenant with no series whose bucket has refilled is as good as new: forget it.
      if (t.seen.size === 0 && nowMs - t.tokensAtMs >= 60_000) this.tenants.delete(name);
    }
  }
}
