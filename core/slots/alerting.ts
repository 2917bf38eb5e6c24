/**
 * Slot `alerting.evaluator`: rule evaluation of the alerting actor (Craft #5's phases).
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { QueryRequest, QueryResult } from './query.js';
import type { WireSample } from '../model.js';

export interface AlertRule {
  name: string;
  /** Human-readable condition, e.g. `avg(cpu_usage[60s]) > 80`; PromQL from phase 1 on. */
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  forMs?: number;
  keepFiringForMs?: number;
  /** The group and file it came from, and the group's interval, ms (phase 1 on). */
  group?: string;
  file?: string;
  intervalMs?: number;
  /** A tenant's own rule (phase 1's `tenants`): evaluated as that tenant, listed to it alone. */
  tenant?: string;
}

/**
 * One alert a rule's expression produced at an evaluation: a series of its result, with the
 * rule's labels added (`alertname` included) and its annotations rendered for that series.
 */
export interface AlertInstance {
  labels: Record<string, string>;
  value: number;
  annotations: Record<string, string>;
}

/** What evaluation found for one rule. */
export interface RuleEvaluation {
  rule: string;
  /** Whether the condition holds now (for a rule with `alerts`: whether there is any). */
  active: boolean;
  value: number | null;
  labels: Record<string, string>;
  summary: string;
  /**
   * Evaluators that keep Prometheus's model (phase 1 on) give every series the expression
   * returned, each its own alert; the lifecycle (`for`, `keep_firing_for`) follows each one.
   * Absent for the seed's evaluator, whose rule is one alert.
   */
  alerts?: AlertInstance[];
  /** How long an alert must hold before it fires, ms (`for`). */
  forMs?: number;
  /** How long a firing alert keeps firing once it stops holding, ms (`keep_firing_for`). */
  keepFiringForMs?: number;
  /** The rule's group, and the time the group evaluated at (aligned to its interval). */
  group?: string;
  evaluatedAtMs?: number;
  /** Why the evaluation failed (the query engine's error); the rule's alerts keep their state. */
  error?: string;
  /**
   * What the query's answer may lack (a storage member away: its series are missing). The
   * alerts the answer shows are followed as usual; those it does not show keep their state —
   * their series may be the missing ones, and resolving them would be a false "resolved".
   */
  warnings?: string[];
  /** How long the evaluation took, ms (Prometheus's `evaluationTime`). */
  evaluationMs?: number;
}

/** How an evaluator asks questions: the query actor, over the bus. */
export interface QueryClient {
  /** The result, with `warnings` when the answer may lack data (core/query/client.ts). */
  query(request: QueryRequest): Promise<QueryResult & { warnings?: string[] }>;
}

export interface AlertEvaluator {
  rules(): AlertRule[];
  /** How often the actor calls `evaluate`, ms, when the evaluator keeps its own schedule (phase 1: the shortest group interval). */
  tickMs?(): number;
  /** Evaluates every rule once at `nowMs`. */
  evaluate(nowMs: number, query: QueryClient): Promise<RuleEvaluation[]>;
  /**
   * Evaluators that decide some rules on the sample stream (phase 1's threshold rules): the
   * metric names those rules read (`null`: any metric; an empty list or absent: no streamed rule).
   */
  streamMetrics?(): string[] | null;
  /** Samples as ingestion acknowledged them; returns an evaluation of every rule they changed. */
  stream?(samples: WireSample[], nowMs: number): RuleEvaluation[];
}

export interface AlertingContext {
  log: Logger;
}

/*
 * Slot `alerting.lifecycle` (Craft #5, phase 2 on): what happens to the alerts the evaluator
 * finds — each alert's lifecycle (pending → firing → resolved, with `for` and
 * `keep_firing_for`), silences, inhibition, and grouping into notifications. Its state is
 * event-sourced: the actor journals every event the lifecycle emits before it acts on it, and
 * hands the folded state back after a restart.
 */

/** One alert, identified by the fingerprint of its labels. */
export interface AlertRecord {
  fingerprint: string;
  rule: string;
  /** The rule's group, when the evaluator has groups. */
  group?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  /** `firing` includes an alert kept firing by `keep_firing_for` (then `clearedAtMs` > 0). */
  state: 'pending' | 'firing' | 'resolved';
  activeAtMs: number;
  firedAtMs: number;
  clearedAtMs: number;
  resolvedAtMs: number;
  forMs: number;
  keepFiringForMs: number;
  /** Alerts sent from outside (Alertmanager's `POST /api/v2/alerts`): when it resolves unless sent again. */
  expiresAtMs?: number;
  generatorUrl?: string;
  /** Acknowledged (phase 4): who, when, why. Kept until the alert resolves; an alert that fires again is a new, unacknowledged one. */
  acknowledgedAtMs?: number;
  acknowledgedBy?: string;
  ackComment?: string;
}

