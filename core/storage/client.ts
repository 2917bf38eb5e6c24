/**
 * How other actors read from storage over the bus. `craft.storage.select` answers in parts
 * (one NATS message each), which this client merges; non-finite values travel as strings.
 * `StorageClient.querier(min, max)` gives the same `Querier` a store gives in process, so the
 * query engine is written against one interface whether storage is local or remote.
 */
import type { Bus } from '../nats/bus.js';
import { SUBJECTS } from '../subjects.js';
import { decodeValue, encodeValue, type Labels, type LabelMatcher, type SeriesSamples } from '../model.js';
import { mergeSeriesParts } from '../series-chunks.js';
import { mergeRollupParts, type SeriesRollup } from './rollup.js';
import type { CardinalityStats, Querier, QueuePositions, SelectHints, StoreStats } from '../slots/storage.js';

/** Inclusive bounds in ms. */
export interface RangeRequest {
  matchers: LabelMatcher[];
  startMs: number;
  endMs: number;
}

export interface SelectRequest extends RangeRequest {
  hints?: SelectHints;
}

export interface RollupRequest extends RangeRequest {
  stepMs: number;
}

export interface LabelValuesRequest extends RangeRequest {
  name: string;
}

/** How far storage is behind the queue: acknowledged → queryable, per applied batch. */
export interface StorageLag {
  /** 0 when the last fetch found nothing waiting (caught up); else the lag of the newest applied batch. */
  currentMs: number;
  /** Percentiles over the last `LAG_WINDOW_BATCHES` applied batches (receive → applied). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  batches: number;
}

export interface StorageInfo {
  plugin: string;
  kv: string;
  stats: StoreStats;
  positions: QueuePositions;
  /** Batches applied since the actor started, and skipped as already applied. */
  batchesApplied: number;
  batchesSkipped: number;
  /** Queue messages that could not be decoded and were skipped (logged). */
  batchesUndecodable: number;
  /** Samples applied since the actor started, and how many of them were re-stamped (server stamps). */
  samplesApplied: number;
  samplesRestamped: number;
  lag: StorageLag;
  /** Kept for older readers: `lag.currentMs`. */
  lagMs: number;
}

export type WireSeries = { labels: Record<string, string>; timestampsMs: number[]; values: (number | string)[] };

/** Series as JSON can carry them: values a plain array, non-finite ones as strings (core/model.ts). */
export function encodeSeriesValues(series: SeriesSamples[]): WireSeries[] {
  return series.map((s) => ({ labels: s.labels, timestampsMs: s.timestampsMs, values: s.values.every(Number.isFinite) ? Array.from(s.values) : Array.from(s.values, encodeValue) }));
}

/** The inverse of encodeSeriesValues. */
export function decodeSeriesValues(series: WireSeries[]): SeriesSamples[] {
  return series.map((s) => ({ labels: s.labels, timestampsMs: s.timestampsMs, values: Float64Array.from(s.values, (v) => (typeof v === 'number' ? v : decodeValue(v))) }));
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class StorageClient {
  constructor(private readonly bus: Bus) {}

  async select(request: SelectRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SeriesSamples[]> {
    const parts = await this.bus.requestParts<WireSeries[]>(SUBJECTS.storageSelect, request, { timeoutMs });
    return mergeSeriesParts(parts.map(decodeSeriesValues));
  }

  async rollup(request: RollupRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SeriesRollup[]> {
    return mergeRollupParts(await this.bus.requestParts<SeriesRollup[]>(SUBJECTS.storageRollup, request, { timeoutMs }));
  }

  series(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Labels[]> {
    return this.bus.request(SUBJECTS.storageSeries, request, { timeoutMs });
  }

  labelNames(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    return this.bus.request(SUBJECTS.storageLabels, request, { timeoutMs });
  }

  labelValues(request: LabelValuesRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    return this.bus.request(SUBJECTS.storageLabelValues, request, { timeoutMs });
  }

  deleteSeries(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ deleted: number }> {
    return this.bus.request(SUBJECTS.storageDelete, request, { timeoutMs });
  }

  cardinality(limit = 10, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CardinalityStats> {
    return this.bus.request(SUBJECTS.storageCardinality, { limit }, { timeoutMs });
  }

  flush(timeoutMs = 120_000): Promise<StoreStats> {
    return this.bus.request(SUBJECTS.storageFlush, {}, { timeoutMs });
  }

  count(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ series: number; samples: number }> {
    return this.bus.request(SUBJECTS.storageCount, request, { timeoutMs });
  }

  metadata(request: { metric?: string; limit?: number } = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Record<string, { type: string; help: string; unit: string }[]>> {
    return this.bus.request(SUBJECTS.storageMetadata, request, { timeoutMs });
  }

  info(): Promise<StorageInfo> {
    return this.bus.request<StorageInfo>(SUBJECTS.storageInfo, {});
  }

  /** A `Querier` of `[minTimeMs, maxTimeMs]` whose calls go to the storage actor. */
  querier(minTimeMs: number, maxTimeMs: number): Querier {
    const range = (matchers: LabelMatcher[] = []): RangeRequest => ({ matchers, startMs: minTimeMs, endMs: maxTimeMs });
    return {
      select: (matchers, hints) => this.select(hints === undefined ? range(matchers) : { ...range(matchers), hints }),
      series: (matchers) => this.series(range(matchers)),
      labelNames: (matchers) => this.labelNames(range(matchers)),
      labelValues: (name, matchers) => this.labelValues({ ...range(matchers), name }),
      rollup: (matchers, stepMs) => this.rollup({ ...range(matchers), stepMs }),
    };
  }
}
