/**
 * How other actors read from storage: `craft.storage.select` answers in parts (one NATS
 * message each), which this client merges. Non-finite values travel as strings.
 */
import type { Bus } from '../nats/bus.js';
import { SUBJECTS } from '../subjects.js';
import { decodeValue, encodeValue, type LabelMatcher, type SeriesSamples } from '../model.js';
import { mergeSeriesParts } from '../series-chunks.js';
import type { StoreStats, QueuePositions } from '../slots/storage.js';

export interface SelectRequest {
  matchers: LabelMatcher[];
  startMs: number;
  endMs: number;
}

export interface StorageInfo {
  plugin: string;
  stats: StoreStats;
  positions: QueuePositions;
  /** Batches applied since the actor started, and skipped as already applied. */
  batchesApplied: number;
  batchesSkipped: number;
  /** Queue messages that could not be decoded and were skipped (logged). */
  batchesUndecodable: number;
  lagMs: number;
}

type WireSeries = { labels: Record<string, string>; timestampsMs: number[]; values: (number | string)[] };

export function encodeSeriesValues(series: SeriesSamples[]): WireSeries[] {
  return series.map((s) => (s.values.every(Number.isFinite) ? s : { ...s, values: s.values.map(encodeValue) }));
}

export class StorageClient {
  constructor(private readonly bus: Bus) {}

  async select(request: SelectRequest, timeoutMs = 30_000): Promise<SeriesSamples[]> {
    const parts = await this.bus.requestParts<WireSeries[]>(SUBJECTS.storageSelect, request, { timeoutMs });
    const decoded = parts.map((part) => part.map((s) => ({ ...s, values: s.values.map((v) => (typeof v === 'number' ? v : decodeValue(v))) })));
    return mergeSeriesParts(decoded);
  }

  count(request: SelectRequest, timeoutMs = 30_000): Promise<{ series: number; samples: number }> {
    return this.bus.request(SUBJECTS.storageCount, request, { timeoutMs });
  }

  info(): Promise<StorageInfo> {
    return this.bus.request<StorageInfo>(SUBJECTS.storageInfo, {});
  }
}
