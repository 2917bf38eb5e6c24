/**
 * The alerting actor hosts two slots: `alerting.evaluator` (what the rules find, every tick)
 * and `alerting.lifecycle` (what becomes of each alert: pending, firing, resolved; silences,
 * inhibition, grouping into notifications). The lifecycle's state is event-sourced in the
 * `alerts` journal: every event it emits is appended (in order) before it is published —
 *
 *   craft.alerting.events.<pending|firing|resolved|inactive|acknowledged>   an alert changed phase or was acknowledged
 *   craft.alerting.notifications                               a group's notification
 *
 * — and after a restart the folded state goes back to the lifecycle, which resumes pending
 * timers and does not repeat notifications it already sent. A notification, once journaled, is
 * put in the durable delivery queue (actors/notifier-queue.ts); the notifier actor sends it. Pending and firing alerts are also
 * written back as Prometheus's `ALERTS{alertname, alertstate, …}` series through the queue.
 */
import { Actor } from '../core/actor/actor.js';
import { CraftError } from '../core/errors.js';
import { Journal } from '../core/journal/journal.js';
import { SUBJECTS, alertEventSubject, handoverSubject } from '../core/subjects.js';
import { QueryClient } from '../core/query/client.js';
import { QueueClient } from '../core/queue/protocol.js';
import { encodeBatch, METRIC_NAME_LABEL, type WireSample } from '../core/model.js';
import { decodeQueueMessage } from '../core/queue/message.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { AlertEvaluator, AlertLifecycle, AlertView, LifecycleEvent, LifecycleState, Silence } from '../core/slots/alerting.js';
import { tokenTable } from '../core/auth/tokens.js';
import { ensureDeliveryStreams, queueNotification, NOTIFICATION_QUEUE_MAX, UNROUTED_WARNING } from './notifier-queue.js';
import type { Timer } from '../core/clock.js';
import type { IncomingMessage, Server } from 'node:http';
import { ALERTING_BODY_BYTES_MAX, acknowledge, handleAlertingApi, parseAckBody } from './alerting-api.js';
import { closeApi, listenApi, portOf, type ApiAnswer } from '../core/http/api-server.js';
import { BODY_ABORTED, BODY_TOO_LARGE, readBody } from '../core/ingestion/node-http.js';
import { handleRulerApi, ManagedRules, RULER_PREFIX, type ManagedGroup } from './alerting-ruler.js';

/** The evaluator plugin that evaluates rule groups set through the ruler API. */
const MANAGED_RULES_PLUGIN = 'alerting.rules';

/** The client id `ALERTS` samples are appended as (it picks their queue partition). */
export const ALERTS_CLIENT = 'alerting';

/** The tap lease the alerting actor asks for, and how often it renews it, ms. */
const TAP_LEASE_MS = 15_000;
const TAP_RENEW_MS = 5_000;
/** Attempts to queue a notification while JetStream does not answer, and the pause before the k-th retry (k × this), ms. */
const QUEUE_ATTEMPTS = 4;
const QUEUE_RETRY_MS = 500;
/** How long the receivers check waits for the notifier, ms. */
const RECEIVERS_CHECK_TIMEOUT_MS = 2_000;
/** Alertmanager's API version we answer as (`/api/v2/status`). */
const ALERTMANAGER_COMPATIBLE_VERSION = '0.25.0';

/** The body parsed as JSON (undefined when empty); a 4xx answer when it is too large or not JSON. */
async function readText(request: IncomingMessage): Promise<{ ok: true; text: string } | { ok: false; answer: ApiAnswer }> {
  const body = await readBody(request, ALERTING_BODY_BYTES_MAX);
  if (body === BODY_TOO_LARGE) return { ok: false, answer: { status: 413, body: JSON.stringify({ error: `request body larger than ${ALERTING_BODY_BYTES_MAX} bytes` }) } };
  if (body === BODY_ABORTED) return { ok: false, answer: { status: 400, body: JSON.stringify({ error: 'the request ended before its body' }) } };
  return { ok: true, text: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') };
}

async function readJson(request: IncomingMessage): Promise<{ ok: true; value: unknown } | { ok: false; answer: ApiAnswer }> {
  const read = await readText(request);
  if (!read.ok) return read;
  const text = read.text;
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, answer: { status: 400, body: JSON.stringify({ error: `body is not JSON: ${(error as Error).message}` }) } };
  }
}

