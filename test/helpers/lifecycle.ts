/**
 * A lifecycle plugin (phase 2 or 4) on a simulated clock, with a runtime that folds what it
 * emits the way the alerting actor's journal does; `restart` starts a new instance from the
 * folded state. And `evaluation`, a rule's evaluation result with one alert per label set.
 */
import { ManualClock } from '../../core/clock.js';
import { createLogger } from '../../core/log.js';
import type { PluginRegistry } from '../../core/plugins/registry.js';
import type { AlertLifecycle, LifecycleEvent, LifecycleState, Notification, RuleEvaluation } from '../../core/slots/alerting.js';
import { foldLifecycle, initialLifecycleState } from '../../plugins/alerting/shared/lifecycle.js';

const log = createLogger('test');

export interface Harness {
  clock: ManualClock;
  lifecycle: AlertLifecycle;
  events: LifecycleEvent[];
  /** Notifications with alerts (what the actor delivers). */
  notifications: Notification[];
  state: () => LifecycleState;
  restart: () => void;
}

export function lifecycleHarness(
  registry: PluginRegistry,
  plugin: 'alerting.lifecycle' | 'alerting.escalation',
  options: Record<string, unknown> = {},
  startMs = 0,
  onEmit?: (event: LifecycleEvent, before: LifecycleState, nowMs: number) => void,
): Harness {
  const clock = new ManualClock(startMs);
  const events: LifecycleEvent[] = [];
  const notifications: Notification[] = [];
  let state = initialLifecycleState();
  const make = (): AlertLifecycle => {
    const lifecycle = registry.instantiate('alerting.lifecycle', plugin, { log }, options);
    lifecycle.start(state, {
      clock,
      log,
      emit: (event) => {
        onEmit?.(event, state, clock.now());
        events.push(event);
        state = foldLifecycle(state, event);
        if (event.type === 'notified' && event.notification.alerts.length > 0) notifications.push(event.notification);
      },
    });
    return lifecycle;
  };
  const h: Harness = {
    clock,
    lifecycle: make(),
    events,
    notifications,
    state: () => state,
    restart: () => {
      h.lifecycle.stop();
      h.lifecycle = make();
    },
  };
  return h;
}

export const evaluation = (rule: string, atMs: number, alerts: Record<string, string>[], forMs = 0, keepFiringForMs = 0): RuleEvaluation => ({
  rule,
  active: alerts.length > 0,
  value: alerts.length > 0 ? 1 : null,
  labels: {},
  summary: '',
  alerts: alerts.map((labels) => ({ labels: { alertname: rule, ...labels }, value: 1, annotations: {} })),
  forMs,
  keepFiringForMs,
  evaluatedAtMs: atMs,
});
