/**
 * The ingestion API, shared by every server phase. Phases differ in how they schedule the
 * work (threads, pools, rings, event loops), not in what they answer. The work is split in
 * two so that phases can run the CPU part elsewhere:
 *
 *   prepare(request)  — pure and synchronous: route, rate limit, parse, validate.
 *                       Runs on any thread; needs no I/O.
 *   complete(prepared) — the I/O: append to the queue (2xx only once durable), forward a
 *                       query, read health. Runs where the sink is.
 *
 * Routes:
 *   POST /metrics         seed JSON, batch (200) or single (202) form
 *   GET  /health          {"status":"healthy","service":"ingestion","phase","queue_size"}
 *   GET  /stats           seed statistics plus overload counters (JSON)
 *   GET  /metrics         the same counters in Prometheus text exposition
 *   GET  /query           the seed's query, forwarded over the bus to the query actor
 */
import { CraftError } from '../errors.js';
import { RETRY_AFTER_S } from '../defaults.js';
import type { IngestBatch } from '../model.js';
import type { IngestionLimits, IngestionSink, IngestionStats } from '../slots/ingestion.js';
import type { RateLimiter } from './rate-limit.js';
import { parseSeedBody, toBatch } from './seed-json.js';

export interface RawRequest {
  method: string;
  /** Path and query string as received, e.g. `/query?name=cpu`. */
  url: string;
  /** Value of the Authorization header (the client id), if any. */
  authorization: string | undefined;
  body: Uint8Array;
}

export interface Reply {
  status: number;
  body: string;
  contentType: string;
  retryAfterS?: number;
}

export type Outcome = 'ok' | 'validation' | 'rate-limited' | 'not-found' | 'too-large';

export type Prepared =
  | { kind: 'reply'; reply: Reply; outcome: Outcome }
  | { kind: 'append'; batch: IngestBatch; okReply: Reply; metrics: number }
  | { kind: 'query'; name: string; startMs: number; endMs: number }
  | { kind: 'health' }
  | { kind: 'stats' }
  | { kind: 'exposition' };

/** Parses JSON text; phases 1–2 use the seed's substring parser, phase 3 on a single-pass one. */
export type JsonParser = (text: string) => unknown;

export interface PrepareDeps {
  limits: Pick<IngestionLimits, 'batchMetricsMax' | 'metricNameLengthMax' | 'bodyBytesMax'>;
  limiter: RateLimiter;
  parseJson: JsonParser;
  nowMs: number;
}

const JSON_TYPE = 'application/json';
const decoder = new TextDecoder();

export const json = (status: number, value: unknown, retryAfterS?: number): Reply =>
  retryAfterS === undefined ? { status, body: JSON.stringify(value), contentType: JSON_TYPE } : { status, body: JSON.stringify(value), contentType: JSON_TYPE, retryAfterS };

export const REPLIES = {
  notFound: json(404, { error: 'route not found' }),
  rateLimited: json(429, { error: 'Rate limit exceeded' }, RETRY_AFTER_S),
  overloaded: json(503, { error: 'Server overloaded, try again later' }, RETRY_AFTER_S),
  queueUnavailable: json(503, { error: 'Queue unavailable, try again later' }, RETRY_AFTER_S),
  tooLarge: (bytesMax: number): Reply => json(413, { error: `Request body too large (max ${bytesMax} bytes)` }),
  methodNotAllowed: (allow: string): Reply => json(405, { error: `method not allowed; use ${allow}` }),
} as const;

export const clientOf = (authorization: string | undefined): string => (authorization === undefined || authorization === '' ? 'default' : authorization);

export function prepare(request: RawRequest, deps: PrepareDeps): Prepared {
  const queryAt = request.url.indexOf('?');
  const path = queryAt < 0 ? request.url : request.url.slice(0, queryAt);
  if (path === '/metrics') {
    if (request.method === 'GET') return { kind: 'exposition' };
    if (request.method !== 'POST') return { kind: 'reply', reply: REPLIES.methodNotAllowed('POST or GET'), outcome: 'not-found' };
    if (request.body.length > deps.limits.bodyBytesMax) return { kind: 'reply', reply: REPLIES.tooLarge(deps.limits.bodyBytesMax), outcome: 'too-large' };
    const client = clientOf(request.authorization);
    if (!deps.limiter.admit(client, deps.nowMs)) return { kind: 'reply', reply: REPLIES.rateLimited, outcome: 'rate-limited' };
    let parsed: unknown;
    try {
      parsed = deps.parseJson(decoder.decode(request.body));
    } catch {
      return { kind: 'reply', reply: json(400, { error: 'invalid JSON format' }), outcome: 'validation' };
    }
    const result = parseSeedBody(parsed, deps.limits, deps.nowMs);
    if (!result.ok) {
      const body = result.metricIndex === undefined ? { error: result.error } : { error: result.error, metric_index: result.metricIndex };
      return { kind: 'reply', reply: json(400, body), outcome: 'validation' };
    }
    const okReply = result.form === 'single' ? json(202, { status: 'accepted' }) : json(200, { success: true, metrics_processed: result.samples.length });
    return { kind: 'append', batch: toBatch(client, deps.nowMs, result.samples, result.types), okReply, metrics: result.samples.length };
  }
  if (request.method !== 'GET') return { kind: 'reply', reply: REPLIES.notFound, outcome: 'not-found' };
  if (path === '/health') return { kind: 'health' };
  if (path === '/stats') return { kind: 'stats' };
  if (path === '/query') {
    const params = new URLSearchParams(queryAt < 0 ? '' : request.url.slice(queryAt + 1));
    const name = params.get('name');
    if (name === null || name === '') return { kind: 'reply', reply: json(400, { error: 'query needs name' }), outcome: 'validation' };
    const startMs = params.has('start') ? Number(params.get('start')) : 0;
    const endMs = params.has('end') ? Number(params.get('end')) : Number.MAX_SAFE_INTEGER;
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return { kind: 'reply', reply: json(400, { error: 'start and end must be numbers (ms)' }), outcome: 'validation' };
    return { kind: 'query', name, startMs, endMs };
  }
  return { kind: 'reply', reply: REPLIES.notFound, outcome: 'not-found' };
}

