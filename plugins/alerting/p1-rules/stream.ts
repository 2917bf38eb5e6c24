/**
 * Streaming evaluation of threshold rules: a rule whose expression is `selector op number` (or
 * `number op selector`; op one of > < >= <= == !=, no `bool`, no offset or @) is decided on each
 * sample as it arrives (ingestion's tap, `craft.ingestion.tap`), so it can fire within
 * milliseconds of the sample being acknowledged instead of at the next evaluation.
 *
 * The stream sees samples, not absences: a series that stops reporting is for the periodic
 * evaluation to clear. So each streamed rule keeps two views — per series, the newest sample the
 * stream saw, and the last periodic (PromQL) result — and its alerts are the stream's verdict for
 * every series with a sample in the last `lookbackMs` (5 min, PromQL's lookback), the periodic
 * verdict for the others. A sample older than the newest seen for its series, or older than the
 * lookback, changes nothing (a backfill does not fire alerts for the past).
 */
import { compileMatchers, METRIC_NAME_LABEL, pinnedMetricName, seriesKey, type Labels, type LabelMatcher } from '../../../core/model.js';
import { parsePromQL } from '../../../core/promql/parser.js';
import type { Expr } from '../../../core/promql/ast.js';

/** Series one streamed rule follows at most; beyond it new series are left to the periodic evaluation. */
export const STREAM_SERIES_MAX = 100_000;

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '>': (a, b) => a > b,
  '<': (a, b) => a < b,
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

export interface Threshold {
  matchers: LabelMatcher[];
  /** The metric name the selector pins, if any (to skip batches without it cheaply). */
  metric: string | undefined;
  holds: (value: number) => boolean;
}

const unparen = (e: Expr): Expr => (e.type === 'ParenExpr' ? unparen(e.expr) : e);

/** The threshold a rule's expression is, or undefined when the stream cannot decide it. */
export function thresholdOf(expr: string): Threshold | undefined {
  const root = unparen(parsePromQL(expr));
  if (root.type !== 'BinaryExpr' || root.returnBool || COMPARE[root.op] === undefined) return undefined;
  const lhs = unparen(root.lhs);
  const rhs = unparen(root.rhs);
  const compare = COMPARE[root.op]!;
  const plain = (e: Expr): e is Extract<Expr, { type: 'VectorSelector' }> => e.type === 'VectorSelector' && e.offsetMs === 0 && e.at === undefined;
  if (plain(lhs) && rhs.type === 'NumberLiteral') return { matchers: lhs.matchers, metric: pinnedMetricName(lhs.matchers), holds: (v) => compare(v, rhs.value) };
  if (lhs.type === 'NumberLiteral' && plain(rhs)) return { matchers: rhs.matchers, metric: pinnedMetricName(rhs.matchers), holds: (v) => compare(lhs.value, v) };
  return undefined;
}

interface Seen {
  labels: Labels;
  timestampMs: number;
  value: number;
  holds: boolean;
}

/** One streamed rule's two views of its series. */
export class StreamedRule {
  private readonly matches: (labels: Labels) => boolean;
  private readonly seen = new Map<string, Seen>();
  private periodic = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly threshold: Threshold, private readonly lookbackMs: number) {
    this.matches = compileMatchers(threshold.matchers);
  }

  /** Takes one sample; returns whether it changed the rule's view. */
  offer(labels: Labels, timestampMs: number, value: number, nowMs: number): boolean {
    if (timestampMs < nowMs - this.lookbackMs || !this.matches(labels)) return false;
    const series = withoutName(labels);
    const key = seriesKey(series);
    const previous = this.seen.get(key);
    if (previous !== undefined && previous.timestampMs > timestampMs) return false;
    // Beyond the limit a new series is the periodic evaluation's alone.
    if (previous === undefined && this.seen.size >= STREAM_SERIES_MAX) return false;
    const holds = this.threshold.holds(value);
    this.seen.set(key, { labels: series, timestampMs, value, holds });
    return previous === undefined || previous.holds !== holds || (holds && previous.value !== value);
  }

  /**
   * The periodic (PromQL) result at `atMs`; forgets stream views older than the lookback. A
   * `partial` result (its answer may lack series: a storage member away) replaces what it shows
   * and keeps the periodic verdict of the series it does not show.
   */
  setPeriodic(result: { labels: Labels; value: number }[], nowMs: number, partial = false): void {
    const previous = this.periodic;
    this.periodic = new Map(result.map((r) => {
      const labels = withoutName(r.labels);
      return [seriesKey(labels), { labels, value: r.value }];
    }));
    if (partial) for (const [key, kept] of previous) if (!this.periodic.has(key)) this.periodic.set(key, kept);
    for (const [key, seen] of this.seen) if (seen.timestampMs < nowMs - this.lookbackMs) this.seen.delete(key);
  }

  /** The series that hold now: the stream's verdict where it has a fresh sample, the periodic one elsewhere. */
  holding(nowMs: number): { labels: Labels; value: number }[] {
    const out: { labels: Labels; value: number }[] = [];
    const fresh = new Set<string>();
    for (const [key, seen] of this.seen) {
      if (seen.timestampMs < nowMs - this.lookbackMs) continue;
      fresh.add(key);
      if (seen.holds) out.push({ labels: seen.labels, value: seen.value });
    }
    for (const [key, result] of this.periodic) if (!fresh.has(key)) out.push(result);
    return out;
  }
}

function withoutName(labels: Labels): Labels {
  if (!(METRIC_NAME_LABEL in labels)) return labels;
  const out = { ...labels };
  delete out[METRIC_NAME_LABEL];
  return out;
}
