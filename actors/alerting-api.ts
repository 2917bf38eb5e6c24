/**
 * The alerting actor's HTTP API (port 9093 by default, Alertmanager's):
 *
 *   Alertmanager API v2 (what Prometheus, amtool and Grafana speak)
 *     POST /api/v2/alerts            alerts evaluated elsewhere (Prometheus's `alerting:` section)
 *     GET  /api/v2/alerts            firing alerts with their status (active / suppressed); filter, receiver, active, silenced, inhibited
 *     GET  /api/v2/alerts/groups     the same by notification group, with the group's labels and receiver
 *     GET  /api/v2/receivers         receiver names
 *     GET  /api/v2/silences          silences (filter);  POST /api/v2/silences  → {silenceID}
 *     GET  /api/v2/silence/{id}      one silence;  DELETE /api/v2/silence/{id}  expires it
 *     GET  /api/v2/status            version, uptime, configuration
 *     GET  /-/healthy, /-/ready
 *   The platform's own
 *     GET  /api/v1/alerts            every alert: pending, firing, resolved, with what mutes it
 *     GET  /api/v1/rules             rules and their alerts
 *     POST /api/v1/rules/reload      re-reads the evaluator's rule files
 *     POST /api/v1/alerts/ack        acknowledges firing alerts (phase 4) {fingerprints?, matchers?, by, comment?}
 *     GET  /api/v1/oncall[?time=]    who is on call in each schedule (phase 4)
 *   Mimir's ruler API, /prometheus/config/v1/rules…: actors/alerting-ruler.ts
 *
 * Every error is a 4xx/5xx with a JSON body naming the problem; bodies are bounded.
 */
import type { AckInput, AlertGroupView, AlertLifecycle, AlertView, ExternalAlert, Silence } from '../core/slots/alerting.js';
import { CraftError } from '../core/errors.js';
import { compileMatchers, isLabelName, type LabelMatcher } from '../core/model.js';
import { parseSelector } from '../core/query/selector.js';
import { parseMatcher } from '../core/rules/matcher.js';

/** Largest request body the API reads, bytes. */
export const ALERTING_BODY_BYTES_MAX = 4 * 1024 * 1024;
/** Alerts one `POST /api/v2/alerts` may carry. */
export const POSTED_ALERTS_MAX = 10_000;

import type { ApiAnswer } from '../core/http/api-server.js';

export interface AlertingApiHost {
  lifecycle(): AlertLifecycle;
  rules(): unknown;
  reloadRules(): Promise<unknown>;
  config(): Record<string, unknown>;
  nowMs(): number;
  startedAtMs: number;
  version: string;
}

const json = (status: number, body: unknown): ApiAnswer => ({ status, body: JSON.stringify(body) });
const iso = (ms: number): string => new Date(ms).toISOString();
/** Alertmanager's "zero time" for an alert without an end. */
const ZERO_TIME = '0001-01-01T00:00:00.000Z';

function badRequest(message: string): never {
  throw new CraftError('CRAFT_BAD_REQUEST', message);
}

/** A time as Alertmanager takes it (RFC 3339), or undefined when absent. */
function timeOf(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null || value === '' || value === ZERO_TIME) return undefined;
  if (typeof value !== 'string') badRequest(`${what} must be an RFC 3339 time string`);
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) badRequest(`${what} is not an RFC 3339 time: ${JSON.stringify(value)}`);
  // Go's zero time and other times before 1970 mean "not set" to Alertmanager's clients.
  return ms <= 0 ? undefined : ms;
}