/** Counters a server phase keeps; `snapshot` gives the slot's stats shape. */
export class StatsCounter {
  requests = 0;
  metricsReceived = 0;
  batchesProcessed = 0;
  validationErrors = 0;
  rateLimited = 0;
  rejectedOverload = 0;
  bodyTooLarge = 0;
  connectionsOpen = 0;
  connectionsTotal = 0;

  constructor(readonly phase: string) {}

  count(outcome: Outcome): void {
    if (outcome === 'validation') this.validationErrors += 1;
    else if (outcome === 'rate-limited') this.rateLimited += 1;
    else if (outcome === 'too-large') this.bodyTooLarge += 1;
  }

  snapshot(): IngestionStats {
    const { phase, requests, metricsReceived, batchesProcessed, validationErrors, rateLimited, rejectedOverload, bodyTooLarge, connectionsOpen, connectionsTotal } = this;
    return { phase, requests, metricsReceived, batchesProcessed, validationErrors, rateLimited, rejectedOverload, bodyTooLarge, connectionsOpen, connectionsTotal };
  }
}

/** Seed field names for `GET /stats`, plus ours. */
export function statsBody(stats: IngestionStats): Record<string, unknown> {
  return {
    metrics_received: stats.metricsReceived,
    batches_processed: stats.batchesProcessed,
    validation_errors: stats.validationErrors,
    rate_limited_requests: stats.rateLimited,
    rejected_overload: stats.rejectedOverload,
    body_too_large: stats.bodyTooLarge,
    requests: stats.requests,
    connections_open: stats.connectionsOpen,
    connections_total: stats.connectionsTotal,
    phase: stats.phase,
  };
}

/** The counters in Prometheus text exposition format 0.0.4. */
export function exposition(stats: IngestionStats): string {
  const phase = stats.phase.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{phase="${phase}"} ${value}`);
  };
  metric('craft_ingestion_requests_total', 'counter', 'HTTP requests received.', stats.requests);
  metric('craft_ingestion_metrics_received_total', 'counter', 'Samples acknowledged (2xx) and queued.', stats.metricsReceived);
  metric('craft_ingestion_batches_processed_total', 'counter', 'Batches acknowledged (2xx) and queued.', stats.batchesProcessed);
  metric('craft_ingestion_validation_errors_total', 'counter', 'Requests answered 400.', stats.validationErrors);
  metric('craft_ingestion_rate_limited_total', 'counter', 'Requests answered 429.', stats.rateLimited);
  metric('craft_ingestion_rejected_overload_total', 'counter', 'Requests answered 503.', stats.rejectedOverload);
  metric('craft_ingestion_body_too_large_total', 'counter', 'Requests answered 413.', stats.bodyTooLarge);
  metric('craft_ingestion_connections_open', 'gauge', 'Open client connections.', stats.connectionsOpen);
  metric('craft_ingestion_connections_total', 'counter', 'Client connections accepted.', stats.connectionsTotal);
  return lines.join('\n') + '\n';
}

/** Maps a failed append onto the answer the client gets; nothing was acknowledged. */
export function appendFailureReply(error: unknown): Reply {
  if (error instanceof CraftError && error.code === 'CRAFT_OVERLOADED') return REPLIES.overloaded;
  return REPLIES.queueUnavailable;
}

/** The I/O half: appends, forwards, or reads; every path answers. */
export async function complete(prepared: Prepared, sink: IngestionSink, stats: StatsCounter): Promise<Reply> {
  switch (prepared.kind) {
    case 'reply':
      stats.count(prepared.outcome);
      return prepared.reply;
    case 'append':
      try {
        await sink.append(prepared.batch);
      } catch (error) {
        stats.rejectedOverload += 1;
        return appendFailureReply(error);
      }
      stats.metricsReceived += prepared.metrics;
      stats.batchesProcessed += 1;
      return prepared.okReply;
    case 'query':
      try {
        return json(200, await sink.query(prepared.name, prepared.startMs, prepared.endMs));
      } catch (error) {
        if (error instanceof CraftError && error.code === 'CRAFT_BAD_REQUEST') return json(400, { error: error.message });
        return json(503, { error: `query unavailable: ${(error as Error).message}` }, RETRY_AFTER_S);
      }
    case 'health': {
      let queueSize: number | null = null;
      try {
        queueSize = await sink.queueDepth();
      } catch {
        queueSize = null;
      }
      return json(200, { status: 'healthy', service: 'ingestion', phase: stats.phase, queue_size: queueSize });
    }
    case 'stats':
      return json(200, statsBody(stats.snapshot()));
    case 'exposition':
      return { status: 200, body: exposition(stats.snapshot()), contentType: 'text/plain; version=0.0.4' };
  }
}
