/**
 * Slot `ingestion.server`: the HTTP server strategy of the ingestion actor (Craft #1's
 * phases). The actor owns the listening socket and hands each accepted connection to the
 * active plugin; a swap sends new connections to the new plugin while the old one drains.
 */
import type { RejectReason } from '../ingestion/series-limits.js';
import type { TenantRefusal } from '../ingestion/tenant-series.js';
import type { TokenEntry } from '../auth/tokens.js';
import type { Socket } from 'node:net';
import type { IngestBatch } from '../model.js';
import type { Logger } from '../log.js';
import type { Clock } from '../clock.js';
import type { NatsIdentity } from '../nats/credentials.js';

/** Where the queue said a batch went. */
export interface AppendAck {
  partition: number;
  offset: number;
  epoch: number;
}

/** A seed `GET /query` row. */
export interface SeedQueryRow {
  name: string;
  value: number;
  timestamp: number;
}

/** What a server plugin may do with what it accepted. Safe for concurrent use. */
export interface IngestionSink {
  /**
   * Puts a batch in the queue. Resolves only once the batch is durably in the queue (the
   * meaning of a 2xx answer); rejects with a `CraftError` (`CRAFT_OVERLOADED`,
   * `CRAFT_TIMEOUT`, `CRAFT_NO_RESPONDERS`) otherwise, and then nothing was acknowledged.
   */
  append(batch: IngestBatch): Promise<AppendAck>;
  /**
   * Appends one encoded queue message for a client: a JSON batch, or a JSON array of
   * batches (a group commit). Same guarantee as `append`.
   */
  appendEncoded(client: string, payload: Uint8Array): Promise<AppendAck>;
  /** Runs the seed's full-scan query over the bus (inclusive bounds in ms). */
  query(name: string, startMs: number, endMs: number, tenant?: string): Promise<SeedQueryRow[]>;
  /** Messages waiting in the queue, for the seed's health answer. */
  queueDepth(): Promise<number>;
  /** The queue partition a client's batches go to (as far as the sink knows now). */
  partitionOf(client: string): number;
  /**
   * Cardinality limits (core/ingestion/tenant-series.ts): admits a write of these series for a
   * tenant and records them, or says which limit refuses it. Absent: no limit.
   */
  admitSeries?(client: string, series: ArrayLike<number>): TenantRefusal | undefined;
}

export interface IngestionLimits {
  /** Bodies above this are answered 413. */
  bodyBytesMax: number;
  /** Metrics in one seed JSON batch (seed: 1000). */
  batchMetricsMax: number;
  /** Samples in one remote-write or line-protocol request. */
  samplesPerRequestMax: number;
  metricNameLengthMax: number;
  /** Labels a series may have, `__name__` included; a request with a series over it is refused (400). */
  labelsPerSeriesMax: number;
  labelNameLengthMax: number;
  labelValueLengthMax: number;
  /** Bearer tokens (core/auth/tokens.ts): when any, writes need a token with the write scope, and its tenant is the client id. */
  tokens?: TokenEntry[];
  /** The key of series hashes (core/ingestion/tenant-series.ts): random per ingestion actor, shared by its workers and loops. */
  seriesHashSeed?: number;
  /** Cardinality per tenant and in all (core/ingestion/tenant-series.ts). */
  seriesPerTenantMax: number;
  newSeriesPerTenantPerMinute: number;
  activeSeriesMax: number;
  activeSeriesWindowMs: number;
  /** Requests per second per client id; 0 disables rate limiting. */
  rateLimitPerSecond: number;
  /** Bounded task queue of pool-based phases. */
  workQueueCapacity: number;
  /** Appends in flight to the queue before requests get 503. */
  appendInFlightMax: number;
  /**
   * Influx line protocol naming: a field `f` of measurement `m` is the series `m_f`; with this on,
   * a line whose only field is `value` is stored as `m` (as VictoriaMetrics does), so
   * `cpu value=1` and the seed JSON's `{"name":"cpu"}` are one series.
   */
  influxSingleValueFieldAsMeasurement?: boolean;
  /** Keep-alive idle timeout for phases that keep connections. */
  keepAliveTimeoutMs: number;
  /** Worker threads or processes for pool-based phases (0 = one per core). */
  workers: number;
}

export interface IngestionServerContext {
  sink: IngestionSink;
  limits: IngestionLimits;
  /** NATS servers of the platform, for plugins that run helper processes with their own connection. */
  natsServers: string;
  /** Who those connections are (the ingestion role's identity). */
  natsIdentity: NatsIdentity;
  log: Logger;
  clock: Clock;
}

/** Counters every phase keeps (seed stats plus overload and per-protocol detail). */
export interface IngestionStats {
  phase: string;
  /** Requests refused over a named limit, by reason (core/ingestion/series-limits.ts). */
  rejected?: Partial<Record<RejectReason, number>>;
  requests: number;
  metricsReceived: number;
  batchesProcessed: number;
  validationErrors: number;
  rateLimited: number;
  rejectedOverload: number;
  bodyTooLarge: number;
  connectionsOpen: number;
  connectionsTotal: number;
  /** Phase-specific counters: threads started, queue depth, lock waits, group sizes… */
  detail?: Record<string, number>;
}

export interface IngestionServer {
  /** Prepares worker threads, processes or buffers; resolves when ready to accept. */
  start(): Promise<void>;
  /** Takes ownership of one accepted TCP connection. The socket is paused: nothing has been read yet. */
  accept(socket: Socket): void;
  /**
   * Stops taking new requests, finishes the ones in flight (their answers are sent), closes
   * idle connections, and releases threads and processes. Resolves when done or when
   * `deadlineMs` (absolute, ms since epoch) passes, after which connections are destroyed.
   */
  drain(deadlineMs: number): Promise<void>;
  stats(): IngestionStats;
}
