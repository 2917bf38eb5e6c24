/**
 * The alert lifecycle engine Craft #5's lifecycle phases share (phase 2 `alerting.lifecycle`,
 * phase 4 `alerting.escalation`): what Prometheus's rule manager and Alertmanager do to alerts,
 * with the gaps their users report closed.
 *
 * - **Lifecycle.** One xstate machine per alert (shared/machine.ts): inactive → pending →
 *   firing → resolved, `for` and `keep_firing_for` as timers on the platform's clock.
 * - **Dedup.** An alert is its labels' fingerprint: the same alert from every evaluation (and
 *   from every restart) is one alert.
 * - **Event-sourced.** Every change of phase, silence, acknowledgement and notification is an
 *   event the actor journals before anything is sent; after a restart the folded state gives
 *   each machine back its phase and times (a pending timer resumes with what is left of its
 *   `for`) and each group what it last notified (nothing is sent twice because of the restart).
 * - **Grouping.** The router (phase 2: one route; phase 4: a routing tree) puts each alert in
 *   one or more groups; a new group waits `groupWaitMs` to gather its alerts, later changes go
 *   out at most every `groupIntervalMs`, an unchanged group repeats after `repeatIntervalMs`. A
 *   **resolved** alert is notified at once, not held back for the next group interval
 *   (alertmanager#1660).
 * - **Silences and inhibition** (shared/muting.ts) keep muted alerts out of notifications.
 * - **Escalation and acknowledgement** (used by phase 4): a route's escalation policy tells
 *   tier k's receivers about an alert nobody acknowledged within the sum of the timeouts of the
 *   tiers before k, counted from the group's first notification of that alert; an acknowledged
 *   alert is neither repeated nor escalated until it resolves or fires anew.
 */
import { z } from 'zod';
import { createActor, type Actor } from 'xstate';
import { CraftError } from '../../../core/errors.js';
import { compileMatchers, isLabelName, type LabelMatcher } from '../../../core/model.js';
import type { Timer } from '../../../core/clock.js';
import type { AckInput, AlertGroupView, AlertLifecycle, AlertRecord, AlertRule, ExternalAlert, AlertView, GroupRecord, LifecycleEvent, LifecycleRuntime, LifecycleState, Notification, NotifiedAlert, OnCall, RuleEvaluation, Silence } from '../../../core/slots/alerting.js';
import { alertMachine, type AlertPhase } from './machine.js';
import { compileInhibitions, inhibitedBy, inhibitRuleSchema, silenceActive, silencedBy } from './muting.js';

/** Silences kept at most (active and expired); creating one more is refused. */
export const SILENCES_MAX = 10_000;
/** Alerts (pending, firing, resolved awaiting retention) kept at most; an evaluation's alerts beyond it are refused and logged. */
export const ALERTS_MAX = 100_000;

/** Options every lifecycle phase takes. */
export const lifecycleOptionShape = {
  /** How long a resolved alert stays listed (and can still be notified), ms. */
  resolvedRetentionMs: z.number().int().positive().default(15 * 60_000),
  inhibitRules: z.array(inhibitRuleSchema).default([]),
  /** How long an alert sent from outside without `endsAt` stays firing unless sent again (Alertmanager's `resolve_timeout`). */
  resolveTimeoutMs: z.number().int().positive().default(5 * 60_000),
};

/** A group's labels and timing, with Alertmanager's defaults (30 s / 5 min / 4 h). */
export const groupingOptionShape = {
  /** Labels that group alerts into one notification; `["..."]` groups by every label. */
  groupBy: z.array(z.string()).default(['alertname']),
  groupWaitMs: z.number().int().min(0).default(30_000),
  groupIntervalMs: z.number().int().positive().default(300_000),
  repeatIntervalMs: z.number().int().positive().default(4 * 3_600_000),
};

export interface EngineOptions {
  resolvedRetentionMs: number;
  inhibitRules: z.infer<typeof inhibitRuleSchema>[];
  resolveTimeoutMs: number;
}

/** An escalation policy: ordered tiers, each with its targets and how long it waits for an acknowledgement before the next. */
export interface EscalationPolicy {
  name: string;
  tiers: { targets: string[]; timeoutMs: number }[];
}

/** Where an alert's notifications go: one route of the router. */
export interface RouteMatch {
  /** What group keys start with (phase 2: the receiver; phase 4: the route's matcher path). */
  keyPrefix: string;
  /** Alertmanager's route path for notifications (phase 4). */
  routePath?: string;
  receiver: string;
  groupBy: string[];
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
  /** Tier 0 is the policy's first tier (instead of `receiver`); the next tiers follow on timeouts. */
  policy?: EscalationPolicy;
}

export interface Router {
  /** The routes an alert's labels take (one at least). */
  route(labels: Record<string, string>): RouteMatch[];
  /** The receivers a tier's targets name at `atMs` (a schedule: whoever is on call then). */
  resolve(targets: string[], atMs: number): string[];
  onCall?(atMs: number): OnCall[];
  /** Every receiver the routes, tiers and schedules name. */
  receivers?(): string[];
  /** Whether acknowledgement is on (phase 4). */
  acknowledgements: boolean;
}

/** The sum of the timeouts of the tiers before `tier`: when tier `tier` is reached after an alert is first notified, ms. */
export function tierDelayMs(policy: EscalationPolicy, tier: number): number {
  let sum = 0;
  for (let i = 0; i < tier; i++) sum += policy.tiers[i]!.timeoutMs;
  return sum;
}

/**
 * Alertmanager-style fingerprint: FNV-1a 64 over the sorted label pairs (each name and value
 * followed by 0xff), 16 hex digits. The 64-bit product is kept in two 32-bit halves.
 */
