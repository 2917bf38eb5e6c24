/**
 * Window summaries: count, sum, min, max, first and last of a series' samples in fixed
 * windows — what `sum/avg/min/max/count_over_time` and downsampling need — and the rules for
 * building and merging them, shared by every store (a store may answer from stored chunk
 * summaries instead of samples; both must give these exact numbers).
 *
 * Windows of a rollup over `[minTimeMs, maxTimeMs]` with step s are
 * `[minTimeMs + k·s, minTimeMs + (k+1)·s − 1]`, the last one cut at `maxTimeMs`. Staleness
 * markers are left out (as Prometheus leaves them out of range vectors). `min`/`max` follow
 * Prometheus's `min_over_time`/`max_over_time`: NaN only when every sample is NaN.
 *
 * `sum` is the correctly rounded sum of the values (NaN if any is NaN or +Inf meets −Inf,
 * ±Inf if one is), computed with Shewchuk's exact expansions as Python's `math.fsum` is.
 * Unlike a running float sum it does not depend on the order of addition, so a store that
 * adds per-chunk partial sums gives the very same number as one that adds every sample —
 * as long as no partial sum leaves the float64 range (|sum| < 1.8e308).
 */
import { decodeValue, encodeValue, isStaleNaN, type SeriesSamples } from '../model.js';
import { NATS_PAYLOAD_BYTES_MAX } from '../defaults.js';
import { CraftError } from '../errors.js';

export interface WindowSummary {
  /** First millisecond of the window. */
  startMs: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Value and time of the earliest and latest sample in the window. */
  first: number;
  firstMs: number;
  last: number;
  lastMs: number;
}

export interface SeriesRollup {
  labels: Record<string, string>;
  /** Windows that hold at least one sample, ascending. */
  windows: WindowSummary[];
}

/** Longest rollup, in windows: a request for more is refused (a query limit, not an OOM). */
export const ROLLUP_WINDOWS_MAX = 100_000;

export const minOf = (held: number, next: number): number => (next < held || held !== held ? next : held);
export const maxOf = (held: number, next: number): number => (next > held || held !== held ? next : held);

/** An exact sum in progress: finite values as a non-overlapping expansion, non-finite apart. */
export interface ExactSum {
  parts: number[];
  /** Sum of the non-finite values seen (0 when none). */
  special: number;
}

/** Adds `x` exactly (Shewchuk's grow-expansion; the partials stay non-overlapping). */
export function addExact(sum: ExactSum, value: number): void {
  if (!Number.isFinite(value)) {
    sum.special += value;
    return;
  }
  const parts = sum.parts;
  let x = value;
  let kept = 0;
  for (let j = 0; j < parts.length; j++) {
    let y = parts[j]!;
    if (Math.abs(x) < Math.abs(y)) {
      const t = x;
      x = y;
      y = t;
    }
    const hi = x + y;
    const lo = y - (hi - x);
    if (lo !== 0) parts[kept++] = lo;
    x = hi;
  }
  parts.length = kept;
  parts.push(x);
}

/** Adds another exact sum into `into`, exactly. */
export function addExactSum(into: ExactSum, other: ExactSum): void {
  for (const part of other.parts) addExact(into, part);
  if (other.special !== 0) into.special += other.special;
}

