/**
 * The durable delivery queue between the alerting actor and the notifier actor: two JetStream
 * work-queue streams.
 *
 *   CRAFT_NOTIFICATIONS  craft.alerting.deliveries.queued   a group's notification, as the
 *                        alerting actor made it (published by `queueNotification`, id = its id)
 *   CRAFT_DELIVERIES     craft.alerting.deliveries          one message per notification and
 *                        receiver channel (id = `<notification id>/<channel>`)
 *
 * The notifier has one pull consumer on each. A queued notification is expanded into its
 * channel messages — which channels a receiver has is the notifier's `alerting.delivery`
 * plugin's business — and only then acknowledged: a notifier that dies half way expands it
 * again and the duplicate window (DUPLICATE_WINDOW_MS) drops the copies already there. Two
 * streams, so a backlog of one cannot starve the other: queued notifications never take the
 * room channel messages need, and messages waiting out a backoff (which count as pending) hold
 * up neither the expansion nor other receivers below DELIVERY_ACK_PENDING_MAX. A channel
 * message goes to the plugin:
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
 * notifications wait in their stream (up to NOTIFICATION_QUEUE_MAX).
 */
import { AckPolicy, DiscardPolicy, RetentionPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Bus } from '../core/nats/bus.js';
import { SUBJECTS } from '../core/subjects.js';
import type { Logger } from '../core/log.js';
import type { AlertDelivery, ChannelMessage, Notification } from '../core/slots/alerting.js';

export const NOTIFICATION_STREAM = 'CRAFT_NOTIFICATIONS';
export const DELIVERY_STREAM = 'CRAFT_DELIVERIES';
/** One channel's copy of a notification. */
export const DELIVERY_SUBJECT = SUBJECTS.alertingDeliveries;
/** A notification as the alerting actor queued it, before the notifier expands it into channels. */
export const QUEUED_SUBJECT = SUBJECTS.alertingDeliveriesQueued;
const EXPAND_CONSUMER = 'expander';
const DELIVERY_CONSUMER = 'deliverer';
/** Notifications the queue holds at most; beyond it a notification is refused (logged and counted by the alerting actor). */
export const NOTIFICATION_QUEUE_MAX = 100_000;
/** Channel messages the queue holds at most; beyond it an expansion waits and is tried again. */
export const DELIVERY_QUEUE_MAX = 100_000;
/** Channel messages handed out and not yet acknowledged (being sent, or waiting out a backoff or a rate limit) at most. */
const DELIVERY_ACK_PENDING_MAX = 20_000;
/** Messages being handled at once, per stream. */
const IN_FLIGHT_MAX = 16;
/** How long the server keeps message ids to drop a republished copy, ms (an ack wait must stay well below it). */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 60_000;
/** Said (by either actor) when the lifecycle names receivers the delivery plugin has no channel for. */
export const UNROUTED_WARNING = 'receivers the lifecycle names have no channel in alerting.delivery: their notifications go nowhere';
/** How soon a notification whose expansion failed (the stream full, JetStream away) is tried again, ms. */
const EXPAND_RETRY_MS = 1_000;

/** A work-queue stream as this version wants it: created when missing, its subjects and duplicate window brought up to date. */
async function ensureStream(bus: Bus, name: string, subject: string, maxMsgs: number, replicas: number): Promise<void> {
  const jsm = await bus.jetstreamManager();
  let info;
  try {
    info = await jsm.streams.info(name);
  } catch {
    await jsm.streams.add({ name, subjects: [subject], retention: RetentionPolicy.Workqueue, max_msgs: maxMsgs, discard: DiscardPolicy.New, duplicate_window: nanos(DUPLICATE_WINDOW_MS), num_replicas: replicas });
    return;
  }
  const subjects = info.config.subjects ?? [];
  if (subjects.length !== 1 || subjects[0] !== subject || info.config.duplicate_window !== nanos(DUPLICATE_WINDOW_MS)) {
    await jsm.streams.update(name, { subjects: [subject], duplicate_window: nanos(DUPLICATE_WINDOW_MS) });
  }
}

/** Both streams (either actor may come first). */
export async function ensureDeliveryStreams(bus: Bus, replicas = 1): Promise<void> {
  await ensureStream(bus, DELIVERY_STREAM, DELIVERY_SUBJECT, DELIVERY_QUEUE_MAX, replicas);
  await ensureStream(bus, NOTIFICATION_STREAM, QUEUED_SUBJECT, NOTIFICATION_QUEUE_MAX, replicas);
}

/** Puts a notification in the delivery queue (durable once this resolves; a republish of the same id is dropped). */
export async function queueNotification(bus: Bus, notification: Notification): Promise<void> {
  await bus.jetstream().publish(QUEUED_SUBJECT, JSON.stringify(notification), { msgID: notification.id });
}

/** The notifier's side: expands queued notifications into channel messages, and hands those to the delivery plugin. */
export class DeliveryQueue {
  private readonly streams: ConsumerMessages[] = [];
  private loops: Promise<void>[] = [];
  private stopped = false;
  /** Notifications expanded into channel messages. */
  expanded = 0;
  /** Expansions the channel stream refused (full, or JetStream away): tried again EXPAND_RETRY_MS later. */
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
    await ensureDeliveryStreams(this.bus, this.replicas);
    this.loops.push((await this.consume(NOTIFICATION_STREAM, EXPAND_CONSUMER, IN_FLIGHT_MAX * 4, (m) => this.expand(m))).loop);
    this.loops.push((await this.consume(DELIVERY_STREAM, DELIVERY_CONSUMER, DELIVERY_ACK_PENDING_MAX, (m) => this.deliver(m))).loop);
  }

  /** A durable pull consumer on `stream` (created or brought up to date), its messages handled IN_FLIGHT_MAX at a time. */
  private async consume(stream: string, durable: string, maxAckPending: number, handle: (message: JsMsg) => Promise<void>): Promise<{ loop: Promise<void> }> {
    const jsm = await this.bus.jetstreamManager();
    const config = { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: nanos(this.ackWaitMs), max_ack_pending: maxAckPending };
    try {
      const info = await jsm.consumers.info(stream, durable);
      if (info.config.ack_wait !== config.ack_wait || info.config.max_ack_pending !== config.max_ack_pending) await jsm.consumers.update(stream, durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    } catch {
      await jsm.consumers.add(stream, config);
    }
    const consumer = await this.bus.jetstream().consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: IN_FLIGHT_MAX });
    this.streams.push(messages);
    const loop = (async () => {
      const inFlight = new Set<Promise<void>>();
      try {
        for await (const message of messages) {
          if (this.stopped) break;
          const work = handle(message).finally(() => inFlight.delete(work));
          inFlight.add(work);
          while (inFlight.size >= IN_FLIGHT_MAX) await Promise.race(inFlight);
        }
      } catch (error) {
        if (!this.stopped) this.log.warn('delivery consumer stopped', { stream, error });
      }
    })();
    return { loop };
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
    for (const messages of this.streams) messages.stop();
    await Promise.all(this.loops);
  }
}
