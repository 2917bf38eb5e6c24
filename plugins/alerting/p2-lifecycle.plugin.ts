/**
 * Craft #5, phase 2 — the alert lifecycle: every alert through its xstate machine (pending →
 * firing → resolved, `for`, `keep_firing_for`), deduplicated by fingerprint, event-sourced in the
 * `alerts` journal, silenced and inhibited, and grouped into notifications for one receiver with
 * Alertmanager's timing (group_wait 30 s, group_interval 5 min, repeat_interval 4 h) — except
 * that a resolved alert is notified at once.
 *
 * The engine (plugins/alerting/shared/lifecycle.ts) is shared with phase 4, which routes alerts
 * through a tree to escalation policies and takes acknowledgements; this phase is that engine
 * with a single route: every alert in groups by `groupBy`, every notification to `receiver`.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import { Lifecycle, groupingOptionShape, lifecycleOptionShape, type RouteMatch } from './shared/lifecycle.js';

const optionsSchema = z
  .object({
    ...lifecycleOptionShape,
    ...groupingOptionShape,
    /** The receiver every notification names (phase 4 routes to several). */
    receiver: z.string().min(1).default('default'),
  })
  .strict();

export default definePlugin({
  id: 'alerting.lifecycle',
  craft: 5,
  phase: 2,
  slot: 'alerting.lifecycle',
  version: '1.0.0',
  summary: 'xstate alert lifecycle (for, keep_firing_for), fingerprint dedup, grouping with wait/interval/repeat, silences, inhibition; event-sourced',
  options: optionsSchema,
  create: (_context, options) => {
    const route: RouteMatch = { keyPrefix: options.receiver, receiver: options.receiver, groupBy: options.groupBy, groupWaitMs: options.groupWaitMs, groupIntervalMs: options.groupIntervalMs, repeatIntervalMs: options.repeatIntervalMs };
    return new Lifecycle(options, { route: () => [route], resolve: () => [route.receiver], receivers: () => [route.receiver], acknowledgements: false });
  },
});
