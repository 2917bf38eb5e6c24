/**
 * The platform configuration (`craft up --config craft.yaml`, and the `platform` section of
 * a scenario). Every key has a default, so an empty file is a valid configuration.
 */
import { tokenListSchema } from '../auth/tokens.js';
import { z } from 'zod';
import * as D from '../defaults.js';
import { STRATEGIES } from '../supervision/policy.js';
import { SLOT_NAMES, type SlotName } from '../slots/index.js';

export const ACTOR_IDS = ['control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion'] as const;
export type ActorId = (typeof ACTOR_IDS)[number];

/** Default plugin per slot for `craft up`: the durable defaults and the fastest ingestion phase. */
export const DEFAULT_PLUGINS: Record<SlotName, string> = {
  'ingestion.server': 'ingestion.event-driven',
  'queue.log': 'queue.jetstream',
  'queue.groups': 'queue.consumer-groups',
  'storage.engine': 'storage.gorilla',
  'storage.kv': 'kv.level',
  'query.evaluator': 'query.interpreter',
  'alerting.evaluator': 'craft0.polling-alerts',
  'alerting.lifecycle': 'alerting.lifecycle',
  'alerting.delivery': 'alerting.channels',
};

const port = z.number().int().min(0).max(65_535);

export const pluginChoiceSchema = z.union([
  z.string().min(1),
  z.object({ id: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }).strict(),
]);
export type PluginChoice = z.infer<typeof pluginChoiceSchema>;

const slotKeys = z.enum(SLOT_NAMES as [SlotName, ...SlotName[]]);

export const alertRuleSchema = z
  .object({
    name: z.string().min(1),
    metric: z.string().min(1),
    condition: z.enum(['>', '<']),
    threshold: z.number(),
    windowSeconds: z.number().positive(),
  })
  .strict();
export type SeedAlertRule = z.infer<typeof alertRuleSchema>;

/** The seed's three rules: what both alerting evaluators run when they are given no rules. */
export const SEED_ALERT_RULES: readonly SeedAlertRule[] = [
  { name: 'HighCpuUsage', metric: 'cpu_usage', condition: '>', threshold: 80, windowSeconds: 60 },
  { name: 'HighMemoryUsage', metric: 'memory_usage', condition: '>', threshold: 90, windowSeconds: 60 },
  { name: 'HighErrorRate', metric: 'error_rate', condition: '>', threshold: 5, windowSeconds: 30 },
];

export const processSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and "-"'),
    actors: z.array(z.enum(ACTOR_IDS)).min(1),
  })
  .strict();

