/**
 * Slot `storage.engine`: the series store of the storage actor (Craft #3's phases).
 *
 * Split the way Prometheus splits its TSDB: a store is `Appendable` (it hands out an
 * `Appender`, a write transaction) and `Queryable` (it hands out a `Querier` bound to a time
 * range). The storage actor is the only writer; readers run concurrently with it.
 *
 * Semantics every plugin keeps (the model test `test/storage-model.test.ts` checks them):
 * - Timestamps are integer milliseconds, any value 0 ≤ t ≤ 2^53−1. Values are float64,
 *   NaN, ±Inf and Prometheus staleness markers included (see `isStaleNaN`).
 * - A sample whose series and timestamp already exist replaces the stored value: it is
 *   counted once (an upsert, as Influx does; a retried write is therefore harmless).
 * - A *server-stamped* sample (the client sent no timestamp, ingestion stamped its receive
 *   time) is stored at its stamp or at 1 ms after the newest sample of its series, whichever
 *   is later. So every acknowledged server-stamped sample is kept, never overwritten by a
 *   neighbour stamped in the same millisecond (three metrics of one series in one batch are
 *   stored at t, t+1, t+2).
 * - Out-of-order samples are accepted at any age; plugins may keep them apart (an
 *   out-of-order chunk) and merge them at read time and on compaction. They are not lost.
 * - Queue positions are the batch ids: `commit` stores them atomically with the samples, so
 *   a delivery seen again after a crash is recognised (its offset ≤ the applied one) and
 *   skipped by the actor: appends are idempotent per batch.
 */
