/**
 * Every NATS subject the platform uses, in one place.
 *
 * Grammar:
 *
 *   subject   = "craft" "." component "." verb [ "." qualifier ]
 *   component = "sys" | "control" | "ingestion" | "queue" | "storage" | "query" | "alerting" | "notifier" | "journal"
 *   verb      = lowercase word naming the operation, e.g. "append", "select", "swap"
 *   qualifier = actor id, partition number or journal name
 *
 * Request subjects take a JSON request and answer a JSON reply of the form
 * `{ "ok": true, ... }` or `{ "ok": false, "error": { "code", "message" } }`.
 * Event subjects are published to and carry JSON events; nobody replies.
 */
export const SUBJECT_PREFIX = 'craft';

export const SUBJECTS = {
  /** Scatter request: every platform process answers with its supervision tree. */
  sysStatus: 'craft.sys.status',
  /** Fault injection: `craft.sys.kill.<actorId>` makes that actor crash (when faults are enabled). */
  sysKillPrefix: 'craft.sys.kill',
  /** Fault injection: `craft.sys.exit.<processName>` makes that process exit abruptly (when faults are enabled). */
  sysExitPrefix: 'craft.sys.exit',
  /** Event stream of the runtime itself: actor started, crashed, restarted, swapped. */
  sysEvents: 'craft.sys.events',

  /** Control actor: swap a slot's plugin `{slot, plugin, options?}`. */
  controlSwap: 'craft.control.swap',
  /** Control actor: the active plugin per slot. */
  controlChoices: 'craft.control.choices',
  /** Owning actor of a slot: `craft.control.handover.<actorId>` performs the swap inside that actor. */
  controlHandoverPrefix: 'craft.control.handover',

  /** Queue actor: append one batch `{client, batch}` → `{partition, offset, epoch}`. */
  queueAppend: 'craft.queue.append',
  /** Queue actor: join a consumer group `{group, member}` → its view `{generation, assigned, revoke, heartbeatIntervalMs, sessionTimeoutMs}`. */
  queueJoin: 'craft.queue.join',
  /** Queue actor: a member's heartbeat `{group, member, holding?}` → its view (generation, assigned, revoke). */
  queueHeartbeat: 'craft.queue.heartbeat',
  /** Queue actor: a member leaves its group `{group, member}`. */
  queueLeave: 'craft.queue.leave',
  /** Published by the queue actor: `craft.queue.groups.<group>` when a group's generation changes (members heartbeat at once). */
  queueGroupsPrefix: 'craft.queue.groups',
  /** Queue actor: fetch messages for a group member. */
  queueFetch: 'craft.queue.fetch',
  /** Queue actor: commit offsets for a group member. */
  queueCommit: 'craft.queue.commit',
  /** Queue actor: depth, epochs and group lag. */
  queueInfo: 'craft.queue.info',
  /** Queue actor: where producers append now `{epoch, partitions, direct}` (direct = publish to JetStream). */
  queueRoute: 'craft.queue.route',
  /** Events of the queue actor: `{type: "epoch", epoch}` when appends move to a new epoch. */
  queueEvents: 'craft.queue.events',

  /** Storage actor: select samples `{matchers, startMs, endMs, hints?}`, answered in parts. */
  storageSelect: 'craft.storage.select',
  /** Storage actor: labels of the series with samples in range `{matchers, startMs, endMs}`. */
  storageSeries: 'craft.storage.series',
  /** Storage actor: label names `{matchers?, startMs, endMs}`. */
  storageLabels: 'craft.storage.labels',
  /** Storage actor: values of one label `{name, matchers?, startMs, endMs}`. */
  storageLabelValues: 'craft.storage.values',
  /** Storage actor: delete samples of matching series in range `{matchers, startMs, endMs}` → `{deleted}`. */
  storageDelete: 'craft.storage.delete',
  /** Storage actor: window summaries `{matchers, startMs, endMs, stepMs}` (core/storage/rollup.ts), answered in parts. */
  storageRollup: 'craft.storage.rollup',
  /** Storage actor: series counts by label name and pair `{limit?}` (default 10). */
  storageCardinality: 'craft.storage.cardinality',
  /** Storage actor: make everything durable in long-term form (flush heads) → stats. */
  storageFlush: 'craft.storage.flush',
  /** Storage actor: count matching series and samples `{matchers, startMs, endMs}` without shipping them. */
  storageCount: 'craft.storage.count',
  /** Storage actor: metric metadata `{metric?, limit?}` → name → [{type, help, unit}] (Prometheus's /api/v1/metadata). */
  storageMetadata: 'craft.storage.metadata',
  /** Published by storage after each commit: `{minTimeMs, maxTimeMs, samples}` of what it applied (caches invalidate on it). */
  storageEventsApplied: 'craft.storage.events.applied',
  /** Storage actor: counts of series and samples, applied queue positions. */
  storageInfo: 'craft.storage.info',
  /** Every storage member answers `{member}` (several storage members: docs/queue.md). */
  storageMembers: 'craft.storage.members',
  /** Published by every storage member each second: `{member}` — readers keep the set of live members from it. */
  storageAnnounce: 'craft.storage.announce',

  /** Query actor: evaluate an expression `{expr, startMs?, endMs?}`. */
  queryRun: 'craft.query.run',
  /** Query actor: how a query would run `{expr, startMs?, endMs?, stepMs?, timeMs?}` → QueryPlan. */
  queryExplain: 'craft.query.explain',

  /** Alerting actor: rules and their current alerts. */
  alertingRules: 'craft.alerting.rules',
  /** Alerting actor: every alert (pending, firing, resolved) with what mutes it → `{alerts}`. */
  alertingAlerts: 'craft.alerting.alerts',
  /** Alerting actor: silences → `{silences}`. */
  alertingSilences: 'craft.alerting.silences',
  /** Alerting actor: create or replace a silence `{matchers, startsAt|startsAtMs?, endsAt|endsAtMs, createdBy, comment?, id?}` → the silence. */
  alertingSilenceCreate: 'craft.alerting.silences.create',
  /** Alerting actor: end a silence now `{id}` → the silence. */
  alertingSilenceExpire: 'craft.alerting.silences.expire',
  /** Alerting actor: acknowledge firing alerts (phase 4) `{fingerprints?, matchers?, by, comment?}` → `{acknowledged}`. */
  alertingAck: 'craft.alerting.ack',
  /** Alerting actor: who is on call `{atMs?}` → `{oncall}` (phase 4). */
  alertingOnCall: 'craft.alerting.oncall',
  /** Published by the alerting actor: a group's notification (core/slots/alerting.ts `Notification`). */
  alertingNotifications: 'craft.alerting.notifications',
  /** Events published by the alerting actor: `craft.alerting.events.<pending|firing|resolved|inactive|silence|acknowledged>`. */
  alertingEventsPrefix: 'craft.alerting.events',
  /** The delivery queue (JetStream work queue `CRAFT_DELIVERIES`): a notification the alerting actor queued. */
  alertingDeliveriesQueued: 'craft.alerting.deliveries.queued',
  /** The delivery queue: one receiver channel's copy of a notification, published by the notifier. */
  alertingDeliveries: 'craft.alerting.deliveries',
  /** Alerting actor: the receivers its lifecycle may notify → `{receivers}`. */
  alertingReceivers: 'craft.alerting.receivers',

  /** Notifier actor: the delivery plugin and its per-channel statistics → `{delivery, channels, expanded, refused, unrouted}`. */
  notifierStats: 'craft.notifier.stats',
  /** Notifier actor: which of `{receivers}` have no channel in the delivery plugin → `{delivery, missing}`. */
  notifierUnrouted: 'craft.notifier.unrouted',

  /** Ingestion actor: statistics of the active server plugin. */
  ingestionStats: 'craft.ingestion.stats',
  /**
   * Ingestion's tap: every queue message, published (core NATS, at most once) right after the
   * queue acknowledged it, while someone holds a lease — the alerting actor's streamed rules.
   */
  ingestionTap: 'craft.ingestion.tap',
  /** A lease on the tap `{forMs}`: ingestion publishes on `craft.ingestion.tap` for that long. */
  ingestionTapLease: 'craft.ingestion.tap.lease',
  /** Published by an ingestion sink when it starts: lease holders publish their lease again at once. */
  ingestionTapHello: 'craft.ingestion.tap.hello',
} as const;