/** An alert another system evaluated (Prometheus sending to us as its Alertmanager). */
export interface ExternalAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAtMs?: number;
  /** When it resolves unless sent again; in the past: resolved now. Absent: now + the resolve timeout. */
  endsAtMs?: number;
  generatorUrl?: string;
}

export interface Silence {
  id: string;
  /** Every matcher must match the alert's labels (Prometheus semantics, regexes anchored). */
  matchers: { name: string; op: '=' | '!=' | '=~' | '!~'; value: string }[];
  startsAtMs: number;
  endsAtMs: number;
  createdBy: string;
  comment: string;
  createdAtMs: number;
}

/** One alert as a notification carries it. */
export interface NotifiedAlert {
  fingerprint: string;
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAtMs: number;
  /** 0 while firing. */
  endsAtMs: number;
  value: number;
  /** Where the alert came from (an alert sent by Prometheus names its expression's graph). */
  generatorUrl?: string;
  /** Who acknowledged it (phase 4), when it was. */
  acknowledgedBy?: string;
}

/** A group's alerts, sent to its receiver. */
export interface Notification {
  /** `<groupKey>/<n>`, n counting every notification made: unique, and stable across retries of this notification. */
  id: string;
  groupKey: string;
  receiver: string;
  groupLabels: Record<string, string>;
  status: 'firing' | 'resolved';
  alerts: NotifiedAlert[];
  atMs: number;
  /**
   * Phase 4 (routing and escalation). `kind`: absent for a group's own notification (new alerts,
   * changes, repeats, resolutions) to its tier-0 receivers; `escalate` when alerts nobody
   * acknowledged reach tier `tier` of the route's escalation policy; `acknowledge` when every
   * firing alert of the group was acknowledged (PagerDuty: `acknowledge`).
   */
  kind?: 'escalate' | 'acknowledge';
  /** The escalation tier of the receiver (0: the route's first tier). */
  tier?: number;
  /**
   * A copy of the group's notification for another receiver of the same group (tier 0 with
   * several targets, a resolution told to the receivers escalated to): the journal's group
   * bookkeeping counts only the first.
   */
  copy?: boolean;
  /** The route's matcher path, as Alertmanager writes it (`{}/{severity="page"}`); absent: `{}`. */
  routePath?: string;
}

/** What a group last notified (so a restart neither forgets nor repeats it). */
export interface GroupRecord {
  count: number;
  lastAtMs: number;
  /** Fingerprints notified as firing, sorted. */
  firing: string[];
  /** Phase 4: every receiver told about the group since it started (resolutions and acknowledgements go to each). */
  receivers?: string[];
  /**
   * Phase 4: per firing alert, when the group first notified it (its escalation clock; moved on
   * when a mute ends) and the highest tier it reached; `mutedAtMs` while a silence or an
   * inhibition stops its clock.
   */
  escalation?: Record<string, { atMs: number; tier: number; mutedAtMs?: number }>;
  /** Phase 4: when the group's acknowledgement was notified (cleared when an unacknowledged alert joins). */
  acknowledgedAtMs?: number;
}

export interface LifecycleState {
  alerts: Record<string, AlertRecord>;
  silences: Record<string, Silence>;
  groups: Record<string, GroupRecord>;
  /** Notifications ever made: numbers each one (its id), so no id is used twice. */
  notifications: number;
}

export type LifecycleEvent =
  | { type: 'alert'; alert: AlertRecord }
  | { type: 'alert-dropped'; fingerprint: string; atMs: number }
  | { type: 'silence'; silence: Silence }
  | { type: 'notified'; notification: Notification }
  | { type: 'ack'; fingerprint: string; by: string; comment: string; atMs: number }
  /** Phase 4: an alert's escalation clock stopped (muted) or restarted (unmuted). */
  | { type: 'escalation'; groupKey: string; fingerprint: string; step: { atMs: number; tier: number; mutedAtMs?: number } };

/** An alert as the API shows it: its record, and whether a silence or an inhibition mutes it. */
export interface AlertView extends AlertRecord {
  silencedBy: string[];
  inhibitedBy: string[];
}

export interface LifecycleRuntime {
  clock: Clock;
  log: Logger;
  /** Journals `event` (then the actor publishes it); events are journaled in the order emitted. */
  emit(event: LifecycleEvent): void;
}

