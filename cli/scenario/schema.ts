/**
 * The scenario file: which plugins fill which slots, and a timeline of steps. Validated
 * with line-numbered errors (core/config/yaml-file.ts).
 *
 *   name: quickstart
 *   platform: { ...platform configuration (see craft.yaml) }
 *   steps:
 *     - load: { id, clients, mode: closed|paced, rate, duration, batch, keepAlive, background, metric }
 *     - wait: 2s                                  # or { for: load, load: id } / { for: stored, timeout }
 *     - swap: { slot, plugin, options }
 *     - fault: { kill: actor } | { killProcess: name } | { restartNats: { downMs } }
 *     - query: { expr, range, minSeries, minSamples }
 *     - ack: { matchers: ['alertname=CpuHot'], by, comment }   # acknowledge firing alerts (phase 4)
 *     - consumers: { group: audit, members: 3 }   # a consumer group beside storage (queue phase 2)
 *     - consumer: { group: audit, action: join }  # or crash (stops heartbeating) or leave
 *     - expect: [ { successRate }, { latency }, { storedEqualsAcknowledged }, { alertFired }, { actorRestarted },
 *                 { notified }, { received } ]
 *   receivers:                                    # local endpoints standing in for notification channels
 *     - { name: alice, channel: webhook }         # webhook | pagerduty | slack
 *
 * A receiver in `notified`/`received` is a name from `receivers`, or `oncall:<schedule>` for
 * whoever the alerting actor says is on call in that schedule when the expectation is checked.
 */
import { z } from 'zod';
import { configSchema, ACTOR_IDS } from '../../core/config/schema.js';
import { SLOT_NAMES, type SlotName } from '../../core/slots/index.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** `250ms`, `5s`, `2m`, `1h`, or a number of milliseconds. */
export const duration = z.union([
  z.number().min(0),
  z.string().regex(DURATION, 'a duration like 500ms, 5s, 2m').transform((text) => {
    const [, amount, unit] = DURATION.exec(text)!;
    return Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }),
]);

export const metricShapeSchema = z
  .object({
    name: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/).default('load_metric'),
    /** Base value; each sample adds uniform noise in ±jitter. */
    value: z.number().default(50),
    jitter: z.number().min(0).default(0),
    type: z.enum(['counter', 'gauge', 'histogram', 'summary']).default('gauge'),
    tags: z.record(z.string(), z.string()).default({}),
    /** Send client timestamps (unique per series, so stored = acknowledged is exact) or let the server stamp. */
    timestamps: z.enum(['client', 'server']).default('client'),
    /** Every sample a new series (an `id` label counting up): a cardinality bomb. */
    uniqueSeries: z.boolean().default(false),
  })
  .strict();

export const loadSchema = z
  .object({
    id: z.string().default('load'),
    clients: z.number().int().min(1).max(20_000).default(10),
    mode: z.enum(['closed', 'paced']).default('closed'),
    /** Requests per second in total (paced mode). */
    rate: z.number().positive().optional(),
    duration: duration,
    /** Metrics per request. */
    batch: z.number().int().min(1).max(100_000).default(10),
    keepAlive: z.boolean().default(true),
    /** Keep going while later steps run. */
    background: z.boolean().default(false),
    metric: metricShapeSchema.prefault({}),
    /** Request timeout; a request that takes longer counts as an error. */
    timeout: duration.default(10_000),
    /** The Authorization header of every client: a tenant name with auth off, `Bearer <token>` with it on (default: `client-<n>` per client). */
    authorization: z.string().optional(),
  })
  .strict()
  .refine((load) => load.mode === 'closed' || load.rate !== undefined, { message: 'paced load needs rate (requests per second)', path: ['rate'] });
export type LoadSpec = z.output<typeof loadSchema>;

const slot = z.enum(SLOT_NAMES as [SlotName, ...SlotName[]]);