export type Subject = (typeof SUBJECTS)[keyof typeof SUBJECTS];

/** `craft.sys.kill.<actorId>` */
export const killSubject = (actorId: string): string => `${SUBJECTS.sysKillPrefix}.${actorId}`;
/** `craft.sys.exit.<processName>` */
export const exitSubject = (processName: string): string => `${SUBJECTS.sysExitPrefix}.${processName}`;
/** `craft.control.handover.<actorId>` */
export const handoverSubject = (actorId: string): string => `${SUBJECTS.controlHandoverPrefix}.${actorId}`;
/** `craft.queue.groups.<group>` */
export const groupEventSubject = (group: string): string => `${SUBJECTS.queueGroupsPrefix}.${group}`;
/** `craft.alerting.events.<state>` */
export const alertEventSubject = (state: string): string => `${SUBJECTS.alertingEventsPrefix}.${state}`;
/** `craft.journal.<name>`: the subject a journal's events are stored under. */
export const journalSubject = (name: string): string => `${SUBJECT_PREFIX}.journal.${name}`;

/** JetStream stream names (upper case by convention). */
export const STREAMS = {
  /** One stream per journal: `CRAFT_JOURNAL_<NAME>`. */
  journalPrefix: 'CRAFT_JOURNAL_',
  /** The durable queue: `CRAFT_QUEUE_E<epoch>` with subjects `craft.queue.log.<epoch>.<partition>`. */
  queuePrefix: 'CRAFT_QUEUE_E',
} as const;

export const journalStream = (name: string): string => `${STREAMS.journalPrefix}${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
export const queueStream = (epoch: number): string => `${STREAMS.queuePrefix}${epoch}`;
/**
 * One storage member's own subject for a storage request (`craft.storage.select` →
 * `craft.storage.m.<member>.select`): with several members, readers ask each and merge.
 */
export const storageMemberSubject = (member: string, subject: string): string => `craft.storage.m.${member.replace(/[.*>\s]/g, '_')}.${subject.slice(subject.lastIndexOf('.') + 1)}`;

export const queueLogSubject = (epoch: number, partition: number): string => `craft.queue.log.${epoch}.${partition}`;

/** KV buckets. */
export const BUCKETS = {
  /** Journal snapshots: key = journal name, value = `{seq, state}`. */
  snapshots: 'craft-snapshots',
  /** Consumer-group leases and assignments (queue phase 3, `queue.kv-leases`): `<group>.lease.<member>`, `<group>.state`. */
  groups: 'craft-queue-groups',
  /** Alerting rule groups set through the ruler API (actors/alerting-ruler.ts): `<tenant>.<namespace>.<group>`, each token encoded. */
  rules: 'craft-rules',
} as const;