export interface AlertLifecycle {
  initialState(): LifecycleState;
  fold(state: LifecycleState, event: LifecycleEvent): LifecycleState;
  /** Takes the state the journal folded (after a restart: pending timers resume, notified groups are not repeated). */
  start(state: LifecycleState, runtime: LifecycleRuntime): void;
  /** The results of an evaluation; rules that failed (`error`) leave their alerts as they are. */
  observe(evaluations: RuleEvaluation[]): void;
  /** Alerts evaluated elsewhere: each fires at once and resolves at its `endsAtMs` unless sent again. */
  receive(alerts: ExternalAlert[]): void;
  /**
   * The evaluator's rules now (after a start, a swap, a reload or a ruler API change): the
   * alerts of any other rule clear — they resolve (after their `keep_firing_for`) instead of
   * firing forever with nothing to evaluate them. Alerts posted from outside are left alone. A
   * rule of an evaluator without groups and one of the same name in a group count as one.
   */
  retainRules?(rules: Pick<AlertRule, 'name' | 'group'>[]): void;
  alerts(): AlertView[];
  /** The same alerts without what mutes them (cheap: for what runs every evaluation). */
  records(): AlertRecord[];
  silences(): Silence[];
  /** Creates (or, with an existing id, replaces) a silence; throws a CraftError on bad input. */
  silence(input: Omit<Silence, 'id' | 'createdAtMs'> & { id?: string }): Silence;
  /** Ends a silence now. */
  expireSilence(id: string): Silence;
  /**
   * Acknowledges the firing alerts with these fingerprints or matching every matcher (phase 4):
   * no more repeats or escalation for them until they resolve or fire anew. Returns the
   * alerts acknowledged (already acknowledged ones included); throws a CraftError when none matches.
   */
  acknowledge?(input: AckInput): AlertRecord[];
  /** Who is on call now in each schedule (phase 4). */
  onCall?(atMs: number): OnCall[];
  /** Every receiver the lifecycle may notify (routes, tier targets, schedule users), to check against the delivery slot's. */
  receivers?(): string[];
  /**
   * Alertmanager's alert groups: the firing alerts by the group they are notified in, with the
   * group's labels and receiver (an alert routed twice is in two groups). Sorted by group key.
   */
  alertGroups?(): AlertGroupView[];
  stop(): void;
}

/** One notification group of firing alerts (Alertmanager's `GET /api/v2/alerts/groups`). */
export interface AlertGroupView {
  labels: Record<string, string>;
  receiver: string;
  fingerprints: string[];
}

export interface AckInput {
  fingerprints?: string[];
  matchers?: { name: string; op: '=' | '!=' | '=~' | '!~'; value: string }[];
  by: string;
  comment?: string;
}

export interface OnCall {
  schedule: string;
  /** The receiver (a person) on call, or null when nobody is. */
  receiver: string | null;
  /** Where it comes from: `override`, or `layer <n>`. */
  source: string;
  /** When this person's shift ends (the next change of the schedule), ms; null when it never does. */
  untilMs: number | null;
}

/*
 * Slot `alerting.delivery` (Craft #5, phase 3): sends notifications to their receiver's
 * channels. Hosted by the notifier actor, which takes the notifications the alerting actor put
 * in the durable delivery queue (a JetStream work queue), expands each into one message per
 * channel the plugin names, and asks the plugin to send each message, retrying with the
 * plugin's backoff while the outcome says so.
 */

/** One notification for one channel of its receiver. */
export interface ChannelMessage {
  receiver: string;
  /** Index of the channel in the receiver's list. */
  channel: number;
  notification: Notification;
}

export type DeliveryOutcome = { ok: true } | { ok: false; retryable: boolean; retryAfterMs?: number; error: string };

export interface ChannelStats {
  channel: string;
  sent: number;
  retried: number;
  failed: number;
  /** Notification made → accepted by the channel, ms: p50, p99, max of the last 1,024. */
  latencyMs: { p50: number; p99: number; max: number };
}

export interface AlertDelivery {
  /** The names of a receiver's channels (`webhook`, `slack`, `pagerduty`, `email`), in order. */
  channels(receiver: string): string[];
  /** How long the channel's rate limit holds this message back, ms (0: send now). Takes a token when it returns 0. */
  admit(message: ChannelMessage, nowMs: number): number;
  /** Sends one message; never throws for the channel's own failure (the outcome says whether to retry). */
  send(message: ChannelMessage, attempt: number): Promise<DeliveryOutcome>;
  /** The wait before attempt `attempt + 1`, ms: exponential with jitter. */
  backoffMs(attempt: number): number;
  /** Sent, retried and failed messages and latency, per receiver channel. */
  stats(): ChannelStats[];
  close(): Promise<void>;
}
