/**
 * The Prometheus HTTP API on the query port (9090 by default), so Grafana and other Prometheus
 * clients use the platform as a Prometheus data source:
 *
 *   /api/v1/query  /api/v1/query_range  /api/v1/series  /api/v1/labels
 *   /api/v1/label/<name>/values  /api/v1/metadata  /api/v1/status/buildinfo
 *   /api/v1/rules  /api/v1/alerts  /api/v1/query_exemplars  /api/v1/format_query
 *
 * GET with a query string, or POST with a form body. The envelope is Prometheus's:
 * `{status:"success", data}` or `{status:"error", errorType, error}` with 400 (bad_data),
 * 422 (execution), 503 (timeout, unavailable) — values as strings, times as Unix seconds.
 */
import { CraftError } from '../core/errors.js';
import { printExpr } from '../core/promql/printer.js';
import { parseDurationMs, parseQuery } from '../core/promql/parser.js';
import { formatFloat } from '../core/promql/format.js';
import { SUBJECTS } from '../core/subjects.js';
import { StorageClient } from '../core/storage/client.js';
import { isLabelName, labelNamesOf, labelValuesOf, type LabelMatcher, type Labels } from '../core/model.js';
import type { Bus } from '../core/nats/bus.js';
import type { GroupStatus } from './recording-rules.js';
import type { QueryEvaluator, QueryResult, SampleSource } from '../core/slots/query.js';

/** What Grafana reads to pick its Prometheus features: the PromQL dialect we follow. */
export const PROMETHEUS_COMPATIBLE_VERSION = '2.42.0';
/** Largest form body a POST may carry. */
export const QUERY_BODY_BYTES_MAX = 1_048_576;
/** `match[]` selectors one series/labels request may carry. */
export const MATCHERS_PER_REQUEST_MAX = 100;

import type { ApiAnswer as ApiResponse } from '../core/http/api-server.js';
export type { ApiResponse };

/** An API error: Prometheus's errorType and the HTTP status it goes with. */
class ApiError extends Error {
  constructor(readonly errorType: 'bad_data' | 'execution' | 'timeout' | 'unavailable' | 'not_found' | 'internal', message: string) {
    super(message);
  }
}

const STATUS_BY_TYPE: Record<ApiError['errorType'], number> = { bad_data: 400, execution: 422, timeout: 503, unavailable: 503, not_found: 404, internal: 500 };

function fromCraftError(error: CraftError): ApiError {
  switch (error.code) {
    case 'CRAFT_QUERY_PARSE':
    case 'CRAFT_BAD_REQUEST':
      return new ApiError('bad_data', error.message);
    case 'CRAFT_QUERY_EXECUTION':
    case 'CRAFT_QUERY_LIMIT':
      return new ApiError('execution', error.message);
    case 'CRAFT_QUERY_TIMEOUT':
      return new ApiError('timeout', error.message);
    default:
      return new ApiError('unavailable', error.message);
  }
}

/** Prometheus's time parameter: Unix seconds (fractions allowed) or RFC 3339. */
export function parseTimeParam(name: string, text: string | undefined, fallbackMs?: number): number {
  if (text === undefined || text === '') {
    if (fallbackMs !== undefined) return fallbackMs;
    throw new ApiError('bad_data', `invalid parameter "${name}": cannot parse "" to a valid timestamp`);
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const parsed = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(parsed)) throw new ApiError('bad_data', `invalid parameter "${name}": cannot parse "${text}" to a valid timestamp`);
  return parsed;
}

/** Prometheus's duration parameter: seconds (fractions allowed) or a duration like `1m30s`. */
export function parseDurationParam(name: string, text: string | undefined): number {
  if (text === undefined || text === '') throw new ApiError('bad_data', `invalid parameter "${name}": cannot parse "" to a valid duration`);
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    const ms = Number(text) * 1000;
    if (!Number.isFinite(ms)) throw new ApiError('bad_data', `invalid parameter "${name}": cannot parse "${text}" to a valid duration. It overflows int64`);
    return Math.round(ms);
  }
  try {
    return parseDurationMs(text);
  } catch {
    throw new ApiError('bad_data', `invalid parameter "${name}": cannot parse "${text}" to a valid duration`);
  }
}

const sampleOf = (timestampMs: number, value: number): [number, string] => [timestampMs / 1000, formatFloat(value)];