/** The correctly rounded value of an exact sum (round half to even, as `math.fsum`). */
export function exactValue(sum: ExactSum): number {
  if (sum.special !== 0) return sum.special;
  const parts = sum.parts;
  let n = parts.length;
  if (n === 0) return 0;
  let hi = parts[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = parts[--n]!;
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && parts[n - 1]! < 0) || (lo > 0 && parts[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

/** A window being built; `finish` turns it into a summary. */
export interface WindowAccumulator extends Omit<WindowSummary, 'sum'> {
  exact: ExactSum;
}

export function windowOf(startMs: number, timestampMs: number, value: number): WindowAccumulator {
  const exact: ExactSum = { parts: [], special: 0 };
  addExact(exact, value);
  return { startMs, count: 1, exact, min: value, max: value, first: value, firstMs: timestampMs, last: value, lastMs: timestampMs };
}

/** Adds a sample later than every sample already in the window. */
export function addLater(window: WindowAccumulator, timestampMs: number, value: number): void {
  window.count += 1;
  addExact(window.exact, value);
  window.min = minOf(window.min, value);
  window.max = maxOf(window.max, value);
  window.last = value;
  window.lastMs = timestampMs;
}

/** Merges `later` (whose samples all come after `into`'s) into `into`. */
export function mergeLater(into: WindowAccumulator, later: Omit<WindowAccumulator, 'startMs'>): void {
  into.count += later.count;
  addExactSum(into.exact, later.exact);
  into.min = minOf(into.min, later.min);
  into.max = maxOf(into.max, later.max);
  into.last = later.last;
  into.lastMs = later.lastMs;
}

export function finish({ exact, ...window }: WindowAccumulator): WindowSummary {
  return { ...window, sum: exactValue(exact) };
}

/** The window index of a timestamp. */
export const windowIndex = (minTimeMs: number, stepMs: number, timestampMs: number): number => Math.floor((timestampMs - minTimeMs) / stepMs);

/** Checks a rollup request; returns the number of windows. */
export function rollupWindows(minTimeMs: number, maxTimeMs: number, stepMs: number): number {
  if (!Number.isSafeInteger(stepMs) || stepMs < 1) throw new CraftError('CRAFT_BAD_REQUEST', `rollup step must be a positive integer of ms, not ${stepMs}`);
  const windows = maxTimeMs < minTimeMs ? 0 : Math.floor((maxTimeMs - minTimeMs) / stepMs) + 1;
  if (windows > ROLLUP_WINDOWS_MAX) throw new CraftError('CRAFT_BAD_REQUEST', `rollup of ${windows} windows exceeds the limit of ${ROLLUP_WINDOWS_MAX}; use a larger step`);
  return windows;
}

/** Summaries of one series' samples (ascending times) in the windows of `[minTimeMs, maxTimeMs]`. */
export function rollupSamples(timestampsMs: ArrayLike<number>, values: ArrayLike<number>, minTimeMs: number, maxTimeMs: number, stepMs: number): WindowSummary[] {
  return accumulateSamples(timestampsMs, values, minTimeMs, maxTimeMs, stepMs).map(finish);
}

/** The windows of samples (ascending times), still open for merging; windows start at `originMs` + k · step. */
export function accumulateSamples(timestampsMs: ArrayLike<number>, values: ArrayLike<number>, minTimeMs: number, maxTimeMs: number, stepMs: number, originMs = minTimeMs): WindowAccumulator[] {
  const out: WindowAccumulator[] = [];
  let current: WindowAccumulator | undefined;
  let currentIndex = -1;
  for (let i = 0; i < timestampsMs.length; i++) {
    const t = timestampsMs[i]!;
    if (t < minTimeMs || t > maxTimeMs) continue;
    const v = values[i]!;
    if (v !== v && isStaleNaN(v)) continue;
    const index = windowIndex(originMs, stepMs, t);
    if (index !== currentIndex || current === undefined) {
      current = windowOf(originMs + index * stepMs, t, v);
      currentIndex = index;
      out.push(current);
    } else addLater(current, t, v);
  }
  return out;
}

/** A rollup computed from selected samples: what a store without chunk summaries answers. */
export function rollupSeries(series: SeriesSamples[], minTimeMs: number, maxTimeMs: number, stepMs: number): SeriesRollup[] {
  rollupWindows(minTimeMs, maxTimeMs, stepMs);
  const out: SeriesRollup[] = [];
  for (const s of series) {
    const windows = rollupSamples(s.timestampsMs, s.values, minTimeMs, maxTimeMs, stepMs);
    if (windows.length > 0) out.push({ labels: s.labels, windows });
  }
  return out;
}

/** Bytes a window takes in JSON at most, for sizing the parts of a reply. */
const WINDOW_JSON_BYTES_MAX = 260;
const VALUE_FIELDS = ['sum', 'min', 'max', 'first', 'last'] as const;

/** A rollup as parts that each fit one NATS message, non-finite values as strings. */
export function rollupParts(rollups: SeriesRollup[], partBytesMax = NATS_PAYLOAD_BYTES_MAX / 2): unknown[][] {
  const parts: unknown[][] = [];
  let part: unknown[] = [];
  let bytes = 0;
  for (const r of rollups) {
    for (let start = 0; start < r.windows.length; ) {
      const room = Math.max(1, Math.floor((partBytesMax - bytes) / WINDOW_JSON_BYTES_MAX));
      const windows = r.windows.slice(start, start + room).map((w) => {
        const out: Record<string, number | string> = { ...w };
        for (const field of VALUE_FIELDS) if (!Number.isFinite(w[field])) out[field] = encodeValue(w[field]);
        return out;
      });
      part.push({ labels: r.labels, windows });
      bytes += windows.length * WINDOW_JSON_BYTES_MAX + JSON.stringify(r.labels).length;
      start += windows.length;
      if (bytes >= partBytesMax) {
        parts.push(part);
        part = [];
        bytes = 0;
      }
    }
  }
  if (part.length > 0 || parts.length === 0) parts.push(part);
  return parts;
}

/** Joins reply parts (a series split across parts continues where it left off). */
export function mergeRollupParts(parts: SeriesRollup[][]): SeriesRollup[] {
  const out: SeriesRollup[] = [];
  const byKey = new Map<string, SeriesRollup>();
  for (const part of parts) {
    for (const r of part) {
      const windows = r.windows.map((w) => {
        const copy = { ...w };
        for (const field of VALUE_FIELDS) copy[field] = decodeValue(w[field]);
        return copy;
      });
      const key = JSON.stringify(r.labels);
      const held = byKey.get(key);
      if (held === undefined) {
        const entry = { labels: r.labels, windows };
        byKey.set(key, entry);
        out.push(entry);
      } else held.windows.push(...windows);
    }
  }
  return out;
}
