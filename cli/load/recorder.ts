/**
 * Records every request's outcome — when it was due, how long it took, its status — and
 * derives real percentiles (from the recorded latencies, not averages) and a per-second
 * timeline. Success means a 2xx answer and nothing else.
 */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface SecondBucket {
  /** Seconds since the load started. */
  second: number;
  requests: number;
  ok: number;
  p50: number;
  p99: number;
}

/** Status 0 stands for a request that got no HTTP answer (timeout, refused, reset). */
export const NO_ANSWER = 0;

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarise(latencies: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(latencies).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    mean: sorted.length === 0 ? 0 : sum / sorted.length,
  };
}

export class Recorder {
  private startsMs = new Float64Array(1 << 14);
  private latenciesMs = new Float64Array(1 << 14);
  private statuses = new Uint16Array(1 << 14);
  private length = 0;
  private ok = 0;

  constructor(readonly originMs: number) {}

  get count(): number {
    return this.length;
  }

  record(startMs: number, latencyMs: number, status: number): void {
    if (this.length === this.startsMs.length) {
      const grow = <T extends Float64Array | Uint16Array>(a: T): T => {
        const next = new (a.constructor as new (n: number) => T)(a.length * 2);
        next.set(a);
        return next;
      };
      this.startsMs = grow(this.startsMs);
      this.latenciesMs = grow(this.latenciesMs);
      this.statuses = grow(this.statuses);
    }
    this.startsMs[this.length] = startMs - this.originMs;
    this.latenciesMs[this.length] = latencyMs;
    this.statuses[this.length] = status;
    this.length += 1;
    if (status >= 200 && status < 300) this.ok += 1;
  }

  statusCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < this.length; i++) {
      const key = this.statuses[i] === NO_ANSWER ? 'no-answer' : String(this.statuses[i]);
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /** Latencies of successful (2xx) requests only. */
  okLatencies(): Float64Array {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (this.statuses[i]! >= 200 && this.statuses[i]! < 300) out.push(this.latenciesMs[i]!);
    return Float64Array.from(out);
  }

  allLatencies(): Float64Array {
    return this.latenciesMs.slice(0, this.length);
  }

  okCount(): number {
    return this.ok;
  }

  timeline(): SecondBucket[] {
    const buckets = new Map<number, { requests: number; ok: number; latencies: number[] }>();
    for (let i = 0; i < this.length; i++) {
      const second = Math.floor(this.startsMs[i]! / 1_000);
      let bucket = buckets.get(second);
      if (bucket === undefined) {
        bucket = { requests: 0, ok: 0, latencies: [] };
        buckets.set(second, bucket);
      }
      bucket.requests += 1;
      const ok = this.statuses[i]! >= 200 && this.statuses[i]! < 300;
      if (ok) bucket.ok += 1;
      bucket.latencies.push(this.latenciesMs[i]!);
    }
    return [...buckets.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([second, b]) => {
        const sorted = Float64Array.from(b.latencies).sort();
        return { second, requests: b.requests, ok: b.ok, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
      });
  }
}