export const expectationSchema = z.union([
  z.object({ successRate: z.object({ load: z.string().default('load'), min: z.number().min(0).max(1) }).strict() }).strict(),
  z
    .object({
      latency: z.object({ load: z.string().default('load'), percentile: z.number().min(0).max(100), maxMs: z.number().positive() }).strict(),
    })
    .strict(),
  z.object({ storedEqualsAcknowledged: z.object({ timeout: duration.default(30_000) }).strict() }).strict(),
  z.object({ alertFired: z.object({ rule: z.string(), timeout: duration.default(30_000) }).strict() }).strict(),
  z.object({ actorRestarted: z.object({ actor: z.enum(ACTOR_IDS), min: z.number().int().min(1).default(1), timeout: duration.default(30_000) }).strict() }).strict(),
  z.object({ minAcknowledged: z.object({ load: z.string().default('load'), samples: z.number().int().min(0) }).strict() }).strict(),
  /** The platform process's resident memory stayed at most `mb` megabytes during the run so far (sampled every 250 ms). */
  z.object({ memoryBelow: z.object({ mb: z.number().positive() }).strict() }).strict(),
  /** A `consumers:` group consumed every sample the loads had acknowledged (each delivery counted once; at least once, nothing lost). */
  z.object({ groupConsumed: z.object({ group: z.string(), timeout: duration.default(30_000) }).strict() }).strict(),
  /** Every timed change of a `consumers:` group (join, leave; a crash from its expiry) was stable again within `maxMs`; a crash expired within `detectionMaxMs`. */
  z.object({ rebalance: z.object({ group: z.string(), maxMs: z.number().positive(), detectionMaxMs: z.number().positive().optional() }).strict() }).strict(),
  /** At least `min` (and at most `max`) of a load's requests were answered with `status`. */
  z.object({ answered: z.object({ load: z.string().default('load'), status: z.number().int().min(100).max(599), min: z.number().int().min(0).default(1), max: z.number().int().min(0).optional() }).strict() }).strict(),
  /** A receiver got at least `min` notifications described as `what` (webhook: `<notify|escalate|acknowledge> <firing|resolved>`; pagerduty: the event action). */
  z.object({ notified: z.object({ receiver: z.string(), what: z.string(), min: z.number().int().min(1).default(1), timeout: duration.default(30_000) }).strict() }).strict(),
  /** Every notification a receiver got, in order, is exactly this list (waits up to `timeout` for it). */
  z.object({ received: z.object({ receiver: z.string(), exactly: z.array(z.string()), timeout: duration.default(30_000) }).strict() }).strict(),
], { error: 'an expectation is one of: successRate, latency, storedEqualsAcknowledged, alertFired, actorRestarted, minAcknowledged, notified, received, memoryBelow, answered, groupConsumed, rebalance' });
export type Expectation = z.output<typeof expectationSchema>;

export const stepSchema = z.union([
  z.object({ load: loadSchema }).strict(),
  z.object({ wait: z.union([duration, z.object({ for: z.literal('load'), load: z.string() }).strict()]) }).strict(),
  z.object({ swap: z.object({ slot, plugin: z.string(), options: z.record(z.string(), z.unknown()).default({}) }).strict() }).strict(),
  z
    .object({
      fault: z.union([
        z.object({ kill: z.enum(ACTOR_IDS) }).strict(),
        z.object({ killProcess: z.string() }).strict(),
        z.object({ restartNats: z.object({ down: duration.default(500) }).strict() }).strict(),
      ], { error: 'a fault is one of: kill (an actor), killProcess (a process name), restartNats' }),
    })
    .strict(),
  z.object({ query: z.object({ expr: z.string(), range: duration.optional(), minSeries: z.number().int().min(0).default(0), minSamples: z.number().int().min(0).default(0) }).strict() }).strict(),
  z.object({ expect: z.array(expectationSchema).min(1) }).strict(),
  /** Starts a consumer group of `members` beside storage, consuming every queue message (cli/scenario/consumers.ts). */
  z.object({ consumers: z.object({ group: z.string().regex(/^[a-z0-9-]+$/), members: z.number().int().min(1).max(64) }).strict() }).strict(),
  /** A member joins the group, or its oldest live member crashes (stops heartbeating) or leaves. */
  z.object({ consumer: z.object({ group: z.string(), action: z.enum(['join', 'crash', 'leave']) }).strict() }).strict(),
  z
    .object({
      ack: z
        .object({
          /** `name=value`, `name!=value`, `name=~regex`, `name!~regex`: every firing alert matching all of them. */
          matchers: z.array(z.string()).min(1),
          by: z.string().min(1).default('scenario'),
          comment: z.string().default(''),
        })
        .strict(),
    })
    .strict(),
], { error: 'a step is one of: load, wait, swap, fault, query, expect, ack, consumers, consumer' });
export type Step = z.output<typeof stepSchema>;

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and "-"'),
    description: z.string().default(''),
    platform: configSchema.partial().prefault({}),
    /** Local endpoints standing in for notification channels (cli/scenario/receivers.ts). */
    receivers: z
      .array(z.object({ name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-"'), channel: z.enum(['webhook', 'pagerduty', 'slack']).default('webhook') }).strict())
      .default([]),
    steps: z.array(stepSchema).min(1),
  })
  .strict()
  .superRefine((scenario, context) => {
    const ids = new Set<string>();
    scenario.steps.forEach((step, index) => {
      if ('load' in step) {
        if (ids.has(step.load.id)) context.addIssue({ code: 'custom', message: `load id "${step.load.id}" is used twice`, path: ['steps', index, 'load', 'id'] });
        ids.add(step.load.id);
      }
    });
    scenario.steps.forEach((step, index) => {
      const refs: { load: string; path: (string | number)[] }[] = [];
      if ('wait' in step && typeof step.wait === 'object') refs.push({ load: step.wait.load, path: ['steps', index, 'wait', 'load'] });
      if ('expect' in step) {
        step.expect.forEach((e, j) => {
          const inner = Object.values(e)[0] as { load?: string };
          if (inner.load !== undefined) refs.push({ load: inner.load, path: ['steps', index, 'expect', j, Object.keys(e)[0]!, 'load'] });
        });
      }
      for (const ref of refs) if (!ids.has(ref.load)) context.addIssue({ code: 'custom', message: `no load step with id "${ref.load}" before this`, path: ref.path });
    });
  });
export type Scenario = z.output<typeof scenarioSchema>;
