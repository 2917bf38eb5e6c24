/**
 * The data model: a series is a metric name plus labels (Prometheus model, `__name__` is
 * the name); a sample is an integer millisecond timestamp and a float64 value.
 */
import { compileRegex } from './promql/regex.js';

export const METRIC_NAME_LABEL = '__name__';

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Whether a string is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`). */
export const isLabelName = (name: string): boolean => LABEL_NAME.test(name);

/** Label name → value. Always contains `__name__`. Keys are compared in code-point order. */
export type Labels = Record<string, string>;

export const METRIC_TYPES = ['counter', 'gauge', 'histogram', 'summary'] as const;
export type MetricType = (typeof METRIC_TYPES)[number];

/**
 * One sample of one series, as it travels through the queue: `[labels, timestampMs, value]`,
 * with a fourth element `1` when ingestion stamped the time because the client sent none
 * (storage then keeps it distinct from its series' other samples; see core/slots/storage.ts).
 */
export type WireSample = [labels: Labels, timestampMs: number, value: number, serverStamped?: 1];

/**
 * The unit of ingestion: what one accepted HTTP request (or a coalesced group of them)
 * puts in the queue as one message. `types` carries series metadata (seed `type`).
 */
export interface IngestBatch {
  /** Client id (tenant) from the Authorization header; drives partitioning. */
  client: string;
  /** Server time when the batch was accepted, ms since epoch. */
  receivedAtMs: number;
  samples: WireSample[];
  types?: Record<string, MetricType>;
}

/** Samples of one series, as storage returns them; timestamps ascending. */
export interface SeriesSamples {
  labels: Labels;
  /** Parallel arrays: timestampsMs[i] pairs with values[i]. */
  timestampsMs: number[];
  /**
   * A typed array, not a number[]: V8 may replace a NaN's payload when it stores the NaN in a
   * plain array of doubles (sometimes only its quiet bit, sometimes all of it, depending on
   * which code path stores it), and staleness markers are NaNs told apart by their payload.
   */
  values: Float64Array;
}

/** Collects float64 values into a typed array (growing it), so NaN payloads survive (see SeriesSamples). */
export class Float64Builder {
  private buffer = new Float64Array(16);
  length = 0;

  push(value: number): void {
    if (this.length === this.buffer.length) {
      const grown = new Float64Array(this.buffer.length * 2);
      grown.set(this.buffer);
      this.buffer = grown;
    }
    this.buffer[this.length++] = value;
  }

  /** The values pushed, as a typed array of exactly that length. */
  finish(): Float64Array {
    return this.buffer.slice(0, this.length);
  }
}

export type MatchOp = '=' | '!=' | '=~' | '!~';
export interface LabelMatcher {
  name: string;
  op: MatchOp;
  value: string;
}

/** The canonical text of a series: `name{a="1",b="2"}` with labels sorted; a stable map key. */
export function seriesKey(labels: Labels): string {
  const name = labels[METRIC_NAME_LABEL] ?? '';
  // This runs once per sample on every write path: no intermediate arrays beyond the names.
  const names: string[] = [];
  for (const key in labels) if (key !== METRIC_NAME_LABEL) names.push(key);
  if (names.length === 0) return name;
  if (names.length > 1) names.sort();
  let out = `${name}{`;
  for (let i = 0; i < names.length; i++) {
    const key = names[i]!;
    out += `${i === 0 ? '' : ','}${key}="${escapeLabelValue(labels[key]!)}"`;
  }
  return `${out}}`;
}

const NEEDS_ESCAPE = /[\\\n"]/;

export function escapeLabelValue(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * The shard of a series among `count`: a stable hash (FNV-1a) of its canonical key, so every
 * process puts a series in the same shard. Readers split one select into shards this way.
 */
export function seriesShard(labels: Labels, count: number): number {
  const key = seriesKey(labels);
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % count;
}

/** Compiles matchers once; regexes are anchored as in PromQL. */
export function compileMatchers(matchers: LabelMatcher[]): (labels: Labels) => boolean {
  const tests = matchers.map((m) => {
    switch (m.op) {
      case '=':
        return (labels: Labels) => (labels[m.name] ?? '') === m.value;
      case '!=':
        return (labels: Labels) => (labels[m.name] ?? '') !== m.value;
      case '=~': {
        const re = compileRegex(m.value);
        return (labels: Labels) => re.test(labels[m.name] ?? '');
      }
      case '!~': {
        const re = compileRegex(m.value);
        return (labels: Labels) => !re.test(labels[m.name] ?? '');
      }
    }
  });
  return (labels) => tests.every((test) => test(labels));
}

/** The metric name an equality matcher pins, if any: storage uses it to narrow a scan. */
export function pinnedMetricName(matchers: LabelMatcher[]): string | undefined {
  return matchers.find((m) => m.name === METRIC_NAME_LABEL && m.op === '=')?.value;
}

/**
 * Prometheus's staleness marker: a NaN with the bit pattern 0x7ff0000000000002, written when
 * a series disappears from a scrape; queries treat it as "no value from here on".
 */
export const STALE_NAN_BITS_HIGH = 0x7ff00000;
export const STALE_NAN_BITS_LOW = 0x00000002;
const nanView = new DataView(new ArrayBuffer(8));
nanView.setUint32(0, STALE_NAN_BITS_HIGH);
nanView.setUint32(4, STALE_NAN_BITS_LOW);
export const STALE_NAN: number = nanView.getFloat64(0);

/**
 * Whether a value is a staleness marker. V8 sets the quiet bit of a signalling NaN when it
 * stores it in a plain array of doubles (0x7ff0… becomes 0x7ff8…, the payload stays), so the
 * test ignores that one bit: 0x7ff8000000000002 is a marker too; JavaScript's own NaN
 * (0x7ff8000000000000) and Prometheus's `NaN` value (0x7ff8000000000001) are not.
 */
export function isStaleNaN(value: number): boolean {
  if (value === value) return false;
  nanView.setFloat64(0, value);
  return (nanView.getUint32(0) & 0xfff7ffff) === STALE_NAN_BITS_HIGH && nanView.getUint32(4) === STALE_NAN_BITS_LOW;
}

/**
 * JSON cannot carry NaN or ±Inf; Prometheus samples can (remote write sends staleness NaNs).
 * On the wire non-finite values travel as the strings "NaN", "+Inf", "-Inf" and "StaleNaN".
 */
export function encodeValue(value: number): number | string {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return isStaleNaN(value) ? 'StaleNaN' : 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}

export function decodeValue(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value === 'NaN') return NaN;
  if (value === 'StaleNaN') return STALE_NAN;
  if (value === '+Inf') return Infinity;
  if (value === '-Inf') return -Infinity;
  throw new TypeError(`not a sample value: ${JSON.stringify(value)}`);
}

/** Serialises a batch for the queue (values made JSON-safe). `finite` skips the check when the caller validated. */
export function encodeBatch(batch: IngestBatch, finite = false): string {
  if (finite) return JSON.stringify(batch);
  let safe = true;
  for (const sample of batch.samples) {
    if (!Number.isFinite(sample[2])) {
      safe = false;
      break;
    }
  }
  if (safe) return JSON.stringify(batch);
  return JSON.stringify({ ...batch, samples: batch.samples.map((sample) => (sample.length > 3 ? [sample[0], sample[1], encodeValue(sample[2]), 1] : [sample[0], sample[1], encodeValue(sample[2])])) });
}

export function decodeBatch(text: string): IngestBatch {
  const batch = JSON.parse(text) as IngestBatch;
  for (const sample of batch.samples) {
    if (typeof sample[2] !== 'number') sample[2] = decodeValue(sample[2]);
  }
  return batch;
}

/** Sorted label names across a set of series (the answer of a `labelNames` request). */
export function labelNamesOf(series: Iterable<Labels>): string[] {
  const names = new Set<string>();
  for (const labels of series) for (const name in labels) names.add(name);
  return [...names].sort();
}

/** Sorted distinct non-empty values of one label across a set of series. */
export function labelValuesOf(series: Iterable<Labels>, name: string): string[] {
  const values = new Set<string>();
  for (const labels of series) {
    const value = labels[name];
    if (value !== undefined && value !== '') values.add(value);
  }
  return [...values].sort();
}

/** Series counts by label name and label pair, the top `limit` of each (most series first, then by name). */
export function cardinalityOf(series: Iterable<{ labels: Labels }>, limit: number): { series: number; labelNames: { name: string; series: number; values: number }[]; labelPairs: { name: string; value: string; series: number }[] } {
  const names = new Map<string, Map<string, number>>();
  let count = 0;
  for (const { labels } of series) {
    count += 1;
    for (const name in labels) {
      const value = labels[name]!;
      let values = names.get(name);
      if (values === undefined) names.set(name, (values = new Map()));
      values.set(value, (values.get(value) ?? 0) + 1);
    }
  }
  const labelNames = [...names.entries()].map(([name, values]) => ({ name, series: [...values.values()].reduce((a, b) => a + b, 0), values: values.size }));
  const labelPairs = [...names.entries()].flatMap(([name, values]) => [...values.entries()].map(([value, n]) => ({ name, value, series: n })));
  const bySeries = <T extends { series: number; name: string }>(a: T, b: T): number => b.series - a.series || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return { series: count, labelNames: labelNames.sort(bySeries).slice(0, limit), labelPairs: labelPairs.sort(bySeries).slice(0, limit) };
}