import { CraftError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { Labels, LabelMatcher, SeriesSamples, WireSample } from '../model.js';
import type { Logger } from '../log.js';
import type { KvEngine } from './kv.js';
import type { SeriesRollup } from '../storage/rollup.js';

/**
 * Queue positions applied to a store: key `"<epoch>:<partition>"` → last applied offset.
 * Written atomically with the samples, so replayed deliveries are recognised and skipped.
 */
export type QueuePositions = Record<string, number>;

export const positionKey = (epoch: number, partition: number): string => `${epoch}:${partition}`;

/** A store's handle on a series for the life of the open store; 0 means "none". */
export type SeriesRef = number;

export interface StoreStats {
  /** Live series. */
  series: number;
  /** Distinct (series, timestamp) pairs stored. */
  samples: number;
  /** Encoded chunks (0 for layouts without chunks). */
  chunks: number;
  /** Bytes the store's files take on disk (WAL included). */
  bytes: number;
  /** `bytes / samples`, 0 when empty. */
  bytesPerSample: number;
}

/** What a commit did, for the actor's counters and for tests. */
export interface AppendResult {
  /** Samples that created a new (series, timestamp). */
  added: number;
  /** Samples that replaced the value at an existing (series, timestamp). */
  replaced: number;
  /** Server-stamped samples moved forward past their series' newest sample. */
  restamped: number;
  /** Series created by this commit. */
  seriesCreated: number;
}

/**
 * A write transaction. Not safe for concurrent use; the store allows one open appender at a
 * time (the actor's apply loop). Nothing is visible to queriers before `commit` resolves.
 */
export interface Appender {
  /**
   * Adds one sample. `serverStamped` marks a timestamp ingestion assigned (see the rules above).
   *
   * Returns the series' reference (`SeriesRef`), or 0 for a store without references. As with
   * Prometheus's `Appender.Append(ref, labels, t, v)`, a caller that appends to the same series
   * again (a scrape loop, a benchmark driver) may pass the reference back as `ref`: the store
   * then skips finding the series by its labels. The reference is a hint: a store that no longer
   * knows it (the series was deleted, the store reopened) falls back to `labels`, so `labels`
   * must always be the series' labels; a reference given with other labels is a caller bug.
   */
  append(labels: Labels, timestampMs: number, value: number, serverStamped?: boolean, ref?: SeriesRef): SeriesRef;
  /**
   * Makes every appended sample and `positions` durable (fsync) and visible, atomically:
   * after a crash either the whole transaction is there or none of it.
   */
  commit(positions: QueuePositions): Promise<AppendResult>;
  /** Drops the transaction. */
  rollback(): void;
}

export interface Appendable {
  appender(): Appender;
}

/**
 * What a query wants, so a store can push work down. Every field is a hint: a store MAY
 * ignore it and return the raw samples in `[minTimeMs, maxTimeMs]`.
 */
export interface SelectLimits {
  seriesMax: number;
  samplesMax: number;
}

/** The CRAFT_QUERY_LIMIT error of a select over `limits`, or undefined when within. */
export function selectLimitError(limits: SelectLimits, series: number, samples: number, samplesWhat = 'samples'): CraftError | undefined {
  if (series > limits.seriesMax) {
    return new CraftError('CRAFT_QUERY_LIMIT', `storage: the selectors matched ${series} series, more than storage.selectSeriesMax (${limits.seriesMax}); narrow them`, { details: { limit: 'storage.selectSeriesMax', value: limits.seriesMax, observed: series } });
  }
  if (samples > limits.samplesMax) {
    return new CraftError('CRAFT_QUERY_LIMIT', `storage: the select would read ${samples} ${samplesWhat}, more than storage.selectSamplesMax (${limits.samplesMax}); narrow the selectors or the time range`, { details: { limit: 'storage.selectSamplesMax', value: limits.samplesMax, observed: samples } });
  }
  return undefined;
}

export interface SelectHints {
  /** Resolution of a range query, ms. */
  stepMs?: number;
  /** The function the samples feed (`rate`, `sum_over_time`, …), or `series` for labels only. */
  func?: string;
  /** Range of a range-vector selector, ms. */
  rangeMs?: number;
  /** Labels of the aggregation the samples feed (`sum by (…)`). */
  grouping?: string[];
  /** Whether `grouping` is a `without` list. */
  without?: boolean;
  /**
   * Only the series of one shard are wanted: those with `seriesShard(labels, count) === index`
   * (core/model.ts). A store may still return others; the reader filters again.
   */
  shard?: { index: number; count: number };
  /**
   * Bounds of this select (the storage actor's `storage.selectSeriesMax`/`selectSamplesMax`): a
   * store that can tell before decoding refuses with CRAFT_QUERY_LIMIT then; the actor checks
   * what any store answered again.
   */
  limits?: SelectLimits;
}

/** Reads bound to one inclusive time range `[minTimeMs, maxTimeMs]` (ms). Safe to use while the actor appends. */
export interface Querier {
  /** Samples of every matching series in range, timestamps strictly ascending; series without samples in range are left out. */
  select(matchers: LabelMatcher[], hints?: SelectHints): Promise<SeriesSamples[]>;
  /** Labels of every matching series that has a sample in range, sorted by series key. */
  series(matchers: LabelMatcher[]): Promise<Labels[]>;
  /** Label names of the matching series (all series when no matchers), sorted. */
  labelNames(matchers?: LabelMatcher[]): Promise<string[]>;
  /** Values of one label across the matching series, sorted, without the empty value. */
  labelValues(name: string, matchers?: LabelMatcher[]): Promise<string[]>;
  /**
   * Count, sum, min, max, first and last of each matching series in windows of `stepMs`
   * from `minTimeMs` (rules: core/storage/rollup.ts). A store may answer from chunk
   * summaries or downsampled data, but the numbers MUST equal those computed from the samples.
   */
  rollup(matchers: LabelMatcher[], stepMs: number): Promise<SeriesRollup[]>;
}

export interface Queryable {
  /** A querier of `[minTimeMs, maxTimeMs]`, inclusive. */
  querier(minTimeMs: number, maxTimeMs: number): Querier;
}

/** How many series each label name and label pair has (the usual suspects of a cardinality explosion). */
export interface CardinalityStats {
  series: number;
  /** Label names by the number of series that have them, most first, with their distinct values. */
  labelNames: { name: string; series: number; values: number }[];
  /** Label pairs by series count, most first (`__name__` pairs are the metric names). */
  labelPairs: { name: string; value: string; series: number }[];
}

export interface SampleStore extends Appendable, Queryable {
  /** Opens and recovers (WAL replay and the like) before the first append. */
  open(): Promise<void>;
  /** Positions applied so far (read at open, advanced by every commit). */
  positions(): QueuePositions;
  /**
   * Deletes the samples of matching series in `[minTimeMs, maxTimeMs]` durably; a series left
   * without samples disappears. Returns the samples deleted.
   */
  deleteSeries(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): Promise<number>;
  /** Every sample, in chunks of whole series, for handing state to another store on a swap. */
  scan(): AsyncIterable<WireSample[]>;
  stats(): StoreStats;
  /** Series counts by label name and pair, the top `limit` of each. */
  cardinality(limit: number): CardinalityStats;
  /** Makes everything durable in the store's long-term form (flush heads, compact) — for benchmarks and swaps. */
  flush(): Promise<void>;
  /** Closes; `destroy` also deletes the store's files. */
  close(options?: { destroy?: boolean }): Promise<void>;
}

export interface StorageContext {
  /** Private directory of this store. */
  dataDir: string;
  log: Logger;
  clock: Clock;
  /**
   * Opens the ordered key-value engine the `storage.kv` slot names, in a subdirectory of
   * `dataDir`. Stores that keep their data in a KV engine use it; the store closes it.
   */
  openKv(name: string): Promise<KvEngine>;
}

/** Labels of a series plus its samples, the unit a swap or a scan moves. */
export type { WireSample };
