/**
 * The ingestion sink over the bus. Appends take one of two routes, as the queue actor says:
 *
 *   direct — the current log is a JetStream stream: publish to the partition's subject and
 *            the NATS server acknowledges once stored. One hop; the queue actor is not in
 *            the data path (as a Kafka producer talks to the broker, not to a coordinator).
 *   relay  — the log lives inside the queue actor (memory, files): request `craft.queue.append`.
 *
 * When the queue swaps its log it seals the old stream; a direct publish that still goes
 * there is refused, the sink asks for the new route and publishes again — nothing is
 * acknowledged twice and nothing lands in a stream that is being drained. A named limit
 * bounds appends in flight; beyond it requests are answered 503.
 */
import { randomUUID } from 'node:crypto';
import { headers } from '@nats-io/transport-node';
import { CraftError } from '../errors.js';
import { REQUEST_TIMEOUT_MS, RETRY_AFTER_S } from '../defaults.js';
import { METRIC_NAME_LABEL, type IngestBatch } from '../model.js';
import { decodeJson, mapRequestError, type Bus } from '../nats/bus.js';
import { partitionFor, QueueClient, type QueueRoute } from '../queue/protocol.js';
import { queueLogSubject, SUBJECTS } from '../subjects.js';
import type { AppendAck, IngestionSink, SeedQueryRow } from '../slots/ingestion.js';
import { QueryClient } from '../query/client.js';
import { encodeForQueue } from '../queue/message.js';
import { TenantSeriesLimiter, type TenantRefusal, type TenantSeriesLimits } from './tenant-series.js';

const DEPTH_CACHE_MS = 1_000;
/** Longest tap lease one request grants, ms (a lease holder renews it). */
const TAP_LEASE_MAX_MS = 60_000;
/** A cached route is asked for again after this long, even without an epoch event. */
const ROUTE_TTL_MS = 5_000;
/** One attempt of a direct publish; a lost answer is asked for again under the same message id. */
const DIRECT_ATTEMPT_MS = 1_000;
/** JetStream's de-duplication header (within the stream's duplicate window, 2 minutes by default). */
const MSG_ID_HEADER = 'Nats-Msg-Id';

interface PubAck {
  stream?: string;
  seq?: number;
  error?: { code?: number; err_code?: number; description?: string };
}

export class BusSink implements IngestionSink {
  private readonly queue: QueueClient;
  private readonly queries: QueryClient;
  private inFlight = 0;
  private depthCache: { atMs: number; depth: number } | undefined;
  private route: { value: QueueRoute; atMs: number } | undefined;
  /**
   * The last route the queue actor gave, kept when the queue actor cannot be asked (it is
   * restarting — in a cluster's failover, for as long as JetStream's API is being re-elected):
   * direct appends need only the stream, and a stale epoch answers "sealed" and is re-routed.
   */
  private lastRoute: QueueRoute | undefined;
  private routing: Promise<QueueRoute> | undefined;
  private readonly unsubscribe: () => void;
  /** Until when (Date.now() ms) acknowledged messages are also published on the tap. */
  private tapUntilMs = 0;

