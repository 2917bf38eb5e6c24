/**
 * A Slack incoming-webhook message for a notification: a title line (status, alert name, how
 * many), a line per alert (its summary or labels), colour by status — the fields Slack's
 * incoming webhooks take (`text`, `attachments[].color/title/text/fallback`, optional `channel`,
 * `username`).
 */
import { notificationTitle } from './title.js';
import type { Notification } from '../../../core/slots/alerting.js';

export interface SlackOptions {
  channel?: string;
  username?: string;
}

export function slackMessage(notification: Notification, options: SlackOptions): Record<string, unknown> {
  const title = notificationTitle(notification);
  const lines = notification.alerts.map((a) => {
    const { alertname: _ignored, ...rest } = a.labels;
    const what = a.annotations.summary ?? Object.entries(rest).map(([k, v]) => `${k}=${v}`).join(' ');
    return `${a.status === 'firing' ? '🔥' : '✅'} ${what}`;
  });
  return {
    ...(options.channel === undefined ? {} : { channel: options.channel }),
    ...(options.username === undefined ? {} : { username: options.username }),
    text: title,
    attachments: [{ color: notification.status === 'resolved' ? 'good' : notification.kind === 'acknowledge' ? 'warning' : 'danger', title, text: lines.join('\n'), fallback: `${title}\n${lines.join('\n')}` }],
  };
}
