/**
 * The ingestion sink over the bus: appends go to the queue actor, seed queries to the query
 * actor. A named limit bounds appends in flight; beyond it requests are answered 503.
 */
import { CraftError } from '../errors.js';
import { RETRY_AFTER_S } from '../defaults.js';
import { METRIC_NAME_LABEL, type IngestBatch } from '../model.js';
import { encodeForQueue } from './queue-encoding.js';
import type { Bus } from '../nats/bus.js';
import { QueueClient } from '../queue/protocol.js';
import type { AppendAck, IngestionSink, SeedQueryRow } from '../slots/ingestion.js';
import { QueryClient } from '../query/client.js';

const DEPTH_CACHE_MS = 1_000;

export class BusSink implements IngestionSink {
  private readonly queue: QueueClient;
  private readonly queries: QueryClient;
  private inFlight = 0;
  private depthCache: { atMs: number; depth: number } | undefined;

  constructor(
    bus: Bus,
    private readonly appendInFlightMax: number,
  ) {
    this.queue = new QueueClient(bus);
    this.queries = new QueryClient(bus);
  }

  async append(batch: IngestBatch): Promise<AppendAck> {
    const parts = encodeForQueue(batch);
    if (parts.length === 1) return this.appendEncoded(batch.client, parts[0]!);
    const acks = await Promise.all(parts.map((part) => this.appendEncoded(batch.client, part)));
    return acks.at(-1)!;
  }

  /** Appends an already encoded batch (phases that encode on worker threads). */
  async appendEncoded(client: string, payload: Uint8Array): Promise<AppendAck> {
    if (this.inFlight >= this.appendInFlightMax) {
      throw new CraftError('CRAFT_OVERLOADED', `appends in flight at APPEND_IN_FLIGHT_MAX=${this.appendInFlightMax}`, { details: { retryAfterS: RETRY_AFTER_S } });
    }
    this.inFlight += 1;
    try {
      return await this.queue.append(client, payload);
    } finally {
      this.inFlight -= 1;
    }
  }

  async query(name: string, startMs: number, endMs: number): Promise<SeedQueryRow[]> {
    const result = await this.queries.query({ expr: name, startMs, endMs });
    if (result.resultType !== 'matrix') return [];
    const rows: SeedQueryRow[] = [];
    for (const series of result.result) {
      for (let i = 0; i < series.timestampsMs.length; i++) {
        rows.push({ name: series.labels[METRIC_NAME_LABEL] ?? name, value: series.values[i]!, timestamp: series.timestampsMs[i]! });
      }
    }
    return rows.sort((a, b) => a.timestamp - b.timestamp);
  }

  async queueDepth(): Promise<number> {
    const now = Date.now();
    if (this.depthCache !== undefined && now - this.depthCache.atMs < DEPTH_CACHE_MS) return this.depthCache.depth;
    const info = await this.queue.info();
    this.depthCache = { atMs: now, depth: info.depth };
    return info.depth;
  }
}