/** A query result in the API's data shape. */
export function resultData(result: QueryResult): unknown {
  switch (result.resultType) {
    case 'matrix':
      return { resultType: 'matrix', result: result.result.map((s) => ({ metric: s.labels, values: s.timestampsMs.map((t, i) => sampleOf(t, s.values[i]!)) })) };
    case 'vector':
      return { resultType: 'vector', result: result.result.map((s) => ({ metric: s.labels, value: sampleOf(s.timestampMs, s.value) })) };
    case 'scalar':
      return { resultType: 'scalar', result: sampleOf(result.result.timestampMs, result.result.value) };
    case 'string':
      return { resultType: 'string', result: [result.result.timestampMs / 1000, result.result.value] };
  }
}

export class PrometheusApi {
  constructor(
    private readonly evaluator: () => QueryEvaluator,
    private readonly source: SampleSource,
    private readonly bus: Bus,
    private readonly now: () => number,
    private readonly recordingGroups: () => GroupStatus[] = () => [],
    /** Storage itself (metadata, members): one client for every tenant's API, so all know the same members. */
    private readonly storage: StorageClient,
    /** Auth on: the tenant this API answers for (`source` sees only its series). */
    private readonly tenant?: string,
  ) {}

  private scope(): { tenant?: string } {
    return this.tenant === undefined ? {} : { tenant: this.tenant };
  }

  /** Answers one request; never throws. */
  async handle(method: string, path: string, params: URLSearchParams): Promise<ApiResponse> {
    try {
      if (method !== 'GET' && method !== 'POST') throw new ApiError('bad_data', `method ${method} not allowed; use GET or POST`);
      const data = await this.route(path, params);
      const warnings = await this.storage.lostMemberWarnings();
      return { status: 200, body: JSON.stringify({ status: 'success', data, ...(warnings.length === 0 ? {} : { warnings }) }) };
    } catch (error) {
      const apiError = error instanceof ApiError ? error : error instanceof CraftError ? fromCraftError(error) : new ApiError('internal', (error as Error).message);
      const status = STATUS_BY_TYPE[apiError.errorType];
      const headers = status === 503 ? { 'Retry-After': '5' } : undefined;
      return { status, body: JSON.stringify({ status: 'error', errorType: apiError.errorType, error: apiError.message }), ...(headers === undefined ? {} : { headers }) };
    }
  }

  private async route(path: string, params: URLSearchParams): Promise<unknown> {
    const label = /^\/api\/v1\/label\/([^/]+)\/values$/.exec(path);
    if (label !== null) return this.labelValues(decodeURIComponent(label[1]!), params);
    switch (path) {
      case '/api/v1/query':
        return this.query(params);
      case '/api/v1/query_range':
        return this.queryRange(params);
      case '/api/v1/explain':
        return this.explain(params);
      case '/api/v1/series':
        return this.series(params);
      case '/api/v1/labels':
        return this.labels(params);
      case '/api/v1/metadata':
        return this.metadata(params);
      case '/api/v1/query_exemplars':
        // Exemplars are not stored: none to return.
        return [];
      case '/api/v1/format_query':
        return printExpr(parseQuery(required(params, 'query')));
      case '/api/v1/status/buildinfo':
        return { version: PROMETHEUS_COMPATIBLE_VERSION, revision: 'systems-craft', branch: 'main', buildUser: 'systems-craft', buildDate: '', goVersion: `node ${process.version}` };
      case '/api/v1/rules':
        return { groups: await this.ruleGroups() };
      case '/api/v1/alerts':
        return { alerts: (await this.alertingGroups()).flatMap((g) => g.rules.flatMap((r) => r.alerts)) };
      default:
        throw new ApiError('not_found', `unknown API endpoint ${path}`);
    }
  }

  private async query(params: URLSearchParams): Promise<unknown> {
    const expr = required(params, 'query');
    const timeMs = parseTimeParam('time', params.get('time') ?? undefined, this.now());
    const result = await this.evaluator().evaluate({ expr, timeMs, ...this.common(params), ...this.scope() }, this.source);
    return resultData(result);
  }

  private async queryRange(params: URLSearchParams): Promise<unknown> {
    const expr = required(params, 'query');
    const startMs = parseTimeParam('start', params.get('start') ?? undefined);
    const endMs = parseTimeParam('end', params.get('end') ?? undefined);
    const stepMs = parseDurationParam('step', params.get('step') ?? undefined);
    if (endMs < startMs) throw new ApiError('bad_data', 'invalid parameter "end": end timestamp must not be before start time');
    if (stepMs <= 0) throw new ApiError('bad_data', 'invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer');
    const result = await this.evaluator().evaluate({ expr, startMs, endMs, stepMs, ...this.common(params), ...this.scope() }, this.source);
    return resultData(result);
  }