export function fingerprint(labels: Record<string, string>): string {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const step = (byte: number): void => {
    lo ^= byte;
    // (hi·2^32 + lo) · (2^40 + 0x1b3) mod 2^64
    const low = (lo >>> 0) * 0x1b3;
    const carry = Math.floor(low / 0x1_0000_0000);
    hi = (Math.imul(hi, 0x1b3) + ((lo << 8) >>> 0) + carry) >>> 0;
    lo = low >>> 0;
  };
  const text = (value: string): void => {
    for (let i = 0; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code < 0x80) step(code);
      else {
        for (const byte of encoder.encode(value.slice(i))) step(byte);
        return;
      }
    }
  };
  const names = Object.keys(labels).sort();
  for (const name of names) {
    text(name);
    step(0xff);
    text(labels[name]!);
    step(0xff);
  }
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

const encoder = new TextEncoder();

export function initialLifecycleState(): LifecycleState {
  return { alerts: {}, silences: {}, groups: {}, notifications: 0 };
}

/**
 * The journal's fold. It changes `state` in place (a copy per event would make each event cost
 * the size of the state); whoever needs the state unchanged keeps a copy (`start` takes one).
 */
export function foldLifecycle(state: LifecycleState, event: LifecycleEvent): LifecycleState {
  switch (event.type) {
    case 'alert':
      state.alerts[event.alert.fingerprint] = event.alert;
      return state;
    case 'alert-dropped':
      delete state.alerts[event.fingerprint];
      return state;
    case 'silence':
      state.silences[event.silence.id] = event.silence;
      return state;
    case 'escalation': {
      const group = state.groups[event.groupKey];
      if (group?.escalation !== undefined && group.escalation[event.fingerprint] !== undefined) group.escalation[event.fingerprint] = event.step;
      return state;
    }
    case 'ack': {
      const alert = state.alerts[event.fingerprint];
      if (alert !== undefined) state.alerts[event.fingerprint] = { ...alert, acknowledgedAtMs: event.atMs, acknowledgedBy: event.by, ackComment: event.comment };
      return state;
    }
    case 'notified': {
      const n = event.notification;
      state.notifications += 1;
      const group = state.groups[n.groupKey];
      if (n.kind !== undefined || n.copy === true) {
        // Another receiver of the group (an escalation tier, a copy, an acknowledgement): remember who was told.
        if (group === undefined) return state;
        if (group.receivers !== undefined && !group.receivers.includes(n.receiver)) group.receivers = [...group.receivers, n.receiver].sort();
        if (n.kind === 'escalate' && group.escalation !== undefined) {
          for (const a of n.alerts) {
            const step = group.escalation[a.fingerprint];
            if (step !== undefined && (n.tier ?? 0) > step.tier) group.escalation[a.fingerprint] = { atMs: step.atMs, tier: n.tier ?? 0 };
          }
        }
        if (n.kind === 'acknowledge') group.acknowledgedAtMs = n.atMs;
        return state;
      }
      const firing = n.alerts.filter((a) => a.status === 'firing').map((a) => a.fingerprint).sort();
      // A group with nothing firing any more is finished: the next alert starts it anew (group_wait).
      if (firing.length === 0) {
        delete state.groups[n.groupKey];
        return state;
      }
      const next: GroupRecord = { count: (group?.count ?? 0) + 1, lastAtMs: n.atMs, firing };
      if (n.tier !== undefined) {
        // Phase 4: each firing alert's escalation clock starts at its first notification in this group.
        next.escalation = {};
        for (const fp of firing) next.escalation[fp] = group?.escalation?.[fp] ?? { atMs: n.atMs, tier: 0 };
        next.receivers = [...new Set([...(group?.receivers ?? []), n.receiver])].sort();
        const unacknowledged = n.alerts.some((a) => a.status === 'firing' && a.acknowledgedBy === undefined);
        if (!unacknowledged && group?.acknowledgedAtMs !== undefined) next.acknowledgedAtMs = group.acknowledgedAtMs;
      }
      state.groups[n.groupKey] = next;
      return state;
    }
  }
}

/** The rule name of alerts sent from outside: never matched by an evaluation of our own rules. */
const externalRule = (labels: Record<string, string>): string => `external:${labels.alertname ?? ''}`;

/** Rules are told apart by group and name: two groups may hold rules of the same name, as in Prometheus. */
const ruleKey = (group: string | undefined, rule: string): string => `${group ?? ''}\u0000${rule}`;

interface Live {
  rule: string;
  /** The rule's group ('' for evaluators without groups and for alerts sent from outside). */
  group: string;
  /** Alerts sent from outside: when they resolve unless sent again. */
  expiresAtMs?: number;
  generatorUrl?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  forMs: number;
  keepFiringForMs: number;
}

export class Lifecycle implements AlertLifecycle {
  private runtime!: LifecycleRuntime;
  private state: LifecycleState = initialLifecycleState();
  private readonly machines = new Map<string, Actor<typeof alertMachine>>();
  private readonly live = new Map<string, Live>();
  private readonly byRule = new Map<string, Set<string>>();
  private readonly groupTimers = new Map<string, { atMs: number; timer: Timer }>();
  private housekeeping: Timer | undefined;
  /** Other timers (a silence's start and end). */
  private readonly timers = new Set<Timer>();
  /** Expiry of alerts sent from outside. */
  private readonly expiries = new Map<string, Timer>();
  /** Fingerprint → the keys of the groups its alert belongs to (an alert's labels never change). */
  private readonly groupKeys = new Map<string, string[]>();
  /** Group key → its route and group labels. */
  private readonly groupInfo = new Map<string, { route: RouteMatch; labels: Record<string, string> }>();
  private readonly escalationTimers = new Map<string, { atMs: number; timer: Timer }>();
  /** When "nobody on call" was last logged, per policy and tier. */
  private readonly nobodySaidAtMs = new Map<string, number>();
  /** Group key → fingerprints of the alerts in it. */
  private readonly groupMembers = new Map<string, Set<string>>();
  private readonly inhibitions;
  private stopped = false;
  private silenceSeq = 0;