/** A rule's last periodic evaluation: Prometheus's `health`, `lastError`, `lastEvaluation`, `evaluationTime`, and what its answer may lack. */
interface RuleHealth {
  health: 'unknown' | 'ok' | 'err';
  lastError: string;
  /** 0 before the first evaluation. */
  lastEvaluationMs: number;
  evaluationMs: number;
  /** The query's warnings (a storage member away): alerts the answer did not show kept their state. */
  warnings: string[];
}

/** A rule's key in `ruleHealth`: its group and name. */
const healthKey = (group: string | undefined, rule: string): string => `${group ?? ''}\0${rule}`;

export class AlertingActor extends Actor {
  private evaluator!: AlertEvaluator;
  private evaluatorId = '';
  private lifecycle!: AlertLifecycle;
  private lifecycleId = '';
  private journal!: Journal<LifecycleState, LifecycleEvent>;
  /** Journal appends and the publications after them, in the order the lifecycle emitted them. */
  private recording: Promise<void> = Promise.resolve();
  private timer: Timer | undefined;
  private evaluating: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly queries: QueryClient;
  private readonly queue: QueueClient;
  private evaluations = 0;
  private notifications = 0;
  private lifecycleOptions: Record<string, unknown> = {};
  /** Notifications the delivery queue refused (full, or JetStream away): logged and counted. */
  private notificationsRefused = 0;
  private http: Server | undefined;
  private startedAtMs = 0;
  /** The ingestion tap while the evaluator streams rules: its subscription and lease renewal. */
  private tap: { unsubscribe(): void } | undefined;
  private tapLease: Timer | undefined;
  private streamedBatches = 0;
  /** Rule groups set through the ruler API (alerting-ruler.ts), mirrored from their bucket. */
  private managed!: ManagedRules;
  /** Ruler API changes, one at a time. */
  private rulerChanges: Promise<void> = Promise.resolve();
  /** Each rule's last periodic evaluation, by `group\0rule` (Prometheus's rule health). */
  private readonly ruleHealth = new Map<string, RuleHealth>();

