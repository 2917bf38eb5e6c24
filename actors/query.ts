/**
 * The query actor: hosts the `query.evaluator` slot, answers `craft.query.run` over the
 * bus, and serves HTTP on the query port: the seed's `GET /query?name=&start=&end=` and
 * `GET /health`. It reads samples from storage over the bus. Evaluators hold no state, so
 * a swap replaces the instance between two queries.
 */
import type { IncomingMessage, Server } from 'node:http';
import { closeApi, listenApi, portOf } from '../core/http/api-server.js';
import { tenantScoped } from '../core/query/tenant.js';
import { tokenTable } from '../core/auth/tokens.js';
import { PrometheusApi, QUERY_BODY_BYTES_MAX, type ApiResponse } from './query-api.js';
import { RecordingRules } from './recording-rules.js';
import { QueueClient } from '../core/queue/protocol.js';
import type { Subscription } from '@nats-io/transport-node';
import { Actor } from '../core/actor/actor.js';
import { CraftError, invariant } from '../core/errors.js';
import { SUBJECTS, handoverSubject } from '../core/subjects.js';
import { StorageClient } from '../core/storage/client.js';
import { queryResultParts } from '../core/query/client.js';
import { PartsReply } from '../core/nats/bus.js';
import { METRIC_NAME_LABEL } from '../core/model.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { QueryEvaluator, QueryPlan, QueryRequest, QueryResult, SampleSource } from '../core/slots/query.js';