export const configSchema = z
  .object({
    /** Root of everything the platform writes. */
    dataDir: z.string().default('./data'),
    nats: z
      .object({
        /** Connect to this server or cluster instead of embedding one. */
        url: z.string().nullable().default(null),
        /** Port of the embedded server (0 picks a free one). */
        port: port.default(0),
        /**
         * Embedded server: `roles` starts it with a user per actor role, each allowed only its
         * subjects (core/nats/roles.ts; passwords in `<dataDir>/nats/users.json`); `none`, open to anyone.
         */
        auth: z.enum(['roles', 'none']).default('roles'),
        /** Copies of every JetStream stream and bucket the platform creates (journals, the queue, deliveries): 3 on a 3-node cluster, so one node's loss loses nothing. */
        replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1),
        /** Existing server: a NATS `.creds` file, or a users file with a user per role (core/nats/credentials.ts). */
        credentials: z.string().nullable().default(null),
        /** TLS to the server (a `tls://` URL requires it): a CA to trust, a client certificate and key. */
        tls: z.object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() }).strict().nullable().default(null),
      })
      .strict()
      .prefault({}),
    /** Name of this process in the supervision tree. */
    processName: z.string().default('main'),
    http: z
      .object({
        host: z.string().default('0.0.0.0'),
        ingestionPort: port.default(D.INGESTION_PORT_DEFAULT),
        queryPort: port.default(D.QUERY_PORT_DEFAULT),
        alertingPort: port.default(D.ALERTING_PORT_DEFAULT),
        /** Listen backlog of the ingestion socket. */
        backlog: z.number().int().positive().default(511),
      })
      .strict()
      .prefault({}),
    /** Serve fault-injection subjects (kill an actor, exit a process). Scenarios turn this on. */
    faults: z.boolean().default(false),
    /** Actors this process runs (less those under `processes`); the rest run elsewhere on the same NATS. */
    actors: z.array(z.enum(ACTOR_IDS)).default([...ACTOR_IDS]),
    /** Further OS processes this process starts and supervises, each hosting some actors. */
    processes: z.array(processSchema).default([]),
    plugins: z.partialRecord(slotKeys, pluginChoiceSchema).default({}),
    /** Bearer tokens → tenants and scopes (core/auth/tokens.ts); auth is on when any token is given. */
    auth: z
      .object({
        /** A YAML file `tokens: [{token, tenant, scopes}]`, relative to the configuration file. */
        tokensFile: z.string().optional(),
        tokens: tokenListSchema.default([]),
      })
      .strict()
      .prefault({}),
    ingestion: z
      .object({
        rateLimitPerSecond: z.number().int().min(0).default(D.RATE_LIMIT_REQUESTS_PER_SECOND),
        bodyBytesMax: z.number().int().positive().default(D.BODY_BYTES_MAX),
        batchMetricsMax: z.number().int().positive().default(D.BATCH_METRICS_MAX),
        samplesPerRequestMax: z.number().int().positive().default(D.SAMPLES_PER_REQUEST_MAX),
        metricNameLengthMax: z.number().int().positive().default(D.METRIC_NAME_LENGTH_MAX),
        labelsPerSeriesMax: z.number().int().positive().default(D.LABELS_PER_SERIES_MAX),
        labelNameLengthMax: z.number().int().positive().default(D.LABEL_NAME_LENGTH_MAX),
        labelValueLengthMax: z.number().int().positive().default(D.LABEL_VALUE_LENGTH_MAX),
        seriesPerTenantMax: z.number().int().positive().default(D.SERIES_PER_TENANT_MAX),
        newSeriesPerTenantPerMinute: z.number().int().positive().default(D.NEW_SERIES_PER_TENANT_PER_MINUTE),
        activeSeriesMax: z.number().int().positive().default(D.ACTIVE_SERIES_MAX),
        activeSeriesWindowMs: z.number().int().positive().default(D.ACTIVE_SERIES_WINDOW_MS),
        workQueueCapacity: z.number().int().positive().default(D.WORK_QUEUE_CAPACITY),
        appendInFlightMax: z.number().int().positive().default(D.APPEND_IN_FLIGHT_MAX),
        keepAliveTimeoutMs: z.number().int().positive().default(5_000),
        /** Influx `m value=1` stored as `m` instead of `m_value` (core/slots/ingestion.ts). */
        influxSingleValueFieldAsMeasurement: z.boolean().default(false),
        workers: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
    queue: z
      .object({
        partitions: z.number().int().min(1).max(64).default(D.QUEUE_PARTITIONS),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        /** Most series one select may answer (all phases): more is refused with CRAFT_QUERY_LIMIT, naming the limit. */
        selectSeriesMax: z.number().int().positive().default(D.STORAGE_SELECT_SERIES_MAX),
        /** Most samples one select may read: the chunk stores refuse before decoding (counting whole chunks the range touches). */
        selectSamplesMax: z.number().int().positive().default(D.STORAGE_SELECT_SAMPLES_MAX),
      })
      .strict()
      .prefault({}),
    alerting: z
      .object({
        evalIntervalMs: z.number().int().positive().default(D.ALERT_EVAL_INTERVAL_MS),
        /** How long a notification being delivered may go unanswered before the delivery queue hands it out again, ms. */
        deliveryAckWaitMs: z.number().int().min(1_000).max(600_000).default(30_000),
        rules: z.array(alertRuleSchema).optional(),
      })
      .strict()
      .prefault({}),
    supervision: z
      .object({
        strategy: z.enum(STRATEGIES).default('one_for_one'),
        intensity: z.number().int().min(0).default(D.RESTART_INTENSITY),
        periodMs: z.number().int().positive().default(D.RESTART_PERIOD_MS),
        backoff: z
          .object({
            minMs: z.number().min(0).default(D.RESTART_BACKOFF_MIN_MS),
            maxMs: z.number().min(0).default(D.RESTART_BACKOFF_MAX_MS),
            jitter: z.number().min(0).max(1).default(D.RESTART_BACKOFF_JITTER),
          })
          .strict()
          .prefault({}),
        shutdownMs: z.number().int().positive().default(D.SHUTDOWN_TIMEOUT_MS),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type PlatformConfig = z.output<typeof configSchema>;
export type PlatformConfigInput = z.input<typeof configSchema>;

/**
 * The actors this process runs: `actors`, less those a child process under `processes` hosts —
 * an actor runs in one place (two storage actors would share one data directory).
 */
export function actorsHere(config: Pick<PlatformConfig, 'actors' | 'processes'>): ActorId[] {
  return config.actors.filter((actor) => !config.processes.some((child) => child.actors.includes(actor)));
}

/** A configuration from an object (tests, scenarios), with defaults filled in. */
export function makeConfig(input: PlatformConfigInput = {}): PlatformConfig {
  return configSchema.parse(input);
}

/** Plugin id and options chosen for a slot, config over defaults. */
export function pluginFor(config: PlatformConfig, slot: SlotName): { id: string; options: Record<string, unknown> } {
  const choice = config.plugins[slot];
  if (choice === undefined) return { id: DEFAULT_PLUGINS[slot], options: {} };
  return typeof choice === 'string' ? { id: choice, options: {} } : { id: choice.id, options: choice.options };
}
