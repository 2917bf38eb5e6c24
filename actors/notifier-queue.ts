/**
 * The durable delivery queue between the alerting actor and the notifier actor: one JetStream
 * work-queue stream (`CRAFT_DELIVERIES`) that holds two kinds of message.
 *
 *   craft.alerting.deliveries.queued   a group's notification, as the alerting actor journaled it
 *                                      (published by `queueNotification`, before anything is sent)
 *   craft.alerting.deliveries          one message per notification and receiver channel
 *
 * The notifier's one pull consumer takes both. A queued notification is expanded into its
 * channel messages — which channels a receiver has is the notifier's `alerting.delivery`
 * plugin's business — each published under the id `<notification id>/<channel>`, and only then
 * acknowledged: a notifier that dies half way expands it again and the stream's duplicate
 * window drops the copies it already holds. A channel message goes to the plugin:
 *
 *   sent                       → ack (the message leaves the queue)
 *   429 / 5xx / network error  → nak with the plugin's backoff (or the channel's Retry-After):
 *                                the server delivers it again after that delay
 *   any other refusal          → term (given up, counted as failed, logged)
 *   rate limit says wait       → nak with that wait (not an attempt of the channel)
 *
 * A crash or restart mid-delivery leaves the message unacknowledged; the server delivers it
 * again after `ackWaitMs`: at least once, every copy with the same notification id (the
 * webhook's `Idempotency-Key`, the PagerDuty `dedup_key`). While no notifier runs, queued
 * notifications wait in the stream (up to DELIVERY_QUEUE_MAX messages).
 */
import { AckPolicy, DiscardPolicy, RetentionPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Bus } from '../core/nats/bus.js';
import { SUBJECTS } from '../core/subjects.js';
import type { Logger } from '../core/log.js';
import type { AlertDelivery, ChannelMessage, Notification } from '../core/slots/alerting.js';

export const DELIVERY_STREAM = 'CRAFT_DELIVERIES';
/** One channel's copy of a notification. */
export const DELIVERY_SUBJECT = SUBJECTS.alertingDeliveries;
/** A notification as the alerting actor queued it, before the notifier expands it into channels. */
export const QUEUED_SUBJECT = SUBJECTS.alertingDeliveriesQueued;
const DELIVERY_CONSUMER = 'deliverer';
/** Messages the delivery queue holds at most; beyond it a notification is refused (logged and counted). */
export const DELIVERY_QUEUE_MAX = 100_000;
/** Messages being handled at once. */
const DELIVERIES_IN_FLIGHT_MAX = 16;
/** How long the server keeps message ids to drop a republished copy, ms. */
const DUPLICATE_WINDOW_MS = 10 * 60_000;
/** Said (by either actor) when the lifecycle names receivers the delivery plugin has no channel for. */
export const UNROUTED_WARNING = 'receivers the lifecycle names have no channel in alerting.delivery: their notifications go nowhere';
/** How soon a notification whose expansion failed (the stream full, JetStream away) is tried again, ms. */
const EXPAND_RETRY_MS = 1_000;

/**
 * Creates the stream when it is missing (either side may come first) and gives a stream made
 * by an older version — which held channel messages only — the queued-notification subject too.
 */
export async function ensureDeliveryStream(bus: Bus, replicas = 1): Promise<void> {
  const jsm = await bus.jetstreamManager();
  const subjects = [DELIVERY_SUBJECT, QUEUED_SUBJECT];
  let info;
  try {
    info = await jsm.streams.info(DELIVERY_STREAM);
  } catch {
    await jsm.streams.add({ name: DELIVERY_STREAM, subjects, retention: RetentionPolicy.Workqueue, max_msgs: DELIVERY_QUEUE_MAX, discard: DiscardPolicy.New, duplicate_window: nanos(DUPLICATE_WINDOW_MS), num_replicas: replicas });
    return;
  }
  if (!subjects.every((s) => info.config.subjects?.includes(s))) await jsm.streams.update(DELIVERY_STREAM, { subjects });
}

/** Puts a notification in the delivery queue (durable once this resolves; a republish of the same id is dropped). */
export async function queueNotification(bus: Bus, notification: Notification): Promise<void> {
  await bus.jetstream().publish(QUEUED_SUBJECT, JSON.stringify(notification), { msgID: notification.id });
}