/** The body as text, or undefined when it is longer than `bytesMax` (the rest is not read). */
function readBody(request: IncomingMessage, bytesMax: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > bytesMax) {
        request.removeAllListeners('data');
        request.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(bytes > bytesMax ? undefined : Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export class QueryActor extends Actor {
  private evaluator!: QueryEvaluator;
  private pluginId = '';
  private http: Server | undefined;
  private readonly source: SampleSource;
  private readonly storage: StorageClient;
  private readonly api: PrometheusApi;
  private readonly recording: RecordingRules;
  private dataEvents: Subscription | undefined;

  constructor(private readonly context: PlatformContext) {
    super('query', context);
    this.storage = new StorageClient(context.bus);
    this.source = this.storage;
    this.recording = new RecordingRules(() => this.evaluator, this.source, new QueueClient(context.bus), this.clock, this.log);
    this.api = new PrometheusApi(() => this.evaluator, this.source, context.bus, () => this.clock.now(), () => this.recording.groups(), this.storage);
    // Warnings (storage members gone, their share missing) travel with the answer's first part.
    this.handle(SUBJECTS.queryRun, async (body: QueryRequest) => new PartsReply(queryResultParts(await this.run(body), await this.storage.lostMemberWarnings())), { concurrency: 32, parts: true });
    this.handle(SUBJECTS.queryExplain, (body: QueryRequest) => this.explain(body), { concurrency: 8 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.pluginId === '' ? undefined : { 'query.evaluator': this.pluginId };
  }

  get port(): number {
    return portOf(this.http);
  }

  protected override async onStart(): Promise<void> {
    const choice = await currentChoice(this.context, 'query.evaluator');
    this.evaluator = this.context.registry.instantiate('query.evaluator', choice.id, { log: this.log, clock: this.clock }, choice.options);
    // Late samples reach an evaluator that keeps results (phase 4's cache) as storage applies them.
    this.dataEvents = this.context.bus.listen<{ minTimeMs: number; maxTimeMs: number }>(SUBJECTS.storageEventsApplied, (event) => this.evaluator.dataChanged?.(event.minTimeMs, event.maxTimeMs));
    this.recording.start(this.evaluator.recordingRules?.() ?? []);
    this.pluginId = choice.id;
    const { host, queryPort } = this.context.config.http;
    const http = await listenApi('query', host, queryPort, (request) => this.serveHttp(request), (error) => ({ status: 400, body: JSON.stringify({ status: 'error', errorType: 'bad_data', error: `request could not be read: ${error.message}` }) }));
    this.http = http;
    this.log.info('query listening', { host, port: this.port, plugin: choice.id });
  }

  private async closeHttp(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    await closeApi(http);
  }

  protected override async onStop(): Promise<void> {
    this.dataEvents?.unsubscribe();
    await this.recording.stop();
    await this.closeHttp();
    await this.evaluator?.close?.();
  }

  protected override async onCrash(): Promise<void> {
    this.dataEvents?.unsubscribe();
    await this.recording.stop().catch(() => undefined);
    await this.closeHttp();
    await this.evaluator?.close?.().catch(() => undefined);
  }

  private explain(request: QueryRequest): Promise<QueryPlan> {
    if (typeof request?.expr !== 'string' || request.expr === '') throw new CraftError('CRAFT_BAD_REQUEST', 'explain needs {expr: string}');
    if (this.evaluator.explain === undefined) throw new CraftError('CRAFT_BAD_REQUEST', `the evaluator ${this.pluginId} does not explain its plans; swap to query.interpreter or query.planner`);
    return this.evaluator.explain(request);
  }

  private run(request: QueryRequest): Promise<QueryResult> {
    if (typeof request.expr !== 'string' || request.expr === '') throw new CraftError('CRAFT_BAD_REQUEST', 'query needs {expr: string}');
    return this.evaluator.evaluate(request, request.tenant === undefined ? this.source : tenantScoped(this.source, request.tenant));
  }

  /** The API for a tenant (auth on: its series only), or for everything. */
  private apiFor(tenant: string | undefined): PrometheusApi {
    if (tenant === undefined) return this.api;
    let api = this.tenantApis.get(tenant);
    if (api === undefined) {
      api = new PrometheusApi(() => this.evaluator, tenantScoped(this.source, tenant), this.context.bus, () => this.clock.now(), () => this.recording.groups(), this.storage, tenant);
      this.tenantApis.set(tenant, api);
    }
    return api;
  }

  private readonly tenantApis = new Map<string, PrometheusApi>();

  private async serveHttp(request: IncomingMessage): Promise<ApiResponse> {
    const method = request.method ?? 'GET';
    const parsed = new URL(request.url ?? '/', 'http://localhost');
    // Auth (when tokens are configured): every route but /health needs a token with the read scope; it picks the tenant.
    let tenant: string | undefined;
    const tokens = tokenTable(this.context.config.auth.tokens);
    if (tokens !== undefined && parsed.pathname !== '/health') {
      const auth = tokens.check(request.headers.authorization, 'read');
      if (!auth.ok) return { status: auth.status, body: JSON.stringify({ status: 'error', errorType: auth.status === 401 ? 'unauthorized' : 'forbidden', error: auth.error }), ...(auth.status === 401 ? { headers: { 'WWW-Authenticate': 'Bearer' } } : {}) };
      tenant = auth.tenant;
    }
    if (parsed.pathname.startsWith('/api/v1/')) {
      const params = new URLSearchParams(parsed.searchParams);
      if (method === 'POST') {
        const body = await readBody(request, QUERY_BODY_BYTES_MAX);
        if (body === undefined) return { status: 413, body: JSON.stringify({ status: 'error', errorType: 'bad_data', error: `request body larger than ${QUERY_BODY_BYTES_MAX} bytes` }) };
        for (const [key, value] of new URLSearchParams(body)) params.append(key, value);
      }
      return this.apiFor(tenant).handle(method, parsed.pathname, params);
    }
    if (method !== 'GET') return { status: 405, body: JSON.stringify({ error: 'method not allowed; use GET' }) };
    if (parsed.pathname === '/health') return { status: 200, body: JSON.stringify({ status: 'healthy', service: 'query', plugin: this.pluginId }) };
    if (parsed.pathname !== '/query') return { status: 404, body: JSON.stringify({ error: 'route not found' }) };
    const name = parsed.searchParams.get('name');
    if (name === null || name === '') return { status: 400, body: JSON.stringify({ error: 'query needs name' }) };
    const startMs = Number(parsed.searchParams.get('start') ?? 0);
    const endMs = Number(parsed.searchParams.get('end') ?? Number.MAX_SAFE_INTEGER);
    if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return { status: 400, body: JSON.stringify({ error: 'start and end must be numbers (ms)' }) };
    try {
      const result = await this.run({ expr: name, startMs, endMs, ...(tenant === undefined ? {} : { tenant }) });
      const rows = result.resultType === 'matrix'
        ? result.result.flatMap((s) => s.timestampsMs.map((t, i) => ({ name: s.labels[METRIC_NAME_LABEL] ?? name, value: s.values[i]!, timestamp: t })))
        : [];
      rows.sort((a, b) => a.timestamp - b.timestamp);
      return { status: 200, body: JSON.stringify(rows) };
    } catch (error) {
      if (error instanceof CraftError && error.code === 'CRAFT_BAD_REQUEST') return { status: 400, body: JSON.stringify({ error: error.message }) };
      return { status: 503, body: JSON.stringify({ error: `query unavailable: ${(error as Error).message}` }) };
    }
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    invariant(request.slot === 'query.evaluator', `query actor asked to swap ${request.slot}`);
    const started = this.clock.now();
    const next = this.context.registry.instantiate('query.evaluator', request.plugin, { log: this.log, clock: this.clock }, request.options);
    const from = this.pluginId;
    const previous = this.evaluator;
    this.evaluator = next;
    this.pluginId = request.plugin;
    this.recording.start(next.recordingRules?.() ?? []);
    // Queries already running keep the old evaluator; its threads go once the swap is done.
    await previous.close?.().catch((error: unknown) => this.log.warn('the previous evaluator did not close cleanly', { error }));
    return { slot: 'query.evaluator', from, to: request.plugin, tookMs: this.clock.now() - started, detail: 'the next query uses the new evaluator; queries in flight finish on the old one' };
  }
}