  constructor(
    private readonly options: EngineOptions,
    private readonly router: Router,
  ) {
    this.inhibitions = compileInhibitions(options.inhibitRules);
  }

  initialState(): LifecycleState {
    return initialLifecycleState();
  }

  fold(state: LifecycleState, event: LifecycleEvent): LifecycleState {
    return foldLifecycle(state, event);
  }

  private emit(event: LifecycleEvent): void {
    if (event.type === 'alert-dropped') {
      const alert = this.state.alerts[event.fingerprint];
      if (alert !== undefined) {
        for (const key of this.groupKeysOf(alert)) {
          const members = this.groupMembers.get(key);
          members?.delete(event.fingerprint);
          if (members?.size === 0) this.groupMembers.delete(key);
        }
      }
    }
    this.state = foldLifecycle(this.state, event);
    if (event.type === 'alert') this.indexMember(event.alert);
    this.runtime.emit(event);
  }

  private indexMember(alert: AlertRecord): void {
    for (const key of this.groupKeysOf(alert)) {
      let members = this.groupMembers.get(key);
      if (members === undefined) this.groupMembers.set(key, (members = new Set()));
      members.add(alert.fingerprint);
    }
  }

  private get now(): number {
    return this.runtime.clock.now();
  }

  start(state: LifecycleState, runtime: LifecycleRuntime): void {
    this.runtime = runtime;
    // Our own copy: the fold changes state in place, and the journal folds the same events into its own.
    this.state = structuredClone(state);
    for (const alert of Object.values(this.state.alerts)) this.indexMember(alert);
    for (const alert of Object.values(state.alerts)) {
      this.live.set(alert.fingerprint, { rule: alert.rule, group: alert.group ?? '', labels: alert.labels, annotations: alert.annotations, value: alert.value, forMs: alert.forMs, keepFiringForMs: alert.keepFiringForMs, ...(alert.generatorUrl === undefined ? {} : { generatorUrl: alert.generatorUrl }) });
      this.index(alert.fingerprint, ruleKey(alert.group, alert.rule));
      if (alert.state === 'resolved') continue;
      // An outside alert's sender re-sends it while it holds; after a restart it gets a full resolve timeout to do so.
      if (alert.expiresAtMs !== undefined) this.expireAt(alert.fingerprint, Math.max(alert.expiresAtMs, this.now + this.options.resolveTimeoutMs));
      const phase = alert.state === 'pending' ? 'pending' : alert.clearedAtMs > 0 ? 'keepFiring' : 'firing';
      this.machineFor(alert.fingerprint).send({ type: 'RESTORE', phase, activeAtMs: alert.activeAtMs, firedAtMs: alert.firedAtMs, clearedAtMs: alert.clearedAtMs });
    }
    this.touchAllGroups();
    this.scheduleHousekeeping();
  }

  private index(fp: string, rule: string): void {
    let set = this.byRule.get(rule);
    if (set === undefined) this.byRule.set(rule, (set = new Set()));
    set.add(fp);
  }

  private machineFor(fp: string): Actor<typeof alertMachine> {
    let machine = this.machines.get(fp);
    if (machine !== undefined) return machine;
    const live = this.live.get(fp)!;
    const clock = this.runtime.clock;
    machine = createActor(alertMachine, {
      input: { forMs: live.forMs, keepFiringForMs: live.keepFiringForMs, now: () => clock.now(), changed: (phase, atMs) => this.changed(fp, phase, atMs) },
      clock: { setTimeout: (fn: (...args: unknown[]) => void, ms: number) => clock.setTimeout(() => fn(), ms), clearTimeout: (timer: unknown) => (timer as Timer).cancel() },
    });
    this.machines.set(fp, machine);
    machine.start();
    return machine;
  }

  observe(evaluations: RuleEvaluation[]): void {
    if (this.stopped) return;
    for (const evaluation of evaluations) {
      if (evaluation.error !== undefined) continue;
      const atMs = evaluation.evaluatedAtMs ?? this.now;
      const instances =
        evaluation.alerts ??
        (evaluation.active ? [{ labels: { ...evaluation.labels, alertname: evaluation.rule }, value: evaluation.value ?? Number.NaN, annotations: { summary: evaluation.summary } }] : []);
      const seen = new Set<string>();
      for (const instance of instances) {
        const fp = fingerprint(instance.labels);
        if (!this.live.has(fp) && this.live.size >= ALERTS_MAX) {
          this.runtime.log.error('alert limit reached: alert refused', { limit: ALERTS_MAX, rule: evaluation.rule, labels: instance.labels });
          continue;
        }
        seen.add(fp);
        const previous = this.live.get(fp);
        // A resolved alert that holds again is a new alert (new activeAt), as in Prometheus.
        if (previous !== undefined && this.state.alerts[fp]?.state === 'resolved') this.reviving(fp);
        this.live.set(fp, { rule: evaluation.rule, group: evaluation.group ?? '', labels: instance.labels, annotations: instance.annotations, value: instance.value, forMs: evaluation.forMs ?? 0, keepFiringForMs: evaluation.keepFiringForMs ?? 0 });
        this.index(fp, ruleKey(evaluation.group, evaluation.rule));
        const record = this.state.alerts[fp];
        // Value and annotations follow each evaluation in memory; the journal keeps changes of phase.
        if (record !== undefined && record.state !== 'resolved') this.state.alerts[fp] = { ...record, value: instance.value, annotations: instance.annotations };
        this.machineFor(fp).send({ type: 'HOLDS', atMs });
      }
      // An answer that may lack series (a storage member away) clears nothing: the alerts it
      // does not show may be those series.
      if (evaluation.warnings !== undefined && evaluation.warnings.length > 0) continue;
      for (const fp of this.byRule.get(ruleKey(evaluation.group, evaluation.rule)) ?? []) {
        if (!seen.has(fp)) this.machines.get(fp)?.send({ type: 'CLEARS', atMs });
      }
    }
  }