/** The notifier's side: takes queued notifications and channel messages, and hands the latter to the delivery plugin. */
export class DeliveryQueue {
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> = Promise.resolve();
  private inFlight = new Set<Promise<void>>();
  private stopped = false;
  /** Notifications expanded into channel messages. */
  expanded = 0;
  /** Channel messages the stream refused (full); their notification is expanded again later. */
  refused = 0;
  /** Notifications for a receiver the delivery plugin has no channel for. */
  unrouted = 0;
  private readonly unroutedSaid = new Set<string>();

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly delivery: () => AlertDelivery,
    private readonly ackWaitMs: number,
    private readonly replicas = 1,
  ) {}

  async start(): Promise<void> {
    await ensureDeliveryStream(this.bus, this.replicas);
    const jsm = await this.bus.jetstreamManager();
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
          const work = (message.subject === QUEUED_SUBJECT ? this.expand(message) : this.deliver(message)).finally(() => this.inFlight.delete(work));
          this.inFlight.add(work);
          while (this.inFlight.size >= DELIVERIES_IN_FLIGHT_MAX) await Promise.race(this.inFlight);
        }
      } catch (error) {
        if (!this.stopped) this.log.warn('delivery consumer stopped', { error });
      }
    })();
  }

  /** After a stop the connection may be gone: an answer that cannot be sent is the redelivery's to make. */
  private answer(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.log.debug('delivery answer not sent', { error });
    }
  }

  private decode<T>(raw: JsMsg): T | undefined {
    try {
      return JSON.parse(new TextDecoder().decode(raw.data)) as T;
    } catch (error) {
      this.log.error('undecodable delivery message dropped', { subject: raw.subject, error });
      this.answer(() => raw.term());
      return undefined;
    }
  }

  /** One channel message per channel of the notification's receiver, then the notification leaves the queue. */
  private async expand(raw: JsMsg): Promise<void> {
    const notification = this.decode<Notification>(raw);
    if (notification === undefined) return;
    const channels = this.delivery().channels(notification.receiver);
    if (channels.length === 0) {
      this.unrouted += 1;
      if (!this.unroutedSaid.has(notification.receiver)) {
        this.unroutedSaid.add(notification.receiver);
        this.log.warn('notifications for a receiver with no channel in alerting.delivery go nowhere', { receiver: notification.receiver, notification: notification.id });
      }
      this.answer(() => raw.ack());
      return;
    }
    const js = this.bus.jetstream();
    try {
      for (let channel = 0; channel < channels.length; channel++) {
        const message: ChannelMessage = { receiver: notification.receiver, channel, notification };
        await js.publish(DELIVERY_SUBJECT, JSON.stringify(message), { msgID: `${notification.id}/${channel}` });
      }
    } catch (error) {
      this.refused += 1;
      this.log.error('notification not expanded into its channels; trying again', { notification: notification.id, limit: DELIVERY_QUEUE_MAX, retryMs: EXPAND_RETRY_MS, error });
      this.answer(() => raw.nak(EXPAND_RETRY_MS));
      return;
    }
    this.expanded += 1;
    this.answer(() => raw.ack());
  }

  private async deliver(raw: JsMsg): Promise<void> {
    const message = this.decode<ChannelMessage>(raw);
    if (message === undefined) return;
    const delivery = this.delivery();
    const waitMs = delivery.admit(message, Date.now());
    if (waitMs > 0) {
      this.answer(() => raw.nak(waitMs));
      return;
    }
    const attempt = raw.info.deliveryCount;
    const outcome = await delivery.send(message, attempt);
    if (outcome.ok) this.answer(() => raw.ack());
    else if (outcome.retryable) {
      const delayMs = outcome.retryAfterMs ?? delivery.backoffMs(attempt);
      this.log.warn('delivery failed; retrying', { notification: message.notification.id, channel: message.channel, attempt, delayMs, error: outcome.error });
      this.answer(() => raw.nak(delayMs));
    } else {
      this.log.error('delivery failed for good', { notification: message.notification.id, channel: message.channel, attempt, error: outcome.error });
      this.answer(() => raw.term());
    }
  }

  /** Stops taking messages; sends in flight finish on their own (unacknowledged ones come back after `ackWaitMs`). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.loop;
  }
}