function stringMap(value: unknown, what: string, names: boolean): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) badRequest(`${what} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') badRequest(`${what}.${k} must be a string`);
    if (names && !isLabelName(k)) badRequest(`${what}: ${JSON.stringify(k)} is not a valid label name`);
    out[k] = v;
  }
  return out;
}

export function parsePostedAlerts(body: unknown): ExternalAlert[] {
  if (!Array.isArray(body)) badRequest('the body must be a JSON array of alerts');
  if (body.length > POSTED_ALERTS_MAX) badRequest(`at most ${POSTED_ALERTS_MAX} alerts a request, got ${body.length}`);
  return body.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null) badRequest(`alert ${i} must be an object`);
    const a = raw as Record<string, unknown>;
    const labels = stringMap(a.labels, `alert ${i} labels`, true);
    for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];
    if (Object.keys(labels).length === 0) badRequest(`alert ${i} has no labels`);
    const startsAtMs = timeOf(a.startsAt, `alert ${i} startsAt`);
    const endsAtMs = timeOf(a.endsAt, `alert ${i} endsAt`);
    if (startsAtMs !== undefined && endsAtMs !== undefined && endsAtMs < startsAtMs) badRequest(`alert ${i}: endsAt is before startsAt`);
    const generatorUrl = typeof a.generatorURL === 'string' && a.generatorURL !== '' ? a.generatorURL : undefined;
    return {
      labels,
      annotations: stringMap(a.annotations, `alert ${i} annotations`, false),
      ...(startsAtMs === undefined ? {} : { startsAtMs }),
      ...(endsAtMs === undefined ? {} : { endsAtMs }),
      ...(generatorUrl === undefined ? {} : { generatorUrl }),
    };
  });
}

/** Alertmanager's matcher shape `{name, value, isRegex, isEqual}` → ours; `{name, op, value}` is taken as well. */
function parseMatchers(list: unknown[]): Silence['matchers'] {
  return list.map((raw, i) => {
    const m = (raw ?? {}) as Record<string, unknown>;
    if (typeof m.name !== 'string' || typeof m.value !== 'string') badRequest(`matcher ${i} needs a string name and value`);
    if (typeof m.op === 'string') {
      if (!['=', '!=', '=~', '!~'].includes(m.op)) badRequest(`matcher ${i}: op must be one of =, !=, =~, !~`);
      return { name: m.name, value: m.value, op: m.op as Silence['matchers'][number]['op'] };
    }
    const regex = m.isRegex === true;
    const equal = m.isEqual !== false;
    return { name: m.name, value: m.value, op: (regex ? (equal ? '=~' : '!~') : equal ? '=' : '!=') as Silence['matchers'][number]['op'] };
  });
}

/** An acknowledgement: `{fingerprints?: string[], matchers?: [...], by, comment?}`. */
export function parseAckBody(body: unknown): AckInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) badRequest('the body must be an object {fingerprints?, matchers?, by, comment?}');
  const b = body as Record<string, unknown>;
  if (b.fingerprints !== undefined && (!Array.isArray(b.fingerprints) || b.fingerprints.some((f) => typeof f !== 'string'))) badRequest('fingerprints must be an array of strings');
  if (b.matchers !== undefined && !Array.isArray(b.matchers)) badRequest('matchers must be an array of {name, value, isRegex?, isEqual?}');
  if (typeof b.by !== 'string' || b.by.trim() === '') badRequest('"by" (who acknowledges) is required');
  if (b.comment !== undefined && typeof b.comment !== 'string') badRequest('comment must be a string');
  return {
    ...(b.fingerprints === undefined ? {} : { fingerprints: b.fingerprints as string[] }),
    ...(b.matchers === undefined ? {} : { matchers: parseMatchers(b.matchers as unknown[]) }),
    by: b.by,
    ...(b.comment === undefined ? {} : { comment: b.comment as string }),
  };
}

/** Acknowledges through the lifecycle; a lifecycle without acknowledgement (phase 2) is a clear 400. */
export function acknowledge(lifecycle: AlertLifecycle, input: AckInput): ReturnType<NonNullable<AlertLifecycle['acknowledge']>> {
  if (lifecycle.acknowledge === undefined) badRequest('this lifecycle does not take acknowledgements: use phase 4 (plugin alerting.escalation in slot alerting.lifecycle)');
  return lifecycle.acknowledge(input);
}

export function parseSilenceBody(body: unknown, nowMs: number): Omit<Silence, 'createdAtMs' | 'id'> & { id?: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) badRequest('the body must be a silence object');
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b.matchers)) badRequest('matchers must be an array of {name, value, isRegex, isEqual?}');
  const matchers = parseMatchers(b.matchers);
  const startsAtMs = timeOf(b.startsAt, 'startsAt') ?? nowMs;
  const endsAtMs = timeOf(b.endsAt, 'endsAt');
  if (endsAtMs === undefined) badRequest('endsAt is required');
  return {
    ...(typeof b.id === 'string' && b.id !== '' ? { id: b.id } : {}),
    matchers,
    startsAtMs,
    endsAtMs,
    createdBy: typeof b.createdBy === 'string' ? b.createdBy : '',
    comment: typeof b.comment === 'string' ? b.comment : '',
  };
}

function silenceState(silence: Silence, nowMs: number): 'active' | 'pending' | 'expired' {
  if (nowMs < silence.startsAtMs) return 'pending';
  return nowMs < silence.endsAtMs ? 'active' : 'expired';
}

export function gettableSilence(silence: Silence, nowMs: number): unknown {
  return {
    id: silence.id,
    matchers: silence.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.op === '=~' || m.op === '!~', isEqual: m.op === '=' || m.op === '=~' })),
    startsAt: iso(silence.startsAtMs),
    endsAt: iso(silence.endsAtMs),
    updatedAt: iso(silence.createdAtMs),
    createdBy: silence.createdBy,
    comment: silence.comment,
    status: { state: silenceState(silence, nowMs) },
  };
}

/**
 * The request's `filter` parameters (Alertmanager's: each a matcher, `name=value` with the value
 * bare or quoted, `=~`, `!=`, `!~`; or a `{…}` list), or a 400 naming a bad one.
 */
function filterMatchers(url: URL): LabelMatcher[] {
  return url.searchParams.getAll('filter').flatMap((text) => {
    const trimmed = text.trim();
    try {
      return trimmed.startsWith('{') ? parseSelector(trimmed, { matchersOnly: true }) : [parseMatcher(trimmed)];
    } catch (error) {
      return badRequest(`bad filter ${JSON.stringify(text)}: ${(error as Error).message}`);
    }
  });
}

/**
 * What `GET /api/v2/alerts` and `/api/v2/alerts/groups` list, as Alertmanager filters it: firing
 * alerts of the caller, `active`/`silenced`/`inhibited` (default true), every `filter` matcher
 * (`name="value"`, `=~`, `!=`, `!~`), and `receiver` (a regex over whole receiver names); with
 * each alert's receivers — those of the groups it is notified in.
 */
function alertQuery(host: AlertingApiHost, url: URL, mine: (a: AlertView) => boolean): { groups: AlertGroupView[]; receiversOf: (fingerprint: string) => string[]; listed: (a: AlertView) => boolean } {
  const flag = (name: string): boolean => url.searchParams.get(name) !== 'false';
  const matches = compileMatchers(filterMatchers(url));
  const receiverParam = url.searchParams.get('receiver');
  let receiverRegex: RegExp | undefined;
  try {
    receiverRegex = receiverParam === null || receiverParam === '' ? undefined : new RegExp(`^(?:${receiverParam})$`);
  } catch (error) {
    badRequest(`bad receiver regex ${JSON.stringify(receiverParam)}: ${(error as Error).message}`);
  }
  const lifecycle = host.lifecycle();
  // A lifecycle without groups: one group of every firing alert, to the configured receiver.
  const all = lifecycle.alertGroups?.() ?? [{ labels: {}, receiver: String(host.config().receiver ?? 'default'), fingerprints: lifecycle.records().filter((a) => a.state === 'firing').map((a) => a.fingerprint) }];
  const groups = all.filter((g) => receiverRegex === undefined || receiverRegex.test(g.receiver));
  const receivers = new Map<string, string[]>();
  for (const g of groups) for (const fp of g.fingerprints) receivers.set(fp, [...(receivers.get(fp) ?? []), g.receiver].sort());
  const receiversOf = (fp: string): string[] => receivers.get(fp) ?? [];
  const listed = (a: AlertView): boolean => {
    if (a.state !== 'firing' || !mine(a) || !matches(a.labels)) return false;
    const silenced = a.silencedBy.length > 0;
    const inhibited = a.inhibitedBy.length > 0;
    if (silenced && !flag('silenced')) return false;
    if (inhibited && !flag('inhibited')) return false;
    return silenced || inhibited || flag('active');
  };
  return { groups, receiversOf, listed };
}

export function gettableAlert(alert: AlertView, receivers: string[]): unknown {
  const muted = alert.silencedBy.length > 0 || alert.inhibitedBy.length > 0;
  return {
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt: iso(alert.firedAtMs || alert.activeAtMs),
    endsAt: alert.state === 'resolved' ? iso(alert.resolvedAtMs) : alert.expiresAtMs !== undefined ? iso(alert.expiresAtMs) : ZERO_TIME,
    updatedAt: iso(Math.max(alert.activeAtMs, alert.firedAtMs, alert.clearedAtMs, alert.resolvedAtMs)),
    fingerprint: alert.fingerprint,
    receivers: receivers.map((name) => ({ name })),
    status: { state: muted ? 'suppressed' : 'active', silencedBy: alert.silencedBy, inhibitedBy: alert.inhibitedBy },
    generatorURL: alert.generatorUrl ?? '',
  };
}

/** With auth on, what a tenant may see and touch: alerts labelled with its tenant, silences that match only them. */
const TENANT = 'tenant';
const ownAlert = (tenant: string | undefined) => (a: { labels: Record<string, string> }): boolean => tenant === undefined || a.labels[TENANT] === tenant;
const ownSilence = (tenant: string | undefined) => (s: Silence): boolean => tenant === undefined || s.matchers.some((m) => m.name === TENANT && m.op === '=' && m.value === tenant);
const scopedMatchers = (matchers: Silence['matchers'], tenant: string | undefined): Silence['matchers'] =>
  tenant === undefined ? matchers : [...matchers.filter((m) => m.name !== TENANT), { name: TENANT, op: '=', value: tenant }];

/**
 * Answers one request; `body` is the parsed JSON body of a POST (undefined otherwise). `tenant`
 * (auth on): alerts posted get its `tenant` label; listings show its alerts and silences only;
 * silences and acknowledgements it makes match its alerts only.
 */
export async function handleAlertingApi(host: AlertingApiHost, method: string, url: URL, body: unknown, tenant?: string): Promise<ApiAnswer> {
  const path = url.pathname;
  const now = host.nowMs();
  const lifecycle = host.lifecycle();
  const mine = ownAlert(tenant);
  const mySilence = ownSilence(tenant);
  try {
    if (path === '/-/healthy' || path === '/-/ready') return { status: 200, body: 'OK', headers: { 'Content-Type': 'text/plain' } };
    if (path === '/api/v2/status' && method === 'GET') {
      return json(200, {
        cluster: { status: 'disabled', peers: [] },
        versionInfo: { version: host.version, revision: '', branch: '', buildUser: '', buildDate: '', goVersion: '' },
        config: { original: JSON.stringify(host.config(), null, 2) },
        uptime: iso(host.startedAtMs),
      });
    }
    if (path === '/api/v2/alerts') {
      if (method === 'POST') {
        const alerts = parsePostedAlerts(body);
        if (tenant !== undefined) for (const a of alerts) a.labels[TENANT] = tenant;
        lifecycle.receive(alerts);
        return json(200, {});
      }
      if (method !== 'GET') return json(405, { error: 'method not allowed; use GET or POST' });
      const { receiversOf, listed } = alertQuery(host, url, mine);
      // An alert no listed group has (the receiver filter left none of its groups) is not listed.
      const alerts = lifecycle.alerts().filter((a) => listed(a) && receiversOf(a.fingerprint).length > 0);
      return json(200, alerts.map((a) => gettableAlert(a, receiversOf(a.fingerprint))));
    }
    if (path === '/api/v2/alerts/groups' && method === 'GET') {
      const { groups, receiversOf, listed } = alertQuery(host, url, mine);
      const views = new Map(lifecycle.alerts().map((a) => [a.fingerprint, a]));
      const out = [];
      for (const group of groups) {
        const alerts = group.fingerprints.map((fp) => views.get(fp)).filter((a): a is AlertView => a !== undefined && listed(a));
        if (alerts.length > 0) out.push({ labels: group.labels, receiver: { name: group.receiver }, alerts: alerts.map((a) => gettableAlert(a, receiversOf(a.fingerprint))) });
      }
      return json(200, out);
    }
    if (path === '/api/v2/receivers' && method === 'GET') {
      const names = new Set([String(host.config().receiver ?? 'default'), ...(lifecycle.receivers?.() ?? [])]);
      return json(200, [...names].sort().map((name) => ({ name })));
    }
    if (path === '/api/v2/silences') {
      if (method === 'POST') {
        const input = parseSilenceBody(body, now);
        if (input.id !== undefined && tenant !== undefined && !lifecycle.silences().some((s) => s.id === input.id && mySilence(s))) return json(404, { error: `no silence with id ${JSON.stringify(input.id)}` });
        return json(200, { silenceID: lifecycle.silence({ ...input, matchers: scopedMatchers(input.matchers, tenant) }).id });
      }
      if (method !== 'GET') return json(405, { error: 'method not allowed; use GET or POST' });
      // As Alertmanager: a silence passes `filter` when the labels its equality matchers name satisfy every filter matcher.
      const matches = compileMatchers(filterMatchers(url));
      const passes = (silence: Silence): boolean => matches(Object.fromEntries(silence.matchers.filter((m) => m.op === '=').map((m) => [m.name, m.value])));
      return json(200, lifecycle.silences().filter((s) => mySilence(s) && passes(s)).map((s) => gettableSilence(s, now)));
    }
    const one = /^\/api\/v2\/silence\/([^/]+)$/.exec(path);
    if (one !== null) {
      const id = decodeURIComponent(one[1]!);
      if (!lifecycle.silences().some((s) => s.id === id && mySilence(s))) return json(404, { error: `no silence with id ${JSON.stringify(id)}` });
      if (method === 'DELETE') {
        lifecycle.expireSilence(id);
        return json(200, {});
      }
      if (method !== 'GET') return json(405, { error: 'method not allowed; use GET or DELETE' });
      const silence = lifecycle.silences().find((s) => s.id === id);
      return silence === undefined ? json(404, { error: `no silence with id ${JSON.stringify(id)}` }) : json(200, gettableSilence(silence, now));
    }
    if (path === '/api/v1/alerts/ack') {
      if (method !== 'POST') return json(405, { error: 'method not allowed; use POST' });
      const input = parseAckBody(body);
      if (tenant !== undefined) {
        const own = new Set(lifecycle.records().filter(mine).map((a) => a.fingerprint));
        if (input.fingerprints !== undefined) input.fingerprints = input.fingerprints.filter((fp) => own.has(fp));
        if (input.matchers !== undefined) input.matchers = scopedMatchers(input.matchers, tenant);
        if ((input.fingerprints ?? []).length === 0 && input.matchers === undefined) return json(404, { error: 'no firing alert matches the acknowledgement' });
      }
      return json(200, { status: 'success', data: { acknowledged: acknowledge(lifecycle, input) } });
    }
    if (path === '/api/v1/oncall' && method === 'GET') {
      const time = url.searchParams.get('time');
      const atMs = time === null ? now : /^\d+(\.\d+)?$/.test(time) ? Number(time) * 1_000 : Date.parse(time);
      if (!Number.isFinite(atMs)) return json(400, { error: `time is not a time: ${JSON.stringify(time)} (RFC 3339 or Unix seconds)` });
      return json(200, { status: 'success', data: { time: iso(atMs), oncall: lifecycle.onCall?.(atMs) ?? [] } });
    }
    if (path === '/api/v1/alerts' && method === 'GET') return json(200, { status: 'success', data: { alerts: lifecycle.alerts().filter(mine) } });
    if (path === '/api/v1/rules' && method === 'GET') {
      const rules = host.rules() as { rules?: { tenant?: string; alerts?: { labels: Record<string, string> }[] }[] };
      // A tenant sees the platform's rules and its own, and only its own alerts of them.
      const visible = (rules.rules ?? []).filter((r) => r.tenant === undefined || r.tenant === tenant);
      return json(200, { status: 'success', data: tenant === undefined ? rules : { ...rules, rules: visible.map((r) => ({ ...r, alerts: (r.alerts ?? []).filter(mine) })) } });
    }
    if (path === '/api/v1/rules/reload' && method === 'POST') return json(200, { status: 'success', data: await host.reloadRules() });
    return json(404, { error: `no route ${method} ${path}` });
  } catch (error) {
    if (error instanceof CraftError && error.code === 'CRAFT_BAD_REQUEST') return json(400, { error: error.message });
    if (error instanceof CraftError && error.code === 'CRAFT_NOT_FOUND') return json(404, { error: error.message });
    if (error instanceof CraftError && error.code === 'CRAFT_CONFIG_INVALID') return json(422, { error: error.message });
    throw error;
  }
}