  retainRules(rules: Pick<AlertRule, 'name' | 'group'>[]): void {
    if (this.stopped) return;
    const exact = new Set(rules.map((r) => ruleKey(r.group, r.name)));
    const ungrouped = new Set(rules.filter((r) => r.group === undefined || r.group === '').map((r) => r.name));
    const names = new Set(rules.map((r) => r.name));
    const atMs = this.now;
    for (const [fp, live] of this.live) {
      const record = this.state.alerts[fp];
      if (record === undefined || record.state === 'resolved' || record.expiresAtMs !== undefined) continue;
      if (exact.has(ruleKey(live.group, live.rule)) || ungrouped.has(live.rule) || (live.group === '' && names.has(live.rule))) continue;
      this.machines.get(fp)?.send({ type: 'CLEARS', atMs });
    }
  }

  receive(alerts: ExternalAlert[]): void {
    if (this.stopped) return;
    const now = this.now;
    for (const alert of alerts) {
      const fp = fingerprint(alert.labels);
      const endsAtMs = alert.endsAtMs ?? now + this.options.resolveTimeoutMs;
      const known = this.live.has(fp) && this.state.alerts[fp]?.state !== 'resolved';
      if (endsAtMs <= now) {
        // Resolved by its sender: clears a firing alert; an alert we never saw firing is ignored.
        if (known) this.machines.get(fp)?.send({ type: 'CLEARS', atMs: Math.min(endsAtMs, now) });
        continue;
      }
      if (!known && this.live.size >= ALERTS_MAX) {
        this.runtime.log.error('alert limit reached: alert refused', { limit: ALERTS_MAX, labels: alert.labels });
        continue;
      }
      if (this.state.alerts[fp]?.state === 'resolved') this.reviving(fp);
      this.live.set(fp, { rule: externalRule(alert.labels), group: '', labels: alert.labels, annotations: alert.annotations ?? {}, value: Number.NaN, forMs: 0, keepFiringForMs: 0, expiresAtMs: endsAtMs, ...(alert.generatorUrl === undefined ? {} : { generatorUrl: alert.generatorUrl }) });
      const record = this.state.alerts[fp];
      if (record !== undefined && record.state !== 'resolved') this.state.alerts[fp] = { ...record, annotations: alert.annotations ?? {}, expiresAtMs: endsAtMs };
      this.machineFor(fp).send({ type: 'HOLDS', atMs: Math.min(alert.startsAtMs ?? now, now) });
      this.expireAt(fp, endsAtMs);
    }
  }

  /**
   * A resolved alert holds again (it becomes a new alert). If its group notified it as firing and
   * has not yet sent its resolution, send that now — else the new alert's record would replace the
   * resolved one and the receiver would never learn it had resolved.
   */
  private reviving(fp: string): void {
    const record = this.state.alerts[fp];
    if (record !== undefined) for (const key of this.groupKeysOf(record)) if (this.state.groups[key]?.firing.includes(fp) === true) this.flush(key);
    this.machines.delete(fp);
  }

  private expireAt(fp: string, atMs: number): void {
    this.expiries.get(fp)?.cancel();
    this.expiries.set(fp, this.runtime.clock.setTimeout(() => {
      this.expiries.delete(fp);
      this.machines.get(fp)?.send({ type: 'CLEARS', atMs });
    }, Math.max(0, atMs - this.now)));
  }

  /** A machine changed phase: journal the alert's new record, then let its group know. */
  private changed(fp: string, phase: AlertPhase, atMs: number): void {
    const live = this.live.get(fp)!;
    const previous = this.state.alerts[fp];
    if (phase === 'inactive' || phase === 'resolved') {
      this.expiries.get(fp)?.cancel();
      this.expiries.delete(fp);
    }
    if (phase === 'inactive') {
      this.machines.get(fp)?.stop();
      this.machines.delete(fp);
      this.live.delete(fp);
      this.byRule.get(ruleKey(live.group, live.rule))?.delete(fp);
      if (previous !== undefined) this.emit({ type: 'alert-dropped', fingerprint: fp, atMs });
      return;
    }
    const fresh = previous === undefined || previous.state === 'resolved';
    const outside = { ...(live.group === '' ? {} : { group: live.group }), ...(live.expiresAtMs === undefined ? {} : { expiresAtMs: live.expiresAtMs }), ...(live.generatorUrl === undefined ? {} : { generatorUrl: live.generatorUrl }) };
    const base: AlertRecord = fresh
      ? { fingerprint: fp, rule: live.rule, labels: live.labels, annotations: live.annotations, value: live.value, state: 'pending', activeAtMs: atMs, firedAtMs: 0, clearedAtMs: 0, resolvedAtMs: 0, forMs: live.forMs, keepFiringForMs: live.keepFiringForMs, ...outside }
      : { ...previous, annotations: live.annotations, value: live.value, ...outside };
    let record: AlertRecord;
    if (phase === 'pending') record = { ...base, state: 'pending', activeAtMs: atMs };
    else if (phase === 'firing') record = { ...base, state: 'firing', firedAtMs: base.firedAtMs === 0 || base.clearedAtMs === 0 ? atMs : base.firedAtMs, clearedAtMs: 0 };
    else if (phase === 'keepFiring') record = { ...base, state: 'firing', clearedAtMs: atMs };
    else {
      record = { ...base, state: 'resolved', resolvedAtMs: atMs };
      this.machines.delete(fp);
    }
    this.emit({ type: 'alert', alert: record });
    if (record.state !== 'pending' && phase !== 'keepFiring') {
      // Resolved: notified at once. Firing: after group_wait for a new group, else at the group's next interval.
      for (const key of this.groupKeysOf(record)) this.scheduleFlush(key, record.state === 'resolved' ? this.now : this.nextFlushMs(key));
    }
  }