  constructor(private readonly context: PlatformContext) {
    super('alerting', context);
    this.queries = new QueryClient(context.bus);
    this.queue = new QueueClient(context.bus);
    this.handle(SUBJECTS.alertingRules, () => this.rules(), { concurrency: 4 });
    this.handle(SUBJECTS.alertingAlerts, () => ({ alerts: this.lifecycle.alerts() }), { concurrency: 4 });
    this.handle(SUBJECTS.alertingSilences, () => ({ silences: this.lifecycle.silences() }), { concurrency: 4 });
    this.handle(SUBJECTS.alertingSilenceCreate, (body: unknown) => this.createSilence(body));
    this.handle(SUBJECTS.alertingSilenceExpire, (body: { id?: unknown }) => {
      if (typeof body?.id !== 'string') throw new CraftError('CRAFT_BAD_REQUEST', 'expire needs {"id": "<silence id>"}');
      return this.lifecycle.expireSilence(body.id);
    });
    this.handle(SUBJECTS.alertingAck, (body: unknown) => ({ acknowledged: acknowledge(this.lifecycle, parseAckBody(body)) }));
    this.handle(SUBJECTS.alertingOnCall, (body: { atMs?: unknown }) => ({ oncall: this.lifecycle.onCall?.(typeof body?.atMs === 'number' ? body.atMs : this.clock.now()) ?? [] }));
    this.handle(SUBJECTS.alertingReceivers, () => ({ receivers: this.lifecycle.receivers?.() ?? [] }), { concurrency: 4 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.evaluatorId === '' ? undefined : { 'alerting.evaluator': this.evaluatorId, 'alerting.lifecycle': this.lifecycleId };
  }

  protected override async onStart(): Promise<void> {
    const lifecycle = await currentChoice(this.context, 'alerting.lifecycle');
    this.lifecycle = this.context.registry.instantiate('alerting.lifecycle', lifecycle.id, { log: this.log }, lifecycle.options);
    this.lifecycleId = lifecycle.id;
    this.lifecycleOptions = lifecycle.options;
    this.startedAtMs = this.clock.now();
    this.journal = await Journal.open<LifecycleState, LifecycleEvent>(this.bus, {
      name: 'alerts',
      replicas: this.context.config.nats.replicas,
      initial: () => this.lifecycle.initialState(),
      apply: (state, event) => this.lifecycle.fold(state, event),
      snapshotEvery: 1_000,
    });
    await ensureDeliveryStreams(this.bus, this.context.config.nats.replicas);
    this.startLifecycle(this.journal.state);
    this.managed = await ManagedRules.open(this.bus, this.context.config.nats.replicas);
    const choice = await currentChoice(this.context, 'alerting.evaluator');
    this.useEvaluator(this.buildEvaluator(choice.id, choice.options), choice.id);
    this.schedule();
    await this.listen();
  }

  /**
   * Follows ingestion's tap while the evaluator decides rules on the sample stream: holds a lease
   * (renewed every TAP_RENEW_MS for TAP_LEASE_MS) so ingestion publishes what it acknowledges,
   * skips messages that name none of the streamed metrics, and hands the rest to the evaluator.
   * The tap is at most once (core NATS): what it misses, the periodic evaluation still sees.
   */
  private tapIfStreaming(): void {
    this.untap();
    const metrics = this.evaluator.streamMetrics?.();
    if (metrics === undefined || (metrics !== null && metrics.length === 0) || this.stopped) return;
    const needles = metrics === null ? undefined : metrics.map((m) => Buffer.from(JSON.stringify(m)));
    const evaluator = this.evaluator;
    const subscription = this.bus.nc.subscribe(SUBJECTS.ingestionTap, {
      callback: (error, message) => {
        if (error !== null || this.stopped || evaluator !== this.evaluator) return;
        const data = Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength);
        if (needles !== undefined && !needles.some((needle) => data.includes(needle))) return;
        let samples;
        try {
          samples = decodeQueueMessage(data.toString('utf8')).flatMap((batch) => batch.samples);
        } catch (failure) {
          this.log.warn('undecodable tap message skipped', { error: failure });
          return;
        }
        this.streamedBatches += 1;
        const results = evaluator.stream!(samples, this.clock.now());
        if (results.length > 0) this.lifecycle.observe(results);
      },
    });
    const hello = this.bus.nc.subscribe(SUBJECTS.ingestionTapHello, { callback: () => this.bus.publish(SUBJECTS.ingestionTapLease, { forMs: TAP_LEASE_MS }) });
    this.tap = { unsubscribe: () => (subscription.unsubscribe(), hello.unsubscribe()) };
    const tap = this.tap;
    const renew = (): void => {
      if (this.tap !== tap) return;
      this.bus.publish(SUBJECTS.ingestionTapLease, { forMs: TAP_LEASE_MS });
      this.tapLease = this.clock.setTimeout(renew, TAP_RENEW_MS);
    };
    renew();
  }

  private untap(): void {
    this.tap?.unsubscribe();
    this.tap = undefined;
    this.tapLease?.cancel();
    this.tapLease = undefined;
  }

  get port(): number {
    return portOf(this.http);
  }

  private async listen(): Promise<void> {
    const { host, alertingPort } = this.context.config.http;
    const api = {
      lifecycle: () => this.lifecycle,
      rules: () => this.rules(),
      reloadRules: () => this.reloadRules(),
      config: () => ({ receiver: 'default', ...this.lifecycleOptions }),
      nowMs: () => this.clock.now(),
      startedAtMs: this.startedAtMs,
      version: ALERTMANAGER_COMPATIBLE_VERSION,
    };
    const answer = async (request: IncomingMessage): Promise<ApiAnswer> => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const method = request.method ?? 'GET';
      // Auth (when tokens are configured): reading needs `read`, posting alerts `write`, changing silences, acknowledging and reloading `admin`.
      let tenant: string | undefined;
      const tokens = tokenTable(this.context.config.auth.tokens);
      if (tokens !== undefined && url.pathname !== '/-/healthy' && url.pathname !== '/-/ready') {
        const scope = method === 'GET' || method === 'HEAD' ? 'read' : method === 'POST' && url.pathname === '/api/v2/alerts' ? 'write' : 'admin';
        const auth = tokens.check(request.headers.authorization, scope);
        if (!auth.ok) return { status: auth.status, body: JSON.stringify({ error: auth.error }), ...(auth.status === 401 ? { headers: { 'WWW-Authenticate': 'Bearer' } } : {}) };
        tenant = auth.tenant;
      }
      if (url.pathname === RULER_PREFIX || url.pathname.startsWith(`${RULER_PREFIX}/`)) {
        const raw = method === 'POST' ? await readText(request) : { ok: true as const, text: '' };
        if (!raw.ok) return raw.answer;
        const ruler = {
          rules: this.managed,
          apply: (change: { put?: ManagedGroup; delete?: ManagedGroup[] }) => this.applyRulerChange(change),
          refusal: () => (this.evaluatorId === MANAGED_RULES_PLUGIN ? undefined : `the alerting.evaluator is ${this.evaluatorId}: rule groups set through this API are evaluated by ${MANAGED_RULES_PLUGIN} (craft swap alerting.evaluator ${MANAGED_RULES_PLUGIN})`),
        };
        return handleRulerApi(ruler, method, url.pathname, raw.text, tenant);
      }
      let body: unknown;
      if (method === 'POST' || method === 'PUT') {
        const read = await readJson(request);
        if (!read.ok) return read.answer;
        body = read.value;
      }
      return handleAlertingApi(api, method, url, body, tenant);
    };
    const http = await listenApi('alerting', host, alertingPort, answer, (error) => ({ status: 500, body: JSON.stringify({ error: `alerting API failed: ${error.message}` }) }));
    this.http = http;
    this.log.info('alerting listening', { host, port: this.port, evaluator: this.evaluatorId, lifecycle: this.lifecycleId });
  }

