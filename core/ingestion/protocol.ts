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
 *   POST /api/v1/write    Prometheus remote write 1.0 (snappy + protobuf)        → 204
 *   POST /write           Influx line protocol v1 (?precision=ns|us|ms|s)       → 204
 *   POST /api/v2/write    Influx line protocol v2 (?precision=…&org=…&bucket=…)  → 204
 *   GET  /health          {"status":"healthy","service":"ingestion","phase","queue_size"}
 *   GET  /stats           seed statistics plus overload counters (JSON)
 *   GET  /metrics         the same counters in Prometheus text exposition
 *   GET  /query           the seed's query, forwarded over the bus to the query actor
 */
import { CraftError } from '../errors.js';
import { RETRY_AFTER_S } from '../defaults.js';
import type { IngestBatch, WireSample } from '../model.js';
import { encodeForQueue, encodeSeedForQueue } from '../queue/message.js';
import type { IngestionLimits, IngestionSink, IngestionStats } from '../slots/ingestion.js';
import type { RateLimiter } from './rate-limit.js';
import { parseSeedBody, toBatch } from './seed-json.js';
import { parseRemoteWrite } from './remote-write.js';
import { parseLineProtocol, PRECISIONS, type Precision } from './line-protocol.js';
import { checkSeriesShape, refusalBody, REJECT_REASONS, type RejectReason } from './series-limits.js';
import { seriesHashes } from './tenant-series.js';
import { TENANT_LABEL, tokenTable, type Scope } from '../auth/tokens.js';

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
  /** A 401: the answer names the scheme (`WWW-Authenticate: Bearer`). */
  wwwAuthenticate?: true;
}

export type Outcome = 'ok' | 'validation' | 'rate-limited' | 'not-found' | 'too-large' | 'unauthorized';

export type Prepared =
  | { kind: 'reply'; reply: Reply; outcome: Outcome; reason?: RejectReason }
  /** Validated samples, already encoded as queue messages (so a worker can hand over bytes). */
  /** `series`: each sample's series hash (core/ingestion/tenant-series.ts), for the sink's cardinality limits. */
  | { kind: 'append'; client: string; parts: Uint8Array[]; okReply: Reply; metrics: number; series?: Float64Array; influxV2?: true }
  | { kind: 'query'; name: string; startMs: number; endMs: number; tenant?: string }
  | { kind: 'health' }
  | { kind: 'stats' }
  | { kind: 'exposition' };

/** Parses JSON text; phases 1–2 use the seed's substring parser, phase 3 on a single-pass one. */
export type JsonParser = (text: string) => unknown;

