/**
 * The alerting actor's durable delivery queue: a JetStream work-queue stream, one message per
 * notification and receiver channel, published (and stored by the server) before anything is
 * sent. A pull consumer hands each message to the `alerting.delivery` plugin:
 *
 *   sent                       → ack (the message leaves the queue)
 *   429 / 5xx / network error  → nak with the plugin's backoff (or the channel's Retry-After):
 *                                the server delivers it again after that delay
 *   any other refusal          → term (given up, counted as failed, logged)
 *   rate limit says wait       → nak with that wait (not an attempt of the channel)
 *
 * A crash or restart mid-delivery leaves the message unacknowledged; the server delivers it
 * again after `ackWaitMs`: at least once, every copy with the same notification id (the
 * publish's message id, so a republish after a crash is dropped by the server's duplicate
 * window, and the webhook's `Idempotency-Key`, the PagerDuty `dedup_key`).
 */
import { AckPolicy, DiscardPolicy, RetentionPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Bus } from '../core/nats/bus.js';
import type { Logger } from '../core/log.js';
import type { AlertDelivery, ChannelMessage, Notification } from '../core/slots/alerting.js';

export const DELIVERY_STREAM = 'CRAFT_DELIVERIES';
export const DELIVERY_SUBJECT = 'craft.alerting.deliveries';
const DELIVERY_CONSUMER = 'deliverer';
/** Messages the delivery queue holds at most; beyond it a notification is refused (logged and counted). */
export const DELIVERY_QUEUE_MAX = 100_000;
/** Messages being sent at once. */
const DELIVERIES_IN_FLIGHT_MAX = 16;
/** How long the server keeps message ids to drop a republished copy, ms. */
const DUPLICATE_WINDOW_MS = 10 * 60_000;

export class DeliveryQueue {
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> = Promise.resolve();
  private inFlight = new Set<Promise<void>>();
  private stopped = false;
  refused = 0;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly delivery: () => AlertDelivery,
    private readonly ackWaitMs: number,
    private readonly replicas = 1,
  ) {}

  async start(): Promise<void> {
    const jsm = await this.bus.jetstreamManager();
    try {
      await jsm.streams.info(DELIVERY_STREAM);
    } catch {
      await jsm.streams.add({ name: DELIVERY_STREAM, subjects: [DELIVERY_SUBJECT], retention: RetentionPolicy.Workqueue, max_msgs: DELIVERY_QUEUE_MAX, discard: DiscardPolicy.New, duplicate_window: nanos(DUPLICATE_WINDOW_MS), num_replicas: this.replicas });
    }
    const config = { durable_name: DELIVERY_CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: nanos(this.ackWaitMs), max_ack_pending: DELIVERIES_IN_FLIGHT_MAX * 4 };
    try {
      const info = await jsm.consumers.info(DELIVERY_STREAM, DELIVERY_CONSUMER);
      if (info.config.ack_wait !== config.ack_wait) await jsm.consumers.update(DELIVERY_STREAM, DELIVERY_CONSUMER, { ack_wait: config.ack_wait });
    } catch {
      await jsm.consumers.add(DELIVERY_STREAM, config);
    }
    const consumer = await this.bus.jetstream().consumers.get(DELIVERY_STREAM, DELIVERY_CONSUMER);
    const messages = await consumer.consume({ max_messages: DELIVERIES_IN_FLIGHT_MAX });
    this.messages = messages;
    this.loop = (async () => {
      try {
        for await (const message of messages) {
          if (this.stopped) break;
          const work = this.deliver(message).finally(() => this.inFlight.delete(work));
          this.inFlight.add(work);
          while (this.inFlight.size >= DELIVERIES_IN_FLIGHT_MAX) await Promise.race(this.inFlight);
        }
      } catch (error) {
        if (!this.stopped) this.log.warn('delivery consumer stopped', { error });
      }
    })();
  }

  /** Puts one message per channel of the notification's receiver in the queue (durable once this resolves). */
  async enqueue(notification: Notification): Promise<number> {
    const channels = this.delivery().channels(notification.receiver);
    const js = this.bus.jetstream();
    for (let channel = 0; channel < channels.length; channel++) {
      const message: ChannelMessage = { receiver: notification.receiver, channel, notification };
      try {
        await js.publish(DELIVERY_SUBJECT, JSON.stringify(message), { msgID: `${notification.id}/${channel}` });
      } catch (error) {
        this.refused += 1;
        this.log.error('notification not queued for delivery', { notification: notification.id, channel: channels[channel], limit: DELIVERY_QUEUE_MAX, error });
      }
    }
    return channels.length;
  }

  private async deliver(raw: JsMsg): Promise<void> {
    let message: ChannelMessage;
    try {
      message = JSON.parse(new TextDecoder().decode(raw.data)) as ChannelMessage;
    } catch (error) {
      this.log.error('undecodable delivery message dropped', { error });
      raw.term();
      return;
    }
    // After a stop the connection may be gone: an answer that cannot be sent is the redelivery's to make.
    const answer = (fn: () => void): void => {
      try {
        fn();
      } catch (error) {
        this.log.debug('delivery answer not sent', { error });
      }
    };
    const delivery = this.delivery();
    const waitMs = delivery.admit(message, Date.now());
    if (waitMs > 0) {
      answer(() => raw.nak(waitMs));
      return;
    }
    const attempt = raw.info.deliveryCount;
    const outcome = await delivery.send(message, attempt);
    if (outcome.ok) answer(() => raw.ack());
    else if (outcome.retryable) {
      const delayMs = outcome.retryAfterMs ?? delivery.backoffMs(attempt);
      this.log.warn('delivery failed; retrying', { notification: message.notification.id, channel: message.channel, attempt, delayMs, error: outcome.error });
      answer(() => raw.nak(delayMs));
    } else {
      this.log.error('delivery failed for good', { notification: message.notification.id, channel: message.channel, attempt, error: outcome.error });
      answer(() => raw.term());
    }
  }

  /** Stops taking messages; sends in flight finish on their own (unacknowledged ones come back after `ackWaitMs`). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.loop;
  }
}