  /** The keys of the groups an alert belongs to, one per route it takes (cached: an alert's labels never change). */
  private groupKeysOf(alert: AlertRecord): string[] {
    let keys = this.groupKeys.get(alert.fingerprint);
    if (keys === undefined) {
      keys = [];
      for (const route of this.router.route(alert.labels)) {
        // Phase 4 keys are Alertmanager's (`{}/{severity="page"}:{alertname="X", host="a"}`, names sorted).
        const names = route.groupBy.includes('...') ? Object.keys(alert.labels).sort() : route.routePath === undefined ? route.groupBy : [...route.groupBy].sort();
        const labels: Record<string, string> = {};
        for (const name of names) if (alert.labels[name] !== undefined) labels[name] = alert.labels[name]!;
        const key = `${route.keyPrefix}:{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(route.routePath === undefined ? ',' : ', ')}}`;
        if (!this.groupInfo.has(key)) this.groupInfo.set(key, { route, labels });
        if (!keys.includes(key)) keys.push(key);
      }
      if (this.groupKeys.size >= ALERTS_MAX * 2) this.groupKeys.clear();
      this.groupKeys.set(alert.fingerprint, keys);
    }
    return keys;
  }

  /** The group's route (a group whose alerts are all gone has the route of its last alert; unknown: the router's first route). */
  private routeOf(key: string): RouteMatch {
    const info = this.groupInfo.get(key);
    if (info !== undefined) return info.route;
    for (const alert of this.members(key)) this.groupKeysOf(alert);
    return this.groupInfo.get(key)?.route ?? this.router.route({})[0]!;
  }

  private members(key: string): AlertRecord[] {
    const out: AlertRecord[] = [];
    for (const fp of this.groupMembers.get(key) ?? []) {
      const alert = this.state.alerts[fp];
      if (alert !== undefined) out.push(alert);
    }
    return out;
  }

  /**
   * When the group should next be looked at for a change in its firing set: a group not yet
   * notified waits `groupWaitMs` from its first firing alert (a restart does not start the wait
   * again), a notified one `groupIntervalMs` from its last notification.
   */
  private nextFlushMs(key: string): number {
    const group = this.state.groups[key];
    const route = this.routeOf(key);
    if (group !== undefined) return Math.max(this.now, group.lastAtMs + route.groupIntervalMs);
    const firedAt = this.members(key).filter((a) => a.state === 'firing').map((a) => a.firedAtMs);
    return firedAt.length === 0 ? this.now + route.groupWaitMs : Math.max(this.now, Math.min(...firedAt) + route.groupWaitMs);
  }

  private scheduleFlush(key: string, atMs: number): void {
    if (this.stopped) return;
    const existing = this.groupTimers.get(key);
    if (existing !== undefined && existing.atMs <= atMs) return;
    existing?.timer.cancel();
    const timer = this.runtime.clock.setTimeout(() => {
      this.groupTimers.delete(key);
      this.flush(key);
    }, Math.max(0, atMs - this.now));
    this.groupTimers.set(key, { atMs, timer });
  }

  /** `all`: every alert, when the caller has the list already (inhibition looks at all of them). */
  private muted(alert: AlertRecord, all?: () => AlertRecord[]): boolean {
    const silences = Object.values(this.state.silences);
    if (silences.length > 0 && silencedBy(silences, alert.labels, this.now).length > 0) return true;
    return this.inhibitions.length > 0 && inhibitedBy(this.inhibitions, all?.() ?? Object.values(this.state.alerts), alert).length > 0;
  }

  /**
   * Sends the group's notification when its firing set changed, an alert resolved, or the repeat
   * interval passed with something unacknowledged still firing.
   */
  private flush(key: string): void {
    if (this.stopped) return;
    const now = this.now;
    const route = this.routeOf(key);
    const group: GroupRecord | undefined = this.state.groups[key];
    const members = this.members(key);
    let everyAlert: AlertRecord[] | undefined;
    const all = (): AlertRecord[] => (everyAlert ??= Object.values(this.state.alerts));
    const firing = members.filter((a) => a.state === 'firing' && !this.muted(a, all)).sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
    const notifiedFiring = new Set(group?.firing ?? []);
    // Resolved alerts whose firing was notified (an alert that never reached a notification resolves silently).
    const resolved = members.filter((a) => a.state === 'resolved' && notifiedFiring.has(a.fingerprint));
    // A group never notified waits group_wait from its first firing alert, whatever woke it (a resolve, a silence ending).
    if (group === undefined && firing.length > 0) {
      const waitUntil = Math.min(...firing.map((a) => a.firedAtMs)) + route.groupWaitMs;
      if (now < waitUntil) {
        this.scheduleFlush(key, waitUntil);
        return;
      }
    }
    const firingKeys = firing.map((a) => a.fingerprint);
    const sameSet = group !== undefined && firingKeys.length === group.firing.length && firingKeys.every((fp, i) => fp === group.firing[i]);
    if (firing.length === 0 && resolved.length === 0) {
      // Everything it notified went muted or away without resolving (silenced, dropped): forget the group.
      if (group !== undefined && !members.some((a) => a.state === 'firing')) this.emit({ type: 'notified', notification: this.notification(key, group.receivers?.[0] ?? route.receiver, [], now, { closed: true }) });
      this.scheduleEscalation(key);
      return;
    }
    if (sameSet && resolved.length === 0) {
      // Acknowledged alerts are not repeated: a group whose firing alerts are all acknowledged waits for a change.
      if (firing.every((a) => a.acknowledgedAtMs !== undefined)) return this.scheduleEscalation(key);
      if (now < group!.lastAtMs + route.repeatIntervalMs) {
        this.scheduleFlush(key, group!.lastAtMs + route.repeatIntervalMs);
        return;
      }
    }
    const alerts: NotifiedAlert[] = [...firing.map((a) => notified(a, 'firing')), ...resolved.map((a) => notified(a, 'resolved'))];
    // Tier 0: the route's receiver, or the first tier of its escalation policy; a resolution also goes to everyone escalated to.
    const receivers = this.tierReceivers(route, 0, now);
    const copies = resolved.length > 0 ? (group?.receivers ?? []).filter((r) => !receivers.includes(r)) : [];
    const phase4 = route.routePath !== undefined;
    this.emit({ type: 'notified', notification: this.notification(key, receivers[0]!, alerts, now, phase4 ? { tier: 0 } : {}) });
    for (const receiver of [...receivers.slice(1), ...copies]) this.emit({ type: 'notified', notification: this.notification(key, receiver, alerts, now, { tier: 0, copy: true }) });
    if (firing.length > 0) this.scheduleFlush(key, now + route.repeatIntervalMs);
    // An acknowledged alert left alone in the group (the others resolved) makes the whole group acknowledged.
    if (this.router.acknowledgements) this.acknowledged(key);
    else this.scheduleEscalation(key);
  }

