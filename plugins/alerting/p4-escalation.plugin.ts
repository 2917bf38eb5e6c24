/**
 * Craft #5, phase 4 — routing, escalation, on-call and acknowledgement. The lifecycle of phase 2
 * (the same engine, plugins/alerting/shared/lifecycle.ts), with:
 *
 * - **A routing tree** (p4-escalation/routing.ts): Alertmanager's — matchers, `continue`, and
 *   per-route receiver, grouping and timings; group keys as Alertmanager writes them.
 * - **Escalation policies**: ordered tiers, each a list of targets (receivers, or `schedule:<name>`
 *   for whoever is on call) and a timeout. Tier 0 hears of an alert with the group's notification;
 *   tier k hears of it once nobody acknowledged it within the sum of the timeouts of tiers 0…k−1,
 *   counted from that first notification. The last tier's timeout is not waited for.
 * - **On-call schedules** (p4-escalation/schedule.ts): rotation layers with handoff times in a
 *   time zone, restriction windows, overrides.
 * - **Acknowledgement** (API `POST /api/v1/alerts/ack`, `craft ack`): an acknowledged alert is
 *   neither repeated nor escalated until it resolves or fires anew; once every firing alert of a
 *   group is acknowledged, every receiver the group told is told so (PagerDuty: `acknowledge`).
 *   Resolutions go at once to every receiver that was told about the alert, escalated ones too.
 *
 *   alerting.lifecycle:
 *     id: alerting.escalation
 *     options:
 *       route: { receiver: default, routes: [ { matchers: ['severity="page"'], escalation: page } ] }
 *       escalationPolicies:
 *         - name: page
 *           tiers:
 *             - { targets: ['schedule:primary'], timeoutMs: 300000 }
 *             - { targets: ['schedule:secondary', team-lead], timeoutMs: 600000 }
 *       schedules: [ { name: primary, timeZone: Europe/Berlin, layers: [ … ], overrides: [ … ] } ]
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { OnCall } from '../../core/slots/alerting.js';
import { Lifecycle, groupingOptionShape, lifecycleOptionShape, type EscalationPolicy } from './shared/lifecycle.js';
import { RoutingTree, routeSchema } from './p4-escalation/routing.js';
import { Schedule, scheduleSchema } from './p4-escalation/schedule.js';

/** A tier target naming a schedule: `schedule:<name>`. */
const SCHEDULE_PREFIX = 'schedule:';

const policySchema = z
  .object({
    name: z.string().min(1),
    tiers: z
      .array(
        z
          .object({
            /** Receivers, and `schedule:<name>` for whoever is on call in that schedule. */
            targets: z.array(z.string().min(1)).min(1),
            /** How long this tier has to acknowledge before the next tier is told, ms. */
            timeoutMs: z.number().int().positive().default(300_000),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

const optionsSchema = z
  .object({
    ...lifecycleOptionShape,
    /** The root route's defaults; routes inherit them. */
    ...groupingOptionShape,
    receiver: z.string().min(1).default('default'),
    route: routeSchema.default({}),
    escalationPolicies: z.array(policySchema).default([]),
    schedules: z.array(scheduleSchema).default([]),
  })
  .strict();
type Options = z.infer<typeof optionsSchema>;

/** Compiles the options: a bad reference (policy, schedule) or a bad time fails here, with its place. */
export function compileEscalation(options: Options): { tree: RoutingTree; schedules: Map<string, Schedule>; resolve: (targets: string[], atMs: number) => string[]; receivers: () => string[]; onCall: (atMs: number) => OnCall[] } {
  const schedules = new Map<string, Schedule>();
  for (const spec of options.schedules) {
    if (schedules.has(spec.name)) throw new Error(`schedule ${JSON.stringify(spec.name)} is defined twice`);
    schedules.set(spec.name, new Schedule(spec));
  }
  const policies = new Map<string, EscalationPolicy>();
  for (const policy of options.escalationPolicies) {
    if (policies.has(policy.name)) throw new Error(`escalation policy ${JSON.stringify(policy.name)} is defined twice`);
    policy.tiers.forEach((tier, i) => {
      for (const target of tier.targets) {
        if (target.startsWith(SCHEDULE_PREFIX) && !schedules.has(target.slice(SCHEDULE_PREFIX.length))) throw new Error(`escalation policy ${policy.name}, tier ${i + 1}: no schedule named ${JSON.stringify(target.slice(SCHEDULE_PREFIX.length))}`);
      }
    });
    policies.set(policy.name, policy);
  }
  const defaults = { receiver: options.receiver, groupBy: options.groupBy, groupWaitMs: options.groupWaitMs, groupIntervalMs: options.groupIntervalMs, repeatIntervalMs: options.repeatIntervalMs };
  const tree = new RoutingTree(options.route, defaults, policies);
  const resolve = (targets: string[], atMs: number): string[] => {
    const out: string[] = [];
    for (const target of targets) {
      const receiver = target.startsWith(SCHEDULE_PREFIX) ? schedules.get(target.slice(SCHEDULE_PREFIX.length))!.who(atMs).receiver : target;
      if (receiver !== null && !out.includes(receiver)) out.push(receiver);
    }
    return out;
  };
  const receivers = (): string[] => [
    ...new Set([
      ...tree.routes.map((r) => r.receiver),
      ...[...policies.values()].flatMap((p) => p.tiers.flatMap((t) => t.targets.filter((x) => !x.startsWith(SCHEDULE_PREFIX)))),
      ...[...schedules.values()].flatMap((s) => s.users()),
    ]),
  ];
  return { tree, schedules, resolve, receivers, onCall: (atMs) => [...schedules.values()].map((s) => s.onCall(atMs)) };
}

export default definePlugin({
  id: 'alerting.escalation',
  craft: 5,
  phase: 4,
  slot: 'alerting.lifecycle',
  version: '1.0.0',
  summary: 'Phase 2 plus a routing tree, escalation policies (tiers, timeouts), on-call schedules (layers, time zones, overrides) and acknowledgement',
  options: optionsSchema,
  create: (_context, options) => {
    const { tree, resolve, receivers, onCall } = compileEscalation(options);
    return new Lifecycle(options, { route: (labels) => tree.route(labels), resolve, receivers, onCall, acknowledgements: true });
  },
});
