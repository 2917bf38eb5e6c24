/**
 * NATS roles: one per actor, one for the process runtime, one for people (the CLI, scenarios).
 * The embedded server gets one user per role with exactly these permissions, so a process
 * holding ingestion's credentials can append to the queue but cannot swap a plugin
 * (`craft.control.swap`), kill an actor (`craft.sys.kill.*`) or read another actor's requests.
 *
 * How the lists read (nats-server semantics): a subject is allowed when it matches an entry,
 * `*` matching one token and `>` the rest. Each role receives replies on its own inbox prefix
 * (`_INBOX.<role>`), which no other role may subscribe to; every role may publish replies to
 * any inbox (`_INBOX.>`). A reply subject carries a random 22-character id that only the
 * requester and the server see, so it cannot be guessed. (nats-server's `allow_responses`
 * would be tighter, but it keeps an entry per request received until it expires: at tens of
 * thousands of appends a second, a memory cost the server pays for nothing.)
 *
 * Coarse on purpose in one place: the roles that keep journals or run JetStream logs
 * (control, queue, storage, notifier, alerting) may use the whole JetStream API. Separating streams
 * per role needs an account per role with exports and imports; docs/errors.md says so.
 */
import { SUBJECTS, BUCKETS, SUBJECT_PREFIX } from '../subjects.js';

export const NATS_ROLES = ['admin', 'runtime', 'control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

export interface RolePermissions {
  publish: string[];
  subscribe: string[];
}

/** Where a role's connections receive replies: `_INBOX.<role>.…` (nats.js `inboxPrefix`). */
export const inboxPrefix = (role: NatsRole): string => `_INBOX.${role}`;

/** Replies, to whichever role asked. */
const REPLIES = '_INBOX.>';

const JETSTREAM = ['$JS.API.>', '$JS.ACK.>', `$KV.${BUCKETS.snapshots}.>`, `${SUBJECT_PREFIX}.journal.>`];
/** Every actor: runtime events, the plugin choices, and the fault and swap subjects aimed at it. */
const ACTOR_PUBLISH = [SUBJECTS.sysEvents, SUBJECTS.controlChoices];
const ACTOR_SUBSCRIBE = [`${SUBJECTS.sysKillPrefix}.>`, `${SUBJECTS.controlHandoverPrefix}.>`];
/** Appending to the queue: through the queue actor, or straight into the JetStream log. */
const QUEUE_APPEND = [SUBJECTS.queueAppend, SUBJECTS.queueRoute, 'craft.queue.log.>'];

const ROLE_PERMISSIONS: Record<NatsRole, RolePermissions> = {
  admin: { publish: ['>'], subscribe: ['>'] },
  runtime: {
    publish: [SUBJECTS.sysEvents],
    subscribe: [SUBJECTS.sysStatus, `${SUBJECTS.sysExitPrefix}.>`],
  },
  control: {
    publish: [...ACTOR_PUBLISH, `${SUBJECTS.controlHandoverPrefix}.*`, ...JETSTREAM],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.control.>'],
  },
  queue: {
    publish: [...ACTOR_PUBLISH, SUBJECTS.queueEvents, `${SUBJECTS.queueGroupsPrefix}.>`, 'craft.queue.log.>', ...JETSTREAM, `$KV.${BUCKETS.groups}.>`],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.queue.>'],
  },
  storage: {
    publish: [...ACTOR_PUBLISH, 'craft.queue.>', SUBJECTS.storageEventsApplied, SUBJECTS.storageAnnounce, ...JETSTREAM],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.storage.>', SUBJECTS.queueEvents, `${SUBJECTS.queueGroupsPrefix}.>`],
  },
  query: {
    publish: [...ACTOR_PUBLISH, 'craft.storage.>', 'craft.query.>', SUBJECTS.alertingRules, SUBJECTS.alertingAlerts, ...QUEUE_APPEND],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.query.>', SUBJECTS.storageEventsApplied, SUBJECTS.storageAnnounce, SUBJECTS.queueEvents],
  },
  notifier: {
    publish: [...ACTOR_PUBLISH, SUBJECTS.alertingReceivers, SUBJECTS.alertingDeliveries, ...JETSTREAM],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.notifier.>'],
  },
  alerting: {
    publish: [...ACTOR_PUBLISH, 'craft.alerting.>', 'craft.notifier.>', 'craft.query.>', 'craft.storage.>', SUBJECTS.ingestionTapLease, ...QUEUE_APPEND, ...JETSTREAM, `$KV.${BUCKETS.rules}.>`],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.alerting.>', SUBJECTS.ingestionTap, SUBJECTS.ingestionTapHello, SUBJECTS.queueEvents, SUBJECTS.storageEventsApplied],
  },
  ingestion: {
    publish: [...ACTOR_PUBLISH, ...QUEUE_APPEND, SUBJECTS.ingestionTap, SUBJECTS.ingestionTapHello, SUBJECTS.queryRun],
    subscribe: [...ACTOR_SUBSCRIBE, 'craft.ingestion.>', SUBJECTS.queueEvents],
  },
};

/** What a role may publish and subscribe to, inboxes included. */
export function rolePermissions(role: NatsRole): RolePermissions {
  const own = ROLE_PERMISSIONS[role];
  if (role === 'admin') return own;
  return { publish: [...own.publish, REPLIES], subscribe: [...own.subscribe, `${inboxPrefix(role)}.>`] };
}

export interface RoleUser {
  user: string;
  password: string;
}

const quote = (text: string): string => JSON.stringify(text);
const list = (items: string[]): string => `[${items.map(quote).join(', ')}]`;

/**
 * The `authorization` block of a nats-server configuration: one user per role with its
 * permissions. Users not listed cannot connect at all.
 */
export function serverAuthorization(users: Record<NatsRole, RoleUser>): string {
  const lines = ['authorization {', '  users = ['];
  for (const role of NATS_ROLES) {
    const { user, password } = users[role];
    const p = rolePermissions(role);
    lines.push(`    { user: ${quote(user)}, password: ${quote(password)}, permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} } } }`);
  }
  lines.push('  ]', '}');
  return lines.join('\n') + '\n';
}