  /** The receivers of a tier: the route's receiver without a policy; a tier that names nobody (no one on call) falls back to it, said in the log. */
  private tierReceivers(route: RouteMatch, tier: number, atMs: number): string[] {
    if (route.policy === undefined) return [route.receiver];
    const targets = route.policy.tiers[tier]!.targets;
    const receivers = this.router.resolve(targets, atMs);
    if (receivers.length > 0) return receivers;
    // Said once a minute per policy and tier, not once per notification.
    const said = `${route.policy.name}/${tier}`;
    if ((this.nobodySaidAtMs.get(said) ?? Number.NEGATIVE_INFINITY) + 60_000 <= atMs) {
      this.nobodySaidAtMs.set(said, atMs);
      this.runtime.log.error('escalation tier names nobody now (no one on call): its notifications go to the route\'s receiver', { policy: route.policy.name, tier, targets, receiver: route.receiver });
    }
    return [route.receiver];
  }

  /** Alerts of the group that can escalate: notified as firing, still firing, neither acknowledged nor muted, below the last tier. */
  private escalating(key: string, route: RouteMatch): { alert: AlertRecord; atMs: number; tier: number }[] {
    const group = this.state.groups[key];
    const policy = route.policy;
    if (group?.escalation === undefined || policy === undefined || policy.tiers.length < 2) return [];
    const out: { alert: AlertRecord; atMs: number; tier: number }[] = [];
    let everyAlert: AlertRecord[] | undefined;
    const all = (): AlertRecord[] => (everyAlert ??= Object.values(this.state.alerts));
    const now = this.now;
    for (const [fp, step] of Object.entries(group.escalation)) {
      const alert = this.state.alerts[fp];
      if (alert === undefined || alert.state !== 'firing' || alert.acknowledgedAtMs !== undefined || step.tier + 1 >= policy.tiers.length) continue;
      // A muted alert's escalation clock stops; unmuted, it restarts with the whole timeout of the tier it reached.
      const muted = this.muted(alert, all);
      if (muted) {
        if (step.mutedAtMs === undefined) this.emit({ type: 'escalation', groupKey: key, fingerprint: fp, step: { atMs: step.atMs, tier: step.tier, mutedAtMs: now } });
        continue;
      }
      if (step.mutedAtMs !== undefined) {
        const restarted = { atMs: now - tierDelayMs(policy, step.tier), tier: step.tier };
        this.emit({ type: 'escalation', groupKey: key, fingerprint: fp, step: restarted });
        out.push({ alert, ...restarted });
        continue;
      }
      out.push({ alert, atMs: step.atMs, tier: step.tier });
    }
    return out;
  }

  /** Sets the group's escalation timer at the first moment an unacknowledged alert reaches its next tier (none: no timer). */
  private scheduleEscalation(key: string): void {
    const existing = this.escalationTimers.get(key);
    existing?.timer.cancel();
    this.escalationTimers.delete(key);
    if (this.stopped) return;
    const route = this.routeOf(key);
    let due = Number.POSITIVE_INFINITY;
    for (const { atMs, tier } of this.escalating(key, route)) due = Math.min(due, atMs + tierDelayMs(route.policy!, tier + 1));
    if (due === Number.POSITIVE_INFINITY) return;
    const timer = this.runtime.clock.setTimeout(() => {
      this.escalationTimers.delete(key);
      this.escalate(key);
    }, Math.max(0, due - this.now));
    this.escalationTimers.set(key, { atMs: due, timer });
  }