export interface PrepareDeps {
  limits: Pick<IngestionLimits, 'batchMetricsMax' | 'metricNameLengthMax' | 'labelsPerSeriesMax' | 'labelNameLengthMax' | 'labelValueLengthMax' | 'bodyBytesMax' | 'samplesPerRequestMax' | 'influxSingleValueFieldAsMeasurement' | 'tokens' | 'seriesHashSeed'>;
  limiter: RateLimiter;
  parseJson: JsonParser;
  nowMs: number;
  /**
   * Put a valid seed-JSON body into the queue as received instead of re-encoding its
   * samples (the queue message's seed form). Only with a parser that accepts exactly what
   * `JSON.parse` accepts, since decoding parses the body again with `JSON.parse`.
   */
  forwardSeedBody?: boolean;
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

const NO_CONTENT: Reply = { status: 204, body: '', contentType: JSON_TYPE };
const ACCEPTED: Reply = { status: 202, body: '{"status":"accepted"}', contentType: JSON_TYPE };

/** The seed's batch answer; the common sizes are built once. */
const BATCH_ACCEPTED: Reply[] = [];
const batchAccepted = (count: number): Reply =>
  count <= 1_000 ? (BATCH_ACCEPTED[count] ??= json(200, { success: true, metrics_processed: count })) : json(200, { success: true, metrics_processed: count });

/** `finite`: every value was validated finite (seed JSON), so encoding skips that check. */
function append(batch: IngestBatch, okReply: Reply, seed: number | undefined, finite = false): Prepared {
  return { kind: 'append', client: batch.client, parts: encodeForQueue(batch, undefined, finite), okReply, metrics: batch.samples.length, series: seriesHashes(batch.samples, seed) };
}

export const clientOf = (authorization: string | undefined): string => (authorization === undefined || authorization === '' ? 'default' : authorization);

/**
 * The write endpoints share their gate: method, body size, the token (when auth is on), rate
 * limit. Admitted: the client id — the token's tenant with auth on, else the raw header.
 */
function admitWrite(request: RawRequest, deps: PrepareDeps, influxV2 = false): Prepared | { client: string; tenant?: string } {
  if (request.method !== 'POST') return { kind: 'reply', reply: REPLIES.methodNotAllowed('POST'), outcome: 'not-found' };
  if (request.body.length > deps.limits.bodyBytesMax) return { kind: 'reply', reply: REPLIES.tooLarge(deps.limits.bodyBytesMax), outcome: 'too-large' };
  const auth = authorize(request, deps, 'write', influxV2);
  if (typeof auth === 'object') return auth;
  const tenant = auth;
  const client = tenant ?? clientOf(request.authorization);
  if (!deps.limiter.admit(client, deps.nowMs)) return { kind: 'reply', reply: REPLIES.rateLimited, outcome: 'rate-limited' };
  return tenant === undefined ? { client } : { client, tenant };
}

/**
 * With auth on, the tenant of the request's token if it has `scope`, else the 401/403 answer
 * (Influx v2 clients read `code` and `message`); with auth off, undefined.
 */
function authorize(request: RawRequest, deps: PrepareDeps, scope: Scope, influxV2 = false): string | undefined | Prepared {
  const tokens = tokenTable(deps.limits.tokens);
  if (tokens === undefined) return undefined;
  const auth = tokens.check(request.authorization, scope);
  if (auth.ok) return auth.tenant;
  const body = influxV2 ? { code: auth.status === 401 ? 'unauthorized' : 'forbidden', message: auth.error, error: auth.error } : { error: auth.error };
  return { kind: 'reply', reply: { ...json(auth.status, body), ...(auth.status === 401 ? { wwwAuthenticate: true as const } : {}) }, outcome: 'unauthorized' };
}

/** With auth on, every series carries its writer's tenant (whatever the client sent as `tenant`). */
function stampTenant(samples: WireSample[], tenant: string | undefined): void {
  if (tenant === undefined) return;
  for (const sample of samples) sample[0][TENANT_LABEL] = tenant;
}

function prepareSeed(request: RawRequest, deps: PrepareDeps, client: string, tenant: string | undefined): Prepared {
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
  const over = checkSeriesShape(result.samples, deps.limits);
  if (over !== undefined) return { kind: 'reply', reply: json(400, { ...refusalBody(over), metric_index: over.sampleIndex }), outcome: 'validation', reason: over.reason };
  stampTenant(result.samples, tenant);
  const okReply = result.form === 'single' ? ACCEPTED : batchAccepted(result.samples.length);
  // The body as received can be forwarded only when nothing was added to its series.
  const forwarded = deps.forwardSeedBody === true && tenant === undefined ? encodeSeedForQueue(client, deps.nowMs, request.body) : undefined;
  if (forwarded !== undefined) return { kind: 'append', client, parts: [forwarded], okReply, metrics: result.samples.length, series: seriesHashes(result.samples, deps.limits.seriesHashSeed) };
  return append(toBatch(client, deps.nowMs, result.samples, result.types), okReply, deps.limits.seriesHashSeed, true);
}

function prepareRemoteWrite(request: RawRequest, deps: PrepareDeps, client: string, tenant: string | undefined): Prepared {
  const result = parseRemoteWrite(request.body, deps.limits.samplesPerRequestMax);
  if (!result.ok) return { kind: 'reply', reply: json(400, { error: result.error }), outcome: 'validation' };
  if (result.samples.length === 0) return { kind: 'reply', reply: NO_CONTENT, outcome: 'ok' };
  const over = checkSeriesShape(result.samples, deps.limits);
  if (over !== undefined) return { kind: 'reply', reply: json(400, refusalBody(over)), outcome: 'validation', reason: over.reason };
  stampTenant(result.samples, tenant);
  return append(toBatch(client, deps.nowMs, result.samples, result.types), NO_CONTENT, deps.limits.seriesHashSeed);
}

function prepareLineProtocol(request: RawRequest, query: string, deps: PrepareDeps, v2: boolean, client: string, tenant: string | undefined): Prepared {
  const params = new URLSearchParams(query);
  const precision = (params.get('precision') ?? 'ns') as Precision;
  const invalid = (message: string, line?: number): Prepared => ({
    kind: 'reply',
    reply: json(400, v2 ? { code: 'invalid', message, error: message, ...(line === undefined ? {} : { line }) } : { error: message, ...(line === undefined ? {} : { line }) }),
    outcome: 'validation',
  });
  if (!PRECISIONS.includes(precision)) return invalid(`precision must be one of ${PRECISIONS.join(', ')}`);
  const result = parseLineProtocol(decoder.decode(request.body), precision, deps.nowMs, deps.limits.samplesPerRequestMax, deps.limits.influxSingleValueFieldAsMeasurement === true);
  if (!result.ok) return invalid(result.error, result.line);
  if (result.samples.length === 0) return { kind: 'reply', reply: NO_CONTENT, outcome: 'ok' };
  const over = checkSeriesShape(result.samples, deps.limits);
  if (over !== undefined) {
    const body = refusalBody(over);
    return { kind: 'reply', reply: json(400, v2 ? { code: 'invalid', message: body.error, ...body } : body), outcome: 'validation', reason: over.reason };
  }
  stampTenant(result.samples, tenant);
  return append(toBatch(client, deps.nowMs, result.samples, {}), NO_CONTENT, deps.limits.seriesHashSeed);
}

export function prepare(request: RawRequest, deps: PrepareDeps): Prepared {
  const queryAt = request.url.indexOf('?');
  const path = queryAt < 0 ? request.url : request.url.slice(0, queryAt);
  const query = queryAt < 0 ? '' : request.url.slice(queryAt + 1);
  if (path === '/metrics') {
    if (request.method === 'GET' || request.method === 'HEAD') return { kind: 'exposition' };
    if (request.method !== 'POST') return { kind: 'reply', reply: REPLIES.methodNotAllowed('POST or GET'), outcome: 'not-found' };
    const admitted = admitWrite(request, deps);
    return 'kind' in admitted ? admitted : prepareSeed(request, deps, admitted.client, admitted.tenant);
  }
  if (path === '/api/v1/write' || path === '/write' || path === '/api/v2/write') {
    const admitted = admitWrite(request, deps, path === '/api/v2/write');
    if ('kind' in admitted) return admitted;
    const prepared = path === '/api/v1/write' ? prepareRemoteWrite(request, deps, admitted.client, admitted.tenant) : prepareLineProtocol(request, query, deps, path === '/api/v2/write', admitted.client, admitted.tenant);
    return path === '/api/v2/write' && prepared.kind === 'append' ? { ...prepared, influxV2: true } : prepared;
  }
  // HEAD reads what GET reads; the HTTP layer sends no body.
  if (request.method !== 'GET' && request.method !== 'HEAD') return { kind: 'reply', reply: REPLIES.notFound, outcome: 'not-found' };
  if (path === '/health') return { kind: 'health' };
  if (path === '/stats') return { kind: 'stats' };
  if (path === '/query') {
    // With auth on, the seed's query needs the read scope and sees its tenant's series only.
    const tenant = authorize(request, deps, 'read');
    if (typeof tenant === 'object') return tenant;
    const params = new URLSearchParams(query);
    const name = params.get('name');
    if (name === null || name === '') return { kind: 'reply', reply: json(400, { error: 'query needs name' }), outcome: 'validation' };
    const startMs = params.has('start') ? Number(params.get('start')) : 0;
    const endMs = params.has('end') ? Number(params.get('end')) : Number.MAX_SAFE_INTEGER;
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return { kind: 'reply', reply: json(400, { error: 'start and end must be numbers (ms)' }), outcome: 'validation' };
    return tenant === undefined ? { kind: 'query', name, startMs, endMs } : { kind: 'query', name, startMs, endMs, tenant };
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
  /** Requests refused over a named limit, by reason. */
  readonly rejected: Partial<Record<RejectReason, number>> = {};

  constructor(readonly phase: string) {}

  count(outcome: Outcome, reason?: RejectReason): void {
    if (reason !== undefined) this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    if (outcome === 'validation') this.validationErrors += 1;
    else if (outcome === 'rate-limited') this.rateLimited += 1;
    else if (outcome === 'too-large') this.bodyTooLarge += 1;
  }

  snapshot(): IngestionStats {
    const { phase, requests, metricsReceived, batchesProcessed, validationErrors, rateLimited, rejectedOverload, bodyTooLarge, connectionsOpen, connectionsTotal } = this;
    return { phase, requests, metricsReceived, batchesProcessed, validationErrors, rateLimited, rejectedOverload, bodyTooLarge, connectionsOpen, connectionsTotal, rejected: { ...this.rejected } };
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
    rejected: stats.rejected ?? {},
    ...(stats.detail === undefined ? {} : { detail: stats.detail }),
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
  lines.push('# HELP craft_ingestion_rejected_total Requests refused over a named limit (nothing of them stored), by reason.', '# TYPE craft_ingestion_rejected_total counter');
  for (const reason of REJECT_REASONS) lines.push(`craft_ingestion_rejected_total{phase="${phase}",reason="${reason}"} ${stats.rejected?.[reason] ?? 0}`);
  return lines.join('\n') + '\n';
}

/** Maps a failed append onto the answer the client gets; nothing was acknowledged. */
export function appendFailureReply(error: unknown): Reply {
  if (error instanceof CraftError && error.code === 'CRAFT_OVERLOADED') return REPLIES.overloaded;
  return REPLIES.queueUnavailable;
}

/** How a phase puts encoded parts in the queue: directly, or through its writer. */
export type Appender = (client: string, parts: Uint8Array[], samples: number) => Promise<void>;

/** Appends straight to the sink, every part, all acknowledged before it resolves. */
export const directAppender = (sink: IngestionSink): Appender => async (client, parts) => {
  await Promise.all(parts.map((part) => sink.appendEncoded(client, part)));
};

/** The I/O half: appends, forwards, or reads; every path answers. */
export async function complete(
  prepared: Prepared,
  sink: IngestionSink,
  stats: StatsCounter,
  appendParts: Appender = directAppender(sink),
  statsOf: () => IngestionStats = () => stats.snapshot(),
): Promise<Reply> {
  switch (prepared.kind) {
    case 'reply':
      stats.count(prepared.outcome, prepared.reason);
      return prepared.reply;
    case 'append': {
      const refused = prepared.series === undefined ? undefined : sink.admitSeries?.(prepared.client, prepared.series);
      if (refused !== undefined) {
        stats.count(refused.status === 429 ? 'rate-limited' : refused.status === 400 ? 'validation' : 'ok', refused.reason);
        if (refused.status === 503) stats.rejectedOverload += 1;
        const error = `${refused.message}; nothing of this request was stored`;
        const v2 = prepared.influxV2 === true ? { code: refused.status === 429 ? 'too many requests' : refused.status === 503 ? 'unavailable' : 'invalid', message: error } : {};
        return json(refused.status, { ...v2, error, reason: refused.reason, limit: refused.limit, max: refused.max }, refused.retryAfterS);
      }
      try {
        await appendParts(prepared.client, prepared.parts, prepared.metrics);
      } catch (error) {
        stats.rejectedOverload += 1;
        return appendFailureReply(error);
      }
      stats.metricsReceived += prepared.metrics;
      stats.batchesProcessed += 1;
      return prepared.okReply;
    }
    case 'query':
      try {
        return json(200, await sink.query(prepared.name, prepared.startMs, prepared.endMs, prepared.tenant));
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
      return json(200, statsBody(statsOf()));
    case 'exposition':
      return { status: 200, body: exposition(statsOf()), contentType: 'text/plain; version=0.0.4' };
  }
}
