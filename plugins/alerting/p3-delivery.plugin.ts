/**
 * Craft #5, phase 3 — notifications delivered to channels. Each receiver names its channels:
 *
 *   receivers:
 *     - name: default
 *       webhook: [{ url: http://hooks.local/alerts }]             Alertmanager's version-4 body
 *       slack: [{ url: https://hooks.slack.com/services/…, channel: '#ops' }]
 *       pagerduty: [{ routingKey: R0UT1NGK3Y, severity: critical }]   Events API v2
 *       email: [{ to: oncall@example.com, from: alerts@example.com, smtp: { host: smtp.example.com, port: 587 } }]
 *       ratePerMinute: 60                                         per channel of this receiver
 *
 * The alerting actor puts one message per notification and channel in a durable JetStream work
 * queue before anything is sent, and asks this plugin to send each; what fails with 429, 5xx, a
 * timeout or a network error is tried again after an exponential backoff with jitter (or the
 * channel's `Retry-After`), anything else is a permanent failure (retrying a refused payload
 * would be refused again). A crash mid-delivery loses nothing: the queue delivers the message
 * again, with the same notification id and dedup key. SMTP: a 4xx reply is retried, a 5xx is not.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { AlertDelivery, ChannelMessage, ChannelStats, DeliveryOutcome } from '../../core/slots/alerting.js';
import { postJson } from './p3-delivery/http.js';
import { slackMessage } from './p3-delivery/slack.js';
import { PAGERDUTY_EVENTS_URL, pagerDutyEvent } from './p3-delivery/pagerduty.js';
import { webhookPayload } from './p3-delivery/webhook-payload.js';
import { emailSender } from './p3-delivery/email.js';

const url = z.string().url();
const receiverSchema = z
  .object({
    name: z.string().min(1),
    webhook: z.array(z.object({ url, maxAlerts: z.number().int().min(0).default(0) }).strict()).default([]),
    slack: z.array(z.object({ url, channel: z.string().optional(), username: z.string().optional() }).strict()).default([]),
    pagerduty: z.array(z.object({ routingKey: z.string().min(1), url: url.default(PAGERDUTY_EVENTS_URL), severity: z.enum(['critical', 'error', 'warning', 'info']).default('critical') }).strict()).default([]),
    email: z
      .array(
        z
          .object({
            to: z.union([z.string().min(3), z.array(z.string().min(3)).min(1)]).transform((to) => (Array.isArray(to) ? to : [to])),
            from: z.string().min(3),
            smtp: z
              .object({
                host: z.string().min(1),
                port: z.number().int().min(1).max(65_535).default(587),
                /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
                secure: z.boolean().default(false),
                requireTLS: z.boolean().default(false),
                auth: z.object({ user: z.string(), pass: z.string() }).strict().optional(),
              })
              .strict(),
          })
          .strict(),
      )
      .default([]),
    /** Messages a minute each channel of this receiver takes at most (PagerDuty allows about 120 per routing key). */
    ratePerMinute: z.number().positive().default(120),
  })
  .strict();

const optionsSchema = z
  .object({
    receivers: z.array(receiverSchema).default([]),
    /** The link notifications carry back to the platform (Alertmanager's `externalURL`). */
    externalUrl: z.string().default('http://localhost:9093'),
    /** A channel's answer is awaited this long, ms. */
    timeoutMs: z.number().int().positive().default(10_000),
    backoffBaseMs: z.number().int().positive().default(1_000),
    backoffMaxMs: z.number().int().positive().default(5 * 60_000),
  })
  .strict();
type Options = z.infer<typeof optionsSchema>;
type Receiver = z.infer<typeof receiverSchema>;

type Channel = { name: 'webhook' | 'slack' | 'pagerduty' | 'email'; send: (message: ChannelMessage) => Promise<DeliveryOutcome>; close?: () => void };

/** Latencies kept per channel for the percentiles. */
const LATENCY_WINDOW = 1_024;

class ChannelDelivery implements AlertDelivery {
  private readonly byReceiver = new Map<string, { receiver: Receiver; channels: Channel[] }>();
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly counters = new Map<string, { sent: number; retried: number; failed: number; latencies: number[] }>();