  /** Ours, not Prometheus's: how the active evaluator would run a query (range when `start`, `end` and `step` are given). */
  private async explain(params: URLSearchParams): Promise<unknown> {
    const expr = required(params, 'query');
    const evaluator = this.evaluator();
    if (evaluator.explain === undefined) throw new ApiError('bad_data', 'the active evaluator does not explain its plans');
    if (params.has('step')) {
      const startMs = parseTimeParam('start', params.get('start') ?? undefined);
      const endMs = parseTimeParam('end', params.get('end') ?? undefined);
      return evaluator.explain({ expr, startMs, endMs, stepMs: parseDurationParam('step', params.get('step') ?? undefined) });
    }
    return evaluator.explain({ expr, timeMs: parseTimeParam('time', params.get('time') ?? undefined, this.now()) });
  }

  private common(params: URLSearchParams): { timeoutMs?: number; lookbackDeltaMs?: number } {
    const out: { timeoutMs?: number; lookbackDeltaMs?: number } = {};
    const timeout = params.get('timeout');
    if (timeout !== null && timeout !== '') out.timeoutMs = parseDurationParam('timeout', timeout);
    const lookback = params.get('lookback_delta');
    if (lookback !== null && lookback !== '') out.lookbackDeltaMs = parseDurationParam('lookback_delta', lookback);
    return out;
  }

  /** `match[]` selectors (each a series selector), and the range (default: all time). */
  private selection(params: URLSearchParams, needed: boolean): { selectors: LabelMatcher[][]; startMs: number; endMs: number } {
    const texts = params.getAll('match[]');
    if (needed && texts.length === 0) throw new ApiError('bad_data', 'no match[] parameter provided');
    if (texts.length > MATCHERS_PER_REQUEST_MAX) throw new ApiError('bad_data', `at most ${MATCHERS_PER_REQUEST_MAX} match[] parameters are accepted, got ${texts.length}`);
    const selectors = texts.map((text) => {
      const expr = parseQuery(text);
      if (expr.type !== 'VectorSelector') throw new ApiError('bad_data', `invalid parameter "match[]": ${text} is not a series selector`);
      return expr.matchers;
    });
    const startMs = parseTimeParam('start', params.get('start') ?? undefined, 0);
    const endMs = parseTimeParam('end', params.get('end') ?? undefined, Number.MAX_SAFE_INTEGER);
    if (endMs < startMs) throw new ApiError('bad_data', 'invalid parameter "end": end timestamp must not be before start time');
    return { selectors, startMs, endMs };
  }

  /** Series of every selector, without duplicates, in the range. */
  private async seriesOf(selectors: LabelMatcher[][], startMs: number, endMs: number): Promise<Labels[]> {
    const querier = this.source.querier(Math.max(0, startMs), endMs);
    const seen = new Map<string, Labels>();
    for (const matchers of selectors) for (const labels of await querier.series(matchers)) seen.set(JSON.stringify(Object.entries(labels).sort()), labels);
    return [...seen.values()];
  }

  private async series(params: URLSearchParams): Promise<unknown> {
    const { selectors, startMs, endMs } = this.selection(params, true);
    const series = await this.seriesOf(selectors, startMs, endMs);
    const limit = limitParam(params);
    return limit === undefined ? series : series.slice(0, limit);
  }

  private async metadata(params: URLSearchParams): Promise<unknown> {
    const metric = params.get('metric') ?? undefined;
    const limit = limitParam(params);
    if (this.tenant === undefined) return this.storage.metadata({ ...(metric === undefined || metric === '' ? {} : { metric }), ...(limit === undefined ? {} : { limit }) });
    // A tenant sees the metadata of its own metrics only (the limit applies after that).
    const all = await this.storage.metadata({ ...(metric === undefined || metric === '' ? {} : { metric }), tenant: this.tenant });
    const mine = new Set(await this.source.querier(0, Number.MAX_SAFE_INTEGER).labelValues('__name__'));
    const entries = Object.entries(all).filter(([name]) => mine.has(name));
    return Object.fromEntries(limit === undefined ? entries : entries.slice(0, limit));
  }

  private async labels(params: URLSearchParams): Promise<unknown> {
    const { selectors, startMs, endMs } = this.selection(params, false);
    if (selectors.length === 0) return this.source.querier(Math.max(0, startMs), endMs).labelNames();
    return labelNamesOf(await this.seriesOf(selectors, startMs, endMs));
  }

