/**
 * The one-line title Slack messages and email subjects share: `[FIRING:2] HighCPU`,
 * `[RESOLVED] HighCPU`, and for phase 4 `[ESCALATED·tier 2 FIRING:1] HighCPU` and
 * `[ACKNOWLEDGED:1 by alice] HighCPU`.
 */
import type { Notification } from '../../../core/slots/alerting.js';

export function notificationTitle(notification: Notification): string {
  const name = notification.groupLabels.alertname ?? (Object.values(notification.groupLabels).join(' ') || 'alerts');
  const firing = notification.alerts.filter((a) => a.status === 'firing').length;
  const count = firing > 0 ? `:${firing}` : '';
  if (notification.kind === 'acknowledge') {
    const by = [...new Set(notification.alerts.map((a) => a.acknowledgedBy).filter((b) => b !== undefined))].join(', ');
    return `[ACKNOWLEDGED${count}${by === '' ? '' : ` by ${by}`}] ${name}`;
  }
  const status = `${notification.status.toUpperCase()}${count}`;
  return notification.kind === 'escalate' ? `[ESCALATED·tier ${(notification.tier ?? 0) + 1} ${status}] ${name}` : `[${status}] ${name}`;
}