  private async closeHttp(): Promise<void> {
    const http = this.http;
    this.http = undefined;
    await closeApi(http);
  }

  /** Re-reads the evaluator's rule files (a new evaluator of the same plugin); a bad file keeps the old rules and says why. */
  private async reloadRules(): Promise<{ rules: number }> {
    const choice = await currentChoice(this.context, 'alerting.evaluator');
    await this.evaluating;
    this.useEvaluator(this.buildEvaluator(choice.id, choice.options), choice.id);
    return { rules: this.evaluator.rules().length };
  }

  /**
   * Makes `evaluator` the active one: rule health starts over, the alerts of rules it does not
   * have resolve (the lifecycle's `retainRules`), the ingestion tap follows its streamed rules.
   */
  private useEvaluator(evaluator: AlertEvaluator, id: string): void {
    this.evaluator = evaluator;
    this.evaluatorId = id;
    this.ruleHealth.clear();
    this.lifecycle.retainRules?.(evaluator.rules());
    this.tapIfStreaming();
  }

  private startLifecycle(state: LifecycleState): void {
    this.lifecycle.start(state, { clock: this.clock, log: this.log, emit: (event) => this.record(event) });
    this.checkReceivers();
  }

  /**
   * Receivers the lifecycle may notify that the notifier's delivery plugin has no channel for:
   * said at start and after swaps (best effort — the notifier may run elsewhere or start later;
   * it says the same after its own swaps, and once per receiver when a notification goes nowhere).
   */
  private checkReceivers(): void {
    const receivers = this.lifecycle.receivers?.() ?? [];
    if (receivers.length === 0) return;
    const lifecycle = this.lifecycleId;
    this.bus
      .request<{ delivery: string; missing: string[] }>(SUBJECTS.notifierUnrouted, { receivers }, { timeoutMs: RECEIVERS_CHECK_TIMEOUT_MS })
      .then(({ delivery, missing }) => {
        if (missing.length > 0) this.log.warn(UNROUTED_WARNING, { receivers: missing, lifecycle, delivery });
      })
      .catch((error: unknown) => this.log.warn('no notifier answered: notifications wait in the delivery queue until one runs', { error }));
  }

