/**
 * The webhook body Alertmanager sends (version 4), built from one of our notifications, field
 * for field as Alertmanager 0.25 builds it (test/alerting-webhook.test.ts compares the two for
 * the same alert): `receiver`, `status`, `alerts[]` (`status`, `labels`, `annotations`,
 * `startsAt`, `endsAt`, `generatorURL`, `fingerprint`), `groupLabels`, `commonLabels`,
 * `commonAnnotations`, `externalURL`, `version`, `groupKey`, `truncatedAlerts`. Times are Go's
 * RFC 3339 with trailing zeros of the fraction trimmed; an alert still firing ends at Go's zero time.
 *
 * Phase 4's escalations and acknowledgements go out in the same body (status `firing`); a
 * receiver that wants to tell them apart reads the `Craft-Notification-Kind` header
 * (`notify`, `escalate`, `acknowledge`) and `Craft-Escalation-Tier`.
 */
import type { Notification } from '../../../core/slots/alerting.js';

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookPayload {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: WebhookAlert[];
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
}

/** Go's zero time, as Alertmanager writes the end of an alert that has not ended. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** A time as Go's `time.Time` marshals it in UTC: RFC 3339, fraction without trailing zeros. */
export function goTime(ms: number): string {
  if (ms <= 0) return GO_ZERO_TIME;
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z');
}

/** The labels (or annotations) every alert has with the same value. */
function common(maps: Record<string, string>[]): Record<string, string> {
  if (maps.length === 0) return {};
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(maps[0]!)) if (maps.every((m) => m[name] === value)) out[name] = value;
  return out;
}

/**
 * Alertmanager's group key for a route: the route's matchers path (`{}` for the root route)
 * and the group labels, `{}:{alertname="X"}`.
 */
export function alertmanagerGroupKey(groupLabels: Record<string, string>, routePath = '{}'): string {
  const pairs = Object.keys(groupLabels).sort().map((name) => `${name}=${JSON.stringify(groupLabels[name])}`);
  return `${routePath}:{${pairs.join(', ')}}`;
}

export function webhookPayload(notification: Notification, externalUrl: string, alertsMax = 0): WebhookPayload {
  // Alertmanager lists firing alerts first, then resolved, each by label set.
  const sorted = [...notification.alerts].sort((a, b) => (a.status === b.status ? 0 : a.status === 'firing' ? -1 : 1));
  const kept = alertsMax > 0 ? sorted.slice(0, alertsMax) : sorted;
  const alerts: WebhookAlert[] = kept.map((a) => ({
    status: a.status,
    labels: a.labels,
    annotations: a.annotations,
    startsAt: goTime(a.startsAtMs),
    endsAt: a.status === 'resolved' ? goTime(a.endsAtMs) : GO_ZERO_TIME,
    generatorURL: a.generatorUrl ?? '',
    fingerprint: a.fingerprint,
  }));
  return {
    receiver: notification.receiver,
    status: notification.status,
    alerts,
    groupLabels: notification.groupLabels,
    commonLabels: common(notification.alerts.map((a) => a.labels)),
    commonAnnotations: common(notification.alerts.map((a) => a.annotations)),
    externalURL: externalUrl,
    version: '4',
    groupKey: alertmanagerGroupKey(notification.groupLabels, notification.routePath),
    truncatedAlerts: notification.alerts.length - kept.length,
  };
}
