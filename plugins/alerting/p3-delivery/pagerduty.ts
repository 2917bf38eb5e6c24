/**
 * A PagerDuty Events API v2 event for a notification: `trigger` while any alert of the group
 * fires, `resolve` once none does, with a `dedup_key` that is the same for every event of the
 * group (SHA-256 of the group key, as Alertmanager uses), so PagerDuty folds repeats and retries
 * into one incident and the resolve closes it; phase 4's acknowledgement sends `acknowledge`.
 */
import { createHash } from 'node:crypto';
import type { Notification } from '../../../core/slots/alerting.js';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
const SEVERITIES = new Set(['critical', 'error', 'warning', 'info']);

export function pagerDutyDedupKey(groupKey: string): string {
  return createHash('sha256').update(groupKey).digest('hex');
}

export function pagerDutyEvent(notification: Notification, routingKey: string, externalUrl: string, severity = 'critical'): Record<string, unknown> {
  const dedupKey = pagerDutyDedupKey(notification.groupKey);
  if (notification.status === 'resolved') return { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey };
  // Phase 4: every firing alert of the group acknowledged — the incident is acknowledged, not closed.
  if (notification.kind === 'acknowledge') return { routing_key: routingKey, event_action: 'acknowledge', dedup_key: dedupKey };
  const firing = notification.alerts.filter((a) => a.status === 'firing');
  const first = firing[0] ?? notification.alerts[0]!;
  const name = notification.groupLabels.alertname ?? first.labels.alertname ?? 'alert';
  const labelSeverity = first.labels.severity;
  const summary = `[FIRING:${firing.length}] ${name}${first.annotations.summary === undefined ? '' : ` — ${first.annotations.summary}`}`;
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey,
    client: 'Systems Craft',
    client_url: externalUrl,
    payload: {
      // PagerDuty refuses summaries over 1,024 characters.
      summary: summary.length > 1_024 ? `${summary.slice(0, 1_021)}…` : summary,
      source: first.labels.instance ?? first.labels.job ?? 'systems-craft',
      severity: labelSeverity !== undefined && SEVERITIES.has(labelSeverity) ? labelSeverity : severity,
      timestamp: new Date(first.startsAtMs).toISOString(),
      custom_details: { firing: firing.map((a) => ({ labels: a.labels, annotations: a.annotations })), groupLabels: notification.groupLabels },
    },
  };
}
