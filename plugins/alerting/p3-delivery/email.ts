/**
 * An email for a notification, sent over SMTP with nodemailer: subject `[FIRING:n] alertname`,
 * a plain-text body with a line per alert (status, labels, summary) and the link back. SMTP's own
 * answer says what to do next: a 4xx reply (a greylisting server, a full mailbox queue) and
 * connection trouble are worth another try, a 5xx reply (no such recipient, refused sender) is not.
 */
import nodemailer from 'nodemailer';
import { notificationTitle } from './title.js';
import type { DeliveryOutcome, Notification } from '../../../core/slots/alerting.js';

export interface EmailOptions {
  to: string[];
  from: string;
  smtp: { host: string; port: number; secure: boolean; requireTLS: boolean; auth?: { user: string; pass: string } | undefined };
}

export function emailMessage(notification: Notification, externalUrl: string): { subject: string; text: string } {
  const subject = notificationTitle(notification);
  const lines = notification.alerts.map((a) => {
    const labels = Object.entries(a.labels).map(([k, v]) => `${k}="${v}"`).join(', ');
    return `${a.status.toUpperCase()}  {${labels}}${a.annotations.summary === undefined ? '' : `\n    ${a.annotations.summary}`}`;
  });
  return { subject, text: `${subject}\n\n${lines.join('\n')}\n\n${externalUrl}\nnotification ${notification.id}\n` };
}

export function emailSender(options: EmailOptions, externalUrl: string, timeoutMs: number): { send(notification: Notification): Promise<DeliveryOutcome>; close(): void } {
  const transport = nodemailer.createTransport({
    host: options.smtp.host,
    port: options.smtp.port,
    secure: options.smtp.secure,
    requireTLS: options.smtp.requireTLS,
    ...(options.smtp.auth === undefined ? {} : { auth: options.smtp.auth }),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    async send(notification) {
      const { subject, text } = emailMessage(notification, externalUrl);
      try {
        await transport.sendMail({ from: options.from, to: options.to, subject, text, headers: { 'X-Craft-Notification': notification.id }, messageId: `<${encodeURIComponent(notification.id)}@systems-craft>` });
        return { ok: true };
      } catch (error) {
        const code = (error as { responseCode?: number }).responseCode;
        const message = `smtp://${options.smtp.host}:${options.smtp.port}: ${(error as Error).message}`;
        return { ok: false, retryable: code === undefined || (code >= 400 && code < 500), error: message };
      }
    },
    close: () => transport.close(),
  };
}