  constructor(private readonly options: Options) {
    for (const receiver of options.receivers) {
      if (this.byReceiver.has(receiver.name)) throw new Error(`receiver ${JSON.stringify(receiver.name)} is defined twice`);
      const channels: Channel[] = [
        ...receiver.webhook.map((c): Channel => ({ name: 'webhook', send: (m) => postJson(c.url, webhookPayload(m.notification, options.externalUrl, c.maxAlerts), options.timeoutMs, { 'Idempotency-Key': m.notification.id, 'Craft-Notification-Kind': m.notification.kind ?? 'notify', 'Craft-Escalation-Tier': String(m.notification.tier ?? 0) }) })),
        ...receiver.slack.map((c): Channel => ({ name: 'slack', send: (m) => postJson(c.url, slackMessage(m.notification, c), options.timeoutMs) })),
        ...receiver.pagerduty.map((c): Channel => ({ name: 'pagerduty', send: (m) => postJson(c.url, pagerDutyEvent(m.notification, c.routingKey, options.externalUrl, c.severity), options.timeoutMs) })),
        ...receiver.email.map((c): Channel => {
          const sender = emailSender(c, options.externalUrl, options.timeoutMs);
          return { name: 'email', send: (m) => sender.send(m.notification), close: () => sender.close() };
        }),
      ];
      this.byReceiver.set(receiver.name, { receiver, channels });
    }
  }

  channels(receiver: string): string[] {
    return this.byReceiver.get(receiver)?.channels.map((c) => c.name) ?? [];
  }

  private key(message: ChannelMessage): string {
    return `${message.receiver}/${message.channel}:${this.byReceiver.get(message.receiver)?.channels[message.channel]?.name ?? '?'}`;
  }

  admit(message: ChannelMessage, nowMs: number): number {
    const receiver = this.byReceiver.get(message.receiver)?.receiver;
    if (receiver === undefined) return 0;
    const perMs = receiver.ratePerMinute / 60_000;
    const key = this.key(message);
    const bucket = this.buckets.get(key) ?? { tokens: Math.max(1, receiver.ratePerMinute / 6), atMs: nowMs };
    // A token bucket holding up to ten seconds' worth of messages.
    bucket.tokens = Math.min(Math.max(1, receiver.ratePerMinute / 6), bucket.tokens + (nowMs - bucket.atMs) * perMs);
    bucket.atMs = nowMs;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / perMs);
  }

  private counter(key: string): { sent: number; retried: number; failed: number; latencies: number[] } {
    let counter = this.counters.get(key);
    if (counter === undefined) this.counters.set(key, (counter = { sent: 0, retried: 0, failed: 0, latencies: [] }));
    return counter;
  }

  async send(message: ChannelMessage, attempt: number): Promise<DeliveryOutcome> {
    const channel = this.byReceiver.get(message.receiver)?.channels[message.channel];
    if (channel === undefined) return { ok: false, retryable: false, error: `receiver ${message.receiver} has no channel ${message.channel} (the configuration changed since it was queued)` };
    const counter = this.counter(this.key(message));
    if (attempt > 1) counter.retried += 1;
    const outcome = await channel.send(message);
    if (outcome.ok) {
      counter.sent += 1;
      counter.latencies.push(Math.max(0, Date.now() - message.notification.atMs));
      if (counter.latencies.length > LATENCY_WINDOW) counter.latencies.shift();
    } else if (!outcome.retryable) counter.failed += 1;
    return outcome;
  }

  backoffMs(attempt: number): number {
    const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
    // "Full jitter": anywhere up to the ceiling, at least a tenth of it.
    return Math.round(ceiling * (0.1 + 0.9 * Math.random()));
  }

  stats(): ChannelStats[] {
    return [...this.counters].map(([channel, c]) => {
      const sorted = [...c.latencies].sort((a, b) => a - b);
      const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
      return { channel, sent: c.sent, retried: c.retried, failed: c.failed, latencyMs: { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 } };
    });
  }

  async close(): Promise<void> {
    for (const { channels } of this.byReceiver.values()) for (const channel of channels) channel.close?.();
  }
}

export default definePlugin({
  id: 'alerting.channels',
  craft: 5,
  phase: 3,
  slot: 'alerting.delivery',
  version: '1.0.0',
  summary: 'Webhook (Alertmanager v4 body), Slack, PagerDuty Events v2 and email channels; retries with backoff and jitter; per-channel rate limits',
  options: optionsSchema,
  create: (_context, options) => new ChannelDelivery(options),
});