  /**
   * Journals the event, then publishes it; a journal that cannot be written crashes the actor
   * (the supervisor restarts it and it replays). A notification is queued for delivery *before*
   * it is journaled: a crash in between makes the restarted lifecycle notify again (at least
   * once — with the same id, which the queue's duplicate window drops, when no other
   * notification came first), where the other order would lose it.
   */
  private record(event: LifecycleEvent): void {
    this.recording = this.recording
      .then(async () => {
        if (event.type === 'notified' && event.notification.alerts.length > 0) await this.queueForDelivery(event);
        await this.journal.append(event);
        this.publish(event);
      })
      .catch((error: unknown) => this.crash(error));
  }

  /** Queues a notification, trying again for a few seconds while JetStream does not answer (a full queue is not tried again). */
  private async queueForDelivery(event: Extract<LifecycleEvent, { type: 'notified' }>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await queueNotification(this.bus, event.notification);
        return;
      } catch (error) {
        const full = /maximum messages/i.test(String((error as Error).message));
        if (!full && attempt < QUEUE_ATTEMPTS && !this.stopped) {
          await new Promise((resolve) => setTimeout(resolve, QUEUE_RETRY_MS * attempt));
          continue;
        }
        this.notificationsRefused += 1;
        this.log.error('notification not queued for delivery', { notification: event.notification.id, receiver: event.notification.receiver, attempts: attempt, limit: NOTIFICATION_QUEUE_MAX, error });
        return;
      }
    }
  }

  private publish(event: LifecycleEvent): void {
    if (event.type === 'alert') {
      const a = event.alert;
      const atMs = a.state === 'pending' ? a.activeAtMs : a.state === 'firing' ? (a.clearedAtMs > 0 ? a.clearedAtMs : a.firedAtMs) : a.resolvedAtMs;
      this.bus.publish(alertEventSubject(a.state), { type: a.state, rule: a.rule, fingerprint: a.fingerprint, labels: a.labels, annotations: a.annotations, value: a.value, summary: a.annotations.summary ?? '', atMs, keepFiring: a.clearedAtMs > 0 });
    } else if (event.type === 'alert-dropped') {
      this.bus.publish(alertEventSubject('inactive'), { type: 'inactive', fingerprint: event.fingerprint, atMs: event.atMs });
    } else if (event.type === 'notified' && event.notification.alerts.length > 0) {
      this.notifications += 1;
      this.bus.publish(SUBJECTS.alertingNotifications, event.notification);
    } else if (event.type === 'silence') {
      this.bus.publish(alertEventSubject('silence'), event.silence);
    } else if (event.type === 'ack') {
      this.bus.publish(alertEventSubject('acknowledged'), event);
    }
  }

  /** The evaluator `plugin` with `options`, plus the config's seed rules and (phase 1) the groups set through the ruler API. */
  private makeEvaluator(plugin: string, options: Record<string, unknown>, managed: ManagedGroup[] = this.managed.all()): AlertEvaluator {
    const rules = this.context.config.alerting.rules;
    let merged = rules === undefined || 'rules' in options ? options : { ...options, rules };
    if (plugin === MANAGED_RULES_PLUGIN && managed.length > 0) merged = { ...merged, managed: managed.map((g) => ({ ...(g.tenant === undefined ? {} : { tenant: g.tenant }), namespace: g.namespace, yaml: g.yaml })) };
    else if (managed.length > 0) this.log.warn(`rule groups set through the ruler API are evaluated by ${MANAGED_RULES_PLUGIN}, not ${plugin}: they wait`, { groups: managed.length });
    return this.context.registry.instantiate('alerting.evaluator', plugin, { log: this.log }, merged);
  }

  /**
   * The evaluator as configured, with the ruler API's groups — or, when those no longer build with
   * the configured rules (a rule file now has a group of the same name), without them: said in
   * the log, never a crash loop. A configured rule that is wrong still throws.
   */
  private buildEvaluator(plugin: string, options: Record<string, unknown>): AlertEvaluator {
    try {
      return this.makeEvaluator(plugin, options);
    } catch (error) {
      if (this.managed.all().length === 0) throw error;
      const evaluator = this.makeEvaluator(plugin, options, []);
      this.log.error('rule groups set through the ruler API do not build with the configured rules: evaluated without them until that is fixed', { error: (error as Error).message });
      return evaluator;
    }
  }

  /** A ruler API change: the evaluator is built with it first (a bad group changes nothing), then it is stored and takes over. */
  private applyRulerChange(change: { put?: ManagedGroup; delete?: ManagedGroup[] }): Promise<void> {
    const run = this.rulerChanges.then(async () => {
      const choice = await currentChoice(this.context, 'alerting.evaluator');
      if (choice.id !== MANAGED_RULES_PLUGIN) throw new CraftError('CRAFT_BAD_REQUEST', `the alerting.evaluator is now ${choice.id}, not ${MANAGED_RULES_PLUGIN}`);
      const next = change.put !== undefined ? this.managed.withGroup(change.put) : this.managed.without(change.delete ?? []);
      let evaluator: AlertEvaluator;
      try {
        evaluator = this.makeEvaluator(choice.id, choice.options, next);
      } catch (error) {
        throw new CraftError('CRAFT_BAD_REQUEST', (error as Error).message, { cause: error });
      }
      if (change.put !== undefined) await this.managed.put(change.put);
      if (change.delete !== undefined) await this.managed.delete(change.delete);
      await this.evaluating;
      this.useEvaluator(evaluator, choice.id);
    });
    this.rulerChanges = run.catch(() => undefined);
    return run;
  }

  private tickMs(): number {
    return Math.min(this.context.config.alerting.evalIntervalMs, this.evaluator.tickMs?.() ?? Number.POSITIVE_INFINITY);
  }

  /**
   * The next tick falls on the next multiple of the tick interval: evaluators that evaluate at
   * aligned instants (phase 1's groups) then run right at their instant, not up to an interval later.
   */
  private schedule(): void {
    if (this.stopped) return;
    const tickMs = this.tickMs();
    const nowMs = this.clock.now();
    this.timer = this.clock.setTimeout(() => {
      this.evaluating = this.evaluateOnce().finally(() => this.schedule());
    }, tickMs - (nowMs % tickMs));
  }

  /** One evaluation of the rules that are due; a query that fails (storage restarting) is retried next time. */
  private async evaluateOnce(): Promise<void> {
    let results;
    const nowMs = this.clock.now();
    try {
      results = await this.evaluator.evaluate(nowMs, this.queries);
    } catch (error) {
      this.log.warn('evaluation failed; retrying at the next interval', { error });
      return;
    }
    if (results.length === 0) return;
    this.evaluations += 1;
    for (const r of results) {
      this.ruleHealth.set(healthKey(r.group, r.rule), {
        health: r.error === undefined ? 'ok' : 'err',
        lastError: r.error ?? '',
        lastEvaluationMs: r.evaluatedAtMs ?? nowMs,
        evaluationMs: r.evaluationMs ?? 0,
        warnings: r.warnings ?? [],
      });
    }
    this.lifecycle.observe(results);
    await this.writeAlertsSeries(results[0]?.evaluatedAtMs ?? nowMs);
  }

  /** `ALERTS{alertname, alertstate, …} 1` for every pending and firing alert, as Prometheus writes them. */
  private async writeAlertsSeries(atMs: number): Promise<void> {
    const samples: WireSample[] = [];
    for (const alert of this.lifecycle.records()) {
      if (alert.state === 'resolved') continue;
      samples.push([{ ...alert.labels, [METRIC_NAME_LABEL]: 'ALERTS', alertstate: alert.state }, atMs, 1]);
    }
    if (samples.length === 0) return;
    try {
      await this.queue.append(ALERTS_CLIENT, new TextEncoder().encode(encodeBatch({ client: ALERTS_CLIENT, receivedAtMs: atMs, samples }, true)));
    } catch (error) {
      this.log.warn('ALERTS series not written this time', { error });
    }
  }

  private createSilence(body: unknown): Silence {
    const input = (body ?? {}) as Partial<Silence> & { startsAt?: unknown; endsAt?: unknown };
    const now = this.clock.now();
    const time = (value: unknown, fallback: number): number => (typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : fallback);
    return this.lifecycle.silence({
      ...(typeof input.id === 'string' ? { id: input.id } : {}),
      matchers: Array.isArray(input.matchers) ? input.matchers : [],
      startsAtMs: time(input.startsAtMs ?? input.startsAt, now),
      endsAtMs: time(input.endsAtMs ?? input.endsAt, Number.NaN),
      createdBy: typeof input.createdBy === 'string' ? input.createdBy : '',
      comment: typeof input.comment === 'string' ? input.comment : '',
    });
  }

  protected override async onStop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.untap();
    await this.closeHttp();
    await this.evaluating;
    this.lifecycle?.stop();
    await this.recording;
  }

  protected override async onCrash(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.untap();
    this.lifecycle?.stop();
    await this.closeHttp();
  }

  private rules(): { plugin: string; lifecycle: string; evaluations: number; streamedBatches: number; notifications: number; notificationsRefused: number; rules: (ReturnType<AlertEvaluator['rules']>[number] & RuleHealth & { alerts: AlertView[] })[] } {
    const byName = new Map<string, AlertView[]>();
    for (const a of this.lifecycle.alerts()) {
      const same = byName.get(a.rule);
      if (same === undefined) byName.set(a.rule, [a]);
      else same.push(a);
    }
    const unknown: RuleHealth = { health: 'unknown', lastError: '', lastEvaluationMs: 0, evaluationMs: 0, warnings: [] };
    return {
      plugin: this.evaluatorId,
      lifecycle: this.lifecycleId,
      evaluations: this.evaluations,
      streamedBatches: this.streamedBatches,
      notifications: this.notifications,
      notificationsRefused: this.notificationsRefused,
      rules: this.evaluator.rules().map((rule) => ({
        ...rule,
        ...(this.ruleHealth.get(healthKey(rule.group, rule.name)) ?? unknown),
        // Two groups (two tenants) may have rules of one name: each lists its own alerts.
        alerts: (byName.get(rule.name) ?? []).filter((a) => a.group === undefined || a.group === '' || rule.group === undefined || a.group === rule.group),
      })),
    };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    const started = this.clock.now();
    await this.evaluating;
    if (request.slot === 'alerting.lifecycle') {
      // The state is the journal's: the new lifecycle starts from it, the old one stops its timers.
      await this.recording;
      const from = this.lifecycleId;
      const next = this.context.registry.instantiate('alerting.lifecycle', request.plugin, { log: this.log }, request.options);
      this.lifecycle.stop();
      this.lifecycle = next;
      this.lifecycleId = request.plugin;
      this.lifecycleOptions = request.options;
      this.startLifecycle(this.journal.state);
      return { slot: 'alerting.lifecycle', from, to: request.plugin, tookMs: this.clock.now() - started, detail: 'the new lifecycle resumed every alert, silence and group from the journal' };
    }
    if (request.slot !== 'alerting.evaluator') throw new CraftError('CRAFT_SLOT_NOT_HOSTED', `the alerting actor hosts alerting.evaluator and alerting.lifecycle, not ${request.slot}`);
    const from = this.evaluatorId;
    this.useEvaluator(this.buildEvaluator(request.plugin, request.options), request.plugin);
    return { slot: 'alerting.evaluator', from, to: request.plugin, tookMs: this.clock.now() - started, detail: 'alert state stays in the journal; the next evaluation uses the new evaluator' };
  }
}