  /**
   * Tells each tier's receivers about the alerts that reached it unacknowledged. An alert overdue
   * by more than one tier (the actor was down) goes straight to the highest tier it reached.
   */
  private escalate(key: string): void {
    if (this.stopped) return;
    const now = this.now;
    const route = this.routeOf(key);
    const policy = route.policy;
    if (policy === undefined) return;
    const byTier = new Map<number, AlertRecord[]>();
    for (const { alert, atMs, tier } of this.escalating(key, route)) {
      let reached = tier;
      while (reached + 1 < policy.tiers.length && atMs + tierDelayMs(policy, reached + 1) <= now) reached += 1;
      if (reached === tier) continue;
      const list = byTier.get(reached) ?? [];
      list.push(alert);
      byTier.set(reached, list);
    }
    for (const tier of [...byTier.keys()].sort((a, b) => a - b)) {
      const alerts = byTier.get(tier)!.sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1)).map((a) => notified(a, 'firing'));
      for (const receiver of this.tierReceivers(route, tier, now)) this.emit({ type: 'notified', notification: this.notification(key, receiver, alerts, now, { kind: 'escalate', tier }) });
    }
    this.scheduleEscalation(key);
  }

  acknowledge(input: AckInput): AlertRecord[] {
    if (this.stopped) throw new CraftError('CRAFT_BAD_REQUEST', 'the lifecycle is stopping');
    if (!this.router.acknowledgements) throw new CraftError('CRAFT_BAD_REQUEST', 'acknowledgement is phase 4\'s (plugin alerting.escalation in slot alerting.lifecycle); this lifecycle does not take acknowledgements');
    const bad = (message: string): never => {
      throw new CraftError('CRAFT_BAD_REQUEST', message);
    };
    if (typeof input.by !== 'string' || input.by.trim() === '') bad('an acknowledgement needs "by" (who acknowledges)');
    const fingerprints = new Set(Array.isArray(input.fingerprints) ? input.fingerprints.map(String) : []);
    const matchers = Array.isArray(input.matchers) ? input.matchers : [];
    if (fingerprints.size === 0 && matchers.length === 0) bad('an acknowledgement needs fingerprints or matchers');
    for (const m of matchers) {
      if (!isLabelName(m.name)) bad(`matcher label ${JSON.stringify(m.name)} is not a valid label name`);
      if (!['=', '!=', '=~', '!~'].includes(m.op)) bad(`matcher operator ${JSON.stringify(m.op)} is not one of =, !=, =~, !~`);
    }
    let matches: (labels: Record<string, string>) => boolean = () => false;
    if (matchers.length > 0) {
      try {
        matches = compileMatchers(matchers as LabelMatcher[]);
      } catch (error) {
        bad(`bad matcher: ${(error as Error).message}`);
      }
    }
    const targets = Object.values(this.state.alerts).filter((a) => a.state === 'firing' && (fingerprints.has(a.fingerprint) || (matchers.length > 0 && matches(a.labels))));
    if (targets.length === 0) throw new CraftError('CRAFT_NOT_FOUND', 'no firing alert matches the acknowledgement');
    const now = this.now;
    const keys = new Set<string>();
    for (const alert of targets) {
      for (const key of this.groupKeysOf(alert)) keys.add(key);
      if (alert.acknowledgedAtMs === undefined) this.emit({ type: 'ack', fingerprint: alert.fingerprint, by: input.by, comment: input.comment ?? '', atMs: now });
    }
    for (const key of keys) this.acknowledged(key);
    return targets.map((a) => this.state.alerts[a.fingerprint]!);
  }

  /** Once every firing alert a group notified is acknowledged, its receivers are told so (once); escalation stops. */
  private acknowledged(key: string): void {
    this.scheduleEscalation(key);
    const group = this.state.groups[key];
    if (group === undefined || group.acknowledgedAtMs !== undefined) return;
    const firing = group.firing.map((fp) => this.state.alerts[fp]).filter((a): a is AlertRecord => a !== undefined && a.state === 'firing');
    if (firing.length === 0 || firing.some((a) => a.acknowledgedAtMs === undefined)) return;
    const alerts = firing.map((a) => notified(a, 'firing'));
    const route = this.routeOf(key);
    for (const receiver of group.receivers ?? [route.receiver]) this.emit({ type: 'notified', notification: this.notification(key, receiver, alerts, this.now, { kind: 'acknowledge' }) });
  }

  onCall(atMs: number): OnCall[] {
    return this.router.onCall?.(atMs) ?? [];
  }

  receivers(): string[] {
    return this.router.receivers?.() ?? [];
  }

  private notification(key: string, receiver: string, alerts: NotifiedAlert[], atMs: number, extra: { closed?: boolean; tier?: number; kind?: 'escalate' | 'acknowledge'; copy?: boolean }): Notification {
    const info = this.groupInfo.get(key);
    const route = info?.route;
    return {
      id: `${key}/${this.state.notifications + 1}${extra.closed === true ? '-closed' : ''}`,
      groupKey: key,
      receiver,
      groupLabels: info?.labels ?? {},
      status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
      alerts,
      atMs,
      ...(extra.kind === undefined ? {} : { kind: extra.kind }),
      ...(extra.tier === undefined && extra.kind === undefined ? {} : { tier: extra.tier ?? 0 }),
      ...(extra.copy === true ? { copy: true } : {}),
      ...(route?.routePath === undefined ? {} : { routePath: route.routePath }),
    };
  }

  private scheduleHousekeeping(): void {
    if (this.stopped) return;
    this.housekeeping = this.runtime.clock.setTimeout(() => {
      this.sweep();
      this.scheduleHousekeeping();
    }, Math.min(60_000, this.options.resolvedRetentionMs));
  }

  /** Drops resolved alerts past their retention; re-checks groups whose muting may have changed (a silence ended). */
  private sweep(): void {
    const now = this.now;
    for (const alert of Object.values(this.state.alerts)) {
      if (alert.state === 'resolved' && alert.resolvedAtMs + this.options.resolvedRetentionMs <= now) {
        this.live.delete(alert.fingerprint);
        this.byRule.get(ruleKey(alert.group, alert.rule))?.delete(alert.fingerprint);
        this.emit({ type: 'alert-dropped', fingerprint: alert.fingerprint, atMs: now });
      }
    }
    this.touchAllGroups();
  }

  /** Looks again at every group that has notified something or has a firing alert (muting may have changed). */
  private touchAllGroups(): void {
    const keys = new Set([...Object.keys(this.state.groups), ...Object.values(this.state.alerts).filter((a) => a.state === 'firing').flatMap((a) => this.groupKeysOf(a))]);
    for (const key of keys) {
      this.scheduleFlush(key, this.nextFlushMs(key));
      this.scheduleEscalation(key);
    }
  }

  alerts(): AlertView[] {
    const now = this.now;
    const all = Object.values(this.state.alerts);
    return all
      .map((a) => ({ ...a, silencedBy: silencedBy(Object.values(this.state.silences), a.labels, now), inhibitedBy: inhibitedBy(this.inhibitions, all, a) }))
      .sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  }

  records(): AlertRecord[] {
    return Object.values(this.state.alerts);
  }

  alertGroups(): AlertGroupView[] {
    const byKey = new Map<string, string[]>();
    for (const alert of Object.values(this.state.alerts)) {
      if (alert.state !== 'firing') continue;
      for (const key of this.groupKeysOf(alert)) {
        const fingerprints = byKey.get(key);
        if (fingerprints === undefined) byKey.set(key, [alert.fingerprint]);
        else fingerprints.push(alert.fingerprint);
      }
    }
    // groupKeysOf has recorded each key's labels and route.
    return [...byKey].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, fingerprints]) => ({ labels: { ...this.groupInfo.get(key)!.labels }, receiver: this.routeOf(key).receiver, fingerprints: fingerprints.sort() }));
  }

  silences(): Silence[] {
    return Object.values(this.state.silences).sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
  }

  silence(input: Omit<Silence, 'id' | 'createdAtMs'> & { id?: string }): Silence {
    if (this.stopped) throw new CraftError('CRAFT_BAD_REQUEST', 'the lifecycle is stopping');
    const bad = (message: string): never => {
      throw new CraftError('CRAFT_BAD_REQUEST', message);
    };
    if (!Array.isArray(input.matchers) || input.matchers.length === 0) bad('a silence needs at least one matcher');
    for (const m of input.matchers) {
      if (!isLabelName(m.name)) bad(`matcher label ${JSON.stringify(m.name)} is not a valid label name`);
      if (!['=', '!=', '=~', '!~'].includes(m.op)) bad(`matcher operator ${JSON.stringify(m.op)} is not one of =, !=, =~, !~`);
      if (m.op === '=~' || m.op === '!~') {
        try {
          new RegExp(`^(?:${m.value})$`);
        } catch {
          bad(`matcher ${m.name}${m.op}${JSON.stringify(m.value)}: not a valid regular expression`);
        }
      }
    }
    if (!Number.isFinite(input.startsAtMs) || !Number.isFinite(input.endsAtMs) || input.endsAtMs <= input.startsAtMs) bad('a silence must end after it starts');
    if (input.endsAtMs <= this.now) bad('a silence must end in the future');
    if (typeof input.createdBy !== 'string' || input.createdBy === '') bad('createdBy is required');
    if (input.id !== undefined && this.state.silences[input.id] === undefined) bad(`no silence with id ${JSON.stringify(input.id)}`);
    if (input.id === undefined && Object.keys(this.state.silences).length >= SILENCES_MAX) bad(`silence limit reached (${SILENCES_MAX})`);
    const silence: Silence = {
      id: input.id ?? `${this.now.toString(36)}-${(this.silenceSeq++).toString(36)}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`,
      matchers: input.matchers.map((m) => ({ name: m.name, op: m.op, value: String(m.value) })),
      startsAtMs: input.startsAtMs,
      endsAtMs: input.endsAtMs,
      createdBy: input.createdBy,
      comment: input.comment ?? '',
      createdAtMs: this.now,
    };
    this.emit({ type: 'silence', silence });
    this.touchAllGroups();
    // Muting changes when a silence starts later and when it ends: look again at those moments.
    if (silence.startsAtMs > this.now) this.later(silence.startsAtMs - this.now, () => this.touchAllGroups());
    this.later(silence.endsAtMs - this.now, () => this.touchAllGroups());
    return silence;
  }

  expireSilence(id: string): Silence {
    if (this.stopped) throw new CraftError('CRAFT_BAD_REQUEST', 'the lifecycle is stopping');
    const silence = this.state.silences[id];
    if (silence === undefined) throw new CraftError('CRAFT_NOT_FOUND', `no silence with id ${JSON.stringify(id)}`);
    if (!silenceActive(silence, this.now) && silence.startsAtMs <= this.now) throw new CraftError('CRAFT_BAD_REQUEST', `silence ${id} has already expired`);
    const expired: Silence = { ...silence, endsAtMs: this.now, startsAtMs: Math.min(silence.startsAtMs, this.now) };
    this.emit({ type: 'silence', silence: expired });
    this.touchAllGroups();
    return expired;
  }

  private later(delayMs: number, fn: () => void): void {
    const timer = this.runtime.clock.setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, delayMs);
    this.timers.add(timer);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    for (const timer of this.expiries.values()) timer.cancel();
    this.expiries.clear();
    this.housekeeping?.cancel();
    for (const { timer } of this.groupTimers.values()) timer.cancel();
    this.groupTimers.clear();
    for (const { timer } of this.escalationTimers.values()) timer.cancel();
    this.escalationTimers.clear();
    for (const machine of this.machines.values()) machine.stop();
    this.machines.clear();
  }
}

/** An alert as a notification carries it. */
function notified(a: AlertRecord, status: 'firing' | 'resolved'): NotifiedAlert {
  return {
    fingerprint: a.fingerprint,
    status,
    labels: a.labels,
    annotations: a.annotations,
    startsAtMs: a.firedAtMs,
    endsAtMs: status === 'resolved' ? a.resolvedAtMs : 0,
    value: a.value,
    ...(a.generatorUrl === undefined ? {} : { generatorUrl: a.generatorUrl }),
    ...(a.acknowledgedBy === undefined ? {} : { acknowledgedBy: a.acknowledgedBy }),
  };
}