  /** Cardinality limits per tenant (absent: none). */
  private readonly series: TenantSeriesLimiter | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly appendInFlightMax: number,
    private readonly partitionsDefault: number,
    seriesLimits?: TenantSeriesLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.series = seriesLimits === undefined ? undefined : new TenantSeriesLimiter(seriesLimits);
    this.queue = new QueueClient(bus);
    this.queries = new QueryClient(bus);
    const subscription = bus.nc.subscribe(SUBJECTS.queueEvents, { callback: () => (this.route = undefined) });
    const lease = bus.listen<{ forMs?: unknown }>(SUBJECTS.ingestionTapLease, (body) => {
      const forMs = typeof body?.forMs === 'number' && Number.isFinite(body.forMs) ? Math.min(Math.max(body.forMs, 0), TAP_LEASE_MAX_MS) : 0;
      this.tapUntilMs = Math.max(this.tapUntilMs, Date.now() + forMs);
    });
    this.unsubscribe = () => {
      subscription.unsubscribe();
      lease.unsubscribe();
    };
    // A lease published before this sink subscribed would be missed until its renewal: ask for it.
    bus.publish(SUBJECTS.ingestionTapHello, {});
  }

  close(): void {
    this.unsubscribe();
  }

  async append(batch: IngestBatch): Promise<AppendAck> {
    const parts = encodeForQueue(batch);
    if (parts.length === 1) return this.appendEncoded(batch.client, parts[0]!);
    const acks = await Promise.all(parts.map((part) => this.appendEncoded(batch.client, part)));
    return acks.at(-1)!;
  }

  private async currentRoute(): Promise<QueueRoute> {
    if (this.route !== undefined && Date.now() - this.route.atMs < ROUTE_TTL_MS) return this.route.value;
    this.routing ??= this.queue
      .route()
      .then((value) => {
        this.route = { value, atMs: Date.now() };
        this.lastRoute = value;
        return value;
      })
      .finally(() => (this.routing = undefined));
    return this.routing;
  }

  async appendEncoded(client: string, payload: Uint8Array): Promise<AppendAck> {
    const ack = await this.appendToQueue(client, payload);
    // Acknowledged: the tap (when leased) sees it now, before storage does.
    if (this.tapUntilMs > Date.now()) this.bus.nc.publish(SUBJECTS.ingestionTap, payload);
    return ack;
  }

  private async appendToQueue(client: string, payload: Uint8Array): Promise<AppendAck> {
    if (this.inFlight >= this.appendInFlightMax) {
      throw new CraftError('CRAFT_OVERLOADED', `appends in flight at APPEND_IN_FLIGHT_MAX=${this.appendInFlightMax}`, { details: { retryAfterS: RETRY_AFTER_S } });
    }
    this.inFlight += 1;
    // One id for every attempt at this append on one stream (see publishDirect).
    const messageId = randomUUID();
    try {
      for (let attempt = 0; ; attempt++) {
        const route = await this.currentRoute().catch(() => this.lastRoute);
        if (route === undefined || !route.direct) return await this.queue.append(client, payload);
        const partition = partitionFor(client, route.partitions);
        const ack = await this.publishDirect(queueLogSubject(route.epoch, partition), payload, messageId);
        if (ack !== 'reroute') return { partition, offset: ack, epoch: route.epoch };
        // The epoch was sealed or removed under us: learn the new route and publish there.
        this.route = undefined;
        if (attempt >= 3) throw new CraftError('CRAFT_TIMEOUT', 'queue route kept changing during the append', { details: { retryAfterS: RETRY_AFTER_S } });
      }
    } finally {
      this.inFlight -= 1;
    }
  }

  /**
   * Publishes to a stream subject; returns the sequence, or 'reroute' when the stream refuses it.
   * Attempts of `DIRECT_ATTEMPT_MS` within `REQUEST_TIMEOUT_MS`, all under one message id, so a
   * publish whose answer was lost (its stream's leader died in a cluster) is sent again without
   * being stored twice — JetStream answers a repeat within its duplicate window with the first
   * one's sequence — and writes resume once a new leader is elected, not a whole timeout later.
   */
  private async publishDirect(subject: string, payload: Uint8Array, messageId: string): Promise<number | 'reroute'> {
    let reply: PubAck;
    const hdrs = headers();
    hdrs.set(MSG_ID_HEADER, messageId);
    const deadline = Date.now() + REQUEST_TIMEOUT_MS;
    for (;;) {
      try {
        const timeout = Math.max(1, Math.min(DIRECT_ATTEMPT_MS, deadline - Date.now()));
        const message = await this.bus.nc.request(subject, payload, { timeout, headers: hdrs });
        reply = decodeJson<PubAck>(message.data);
        break;
      } catch (error) {
        const mapped = mapRequestError(error, subject);
        if (mapped.code === 'CRAFT_NO_RESPONDERS') return 'reroute';
        if (mapped.code === 'CRAFT_TIMEOUT' && Date.now() < deadline) continue;
        throw new CraftError(mapped.code, mapped.message, { cause: error, details: { retryAfterS: RETRY_AFTER_S } });
      }
    }
    if (reply.error !== undefined) {
      const description = reply.error.description ?? 'unknown error';
      if (/sealed/i.test(description)) return 'reroute';
      if (/maximum (bytes|messages)|resource|storage/i.test(description)) {
        throw new CraftError('CRAFT_OVERLOADED', `queue stream is full: ${description}`, { details: { retryAfterS: RETRY_AFTER_S } });
      }
      throw new CraftError('CRAFT_TIMEOUT', `queue refused the append: ${description}`, { details: { retryAfterS: RETRY_AFTER_S } });
    }
    if (typeof reply.seq !== 'number') throw new CraftError('CRAFT_TIMEOUT', 'queue answered without a sequence');
    return reply.seq;
  }

  async query(name: string, startMs: number, endMs: number, tenant?: string): Promise<SeedQueryRow[]> {
    const result = await this.queries.query({ expr: name, startMs, endMs, ...(tenant === undefined ? {} : { tenant }) });
    if (result.resultType !== 'matrix') return [];
    const rows: SeedQueryRow[] = [];
    for (const series of result.result) {
      for (let i = 0; i < series.timestampsMs.length; i++) {
        rows.push({ name: series.labels[METRIC_NAME_LABEL] ?? name, value: series.values[i]!, timestamp: series.timestampsMs[i]! });
      }
    }
    return rows.sort((a, b) => a.timestamp - b.timestamp);
  }

  admitSeries(client: string, series: ArrayLike<number>): TenantRefusal | undefined {
    return this.series?.admit(client, series, this.now());
  }

  partitionOf(client: string): number {
    return partitionFor(client, this.route?.value.partitions ?? this.partitionsDefault);
  }

  async queueDepth(): Promise<number> {
    const now = Date.now();
    if (this.depthCache !== undefined && now - this.depthCache.atMs < DEPTH_CACHE_MS) return this.depthCache.depth;
    const info = await this.queue.info();
    this.depthCache = { atMs: now, depth: info.depth };
    return info.depth;
  }
}