  private async labelValues(name: string, params: URLSearchParams): Promise<unknown> {
    if (!isLabelName(name)) throw new ApiError('bad_data', `invalid label name: "${name}"`);
    const { selectors, startMs, endMs } = this.selection(params, false);
    if (selectors.length === 0) return this.source.querier(Math.max(0, startMs), endMs).labelValues(name);
    return labelValuesOf(await this.seriesOf(selectors, startMs, endMs), name);
  }

  /** Recording groups (the query actor's) and the alerting actor's rules, in Prometheus's rule-group shape. */
  private async ruleGroups(): Promise<unknown[]> {
    return [...this.recordingGroups(), ...(await this.alertingGroups())];
  }

  /** The alerting actor's rules in Prometheus's rule-group shape (none when no alerting actor answers). */
  private async alertingGroups(): Promise<{ name: string; file: string; interval: number; rules: { alerts: unknown[] }[] }[]> {
    type View = { labels: Labels; annotations: Record<string, string>; state: 'pending' | 'firing' | 'resolved'; activeAtMs: number; value: number };
    type Health = { health?: 'unknown' | 'ok' | 'err'; lastError?: string; lastEvaluationMs?: number; evaluationMs?: number; warnings?: string[] };
    type Rules = { rules: ({ name: string; expr: string; tenant?: string; labels?: Labels; annotations?: Record<string, string>; forMs?: number; keepFiringForMs?: number; group?: string; file?: string; intervalMs?: number; alerts: View[] } & Health)[] };
    const answer = await this.bus.request<Rules>(SUBJECTS.alertingRules, {}, { timeoutMs: 2_000 }).catch(() => undefined);
    if (answer === undefined) return [];
    // A tenant sees the platform's rules and its own (not other tenants'), and the alerts of its own series only.
    if (this.tenant !== undefined) {
      answer.rules = answer.rules.filter((rule) => rule.tenant === undefined || rule.tenant === this.tenant);
      for (const rule of answer.rules) rule.alerts = rule.alerts.filter((a) => a.labels.tenant === this.tenant);
    }
    const groups = new Map<string, { name: string; file: string; interval: number; rules: { alerts: unknown[] }[] }>();
    for (const rule of answer.rules) {
      const active = rule.alerts.filter((a) => a.state !== 'resolved');
      const alerts = active.map((a) => ({ labels: a.labels, annotations: a.annotations, state: a.state, activeAt: new Date(a.activeAtMs).toISOString(), value: formatFloat(a.value) }));
      const state = active.some((a) => a.state === 'firing') ? 'firing' : active.length > 0 ? 'pending' : 'inactive';
      const name = rule.group ?? 'craft';
      let group = groups.get(name);
      if (group === undefined) groups.set(name, (group = { name, file: rule.file ?? 'alerting.evaluator', interval: (rule.intervalMs ?? 0) / 1_000, rules: [] }));
      group.rules.push({
        name: rule.name,
        query: rule.expr,
        duration: (rule.forMs ?? 0) / 1_000,
        keepFiringFor: (rule.keepFiringForMs ?? 0) / 1_000,
        labels: rule.labels ?? {},
        annotations: rule.annotations ?? {},
        alerts,
        health: rule.health ?? 'unknown',
        lastError: rule.lastError ?? '',
        lastEvaluation: rule.lastEvaluationMs ? new Date(rule.lastEvaluationMs).toISOString() : '',
        evaluationTime: (rule.evaluationMs ?? 0) / 1_000,
        // Not Prometheus's: what the rule's last answer may have lacked (a storage member away).
        ...(rule.warnings !== undefined && rule.warnings.length > 0 ? { warnings: rule.warnings } : {}),
        type: 'alerting',
        state,
      } as { alerts: unknown[] });
    }
    return [...groups.values()];
  }
}

/** `limit`: a non-negative integer; 0 or absent means no limit. */
function limitParam(params: URLSearchParams): number | undefined {
  const text = params.get('limit');
  if (text === null || text === '') return undefined;
  const limit = Number(text);
  if (!Number.isInteger(limit) || limit < 0) throw new ApiError('bad_data', `invalid parameter "limit": ${text} is not a non-negative integer`);
  return limit === 0 ? undefined : limit;
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (value === null || value === '') throw new ApiError('bad_data', `invalid parameter "${name}": missing`);
  return value;
}
