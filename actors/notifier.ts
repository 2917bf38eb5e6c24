/**
 * The notifier actor hosts the `alerting.delivery` slot: it takes the notifications the alerting
 * actor queued in the durable delivery queue (actors/notifier-queue.ts), expands each into one
 * message per channel of its receiver, and sends them through the plugin — with its retries,
 * backoff and rate limits. It is its own actor (and may run in its own process) so that a
 * receiver that hangs or a channel that crashes costs the alerting actor nothing, and the
 * alerting actor restarting costs no notification in flight.
 *
 *   craft.notifier.stats      → {delivery, channels, expanded, refused, unrouted}
 *   craft.notifier.unrouted   {receivers} → {delivery, missing}: receivers with no channel
 */
import { Actor } from '../core/actor/actor.js';
import { CraftError } from '../core/errors.js';
import { SUBJECTS, handoverSubject } from '../core/subjects.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { AlertDelivery, ChannelStats } from '../core/slots/alerting.js';
import { DeliveryQueue, UNROUTED_WARNING } from './notifier-queue.js';

/** What `craft.notifier.stats` answers. */
export interface NotifierStats {
  delivery: string;
  channels: ChannelStats[];
  /** Notifications expanded into channel messages since this actor started. */
  expanded: number;
  /** Expansions the stream refused (full): tried again a second later. */
  refused: number;
  /** Notifications for receivers with no channel (dropped, said once per receiver in the log). */
  unrouted: number;
}

/** How long the notifier waits for the alerting actor's receivers after a swap, ms. */
const RECEIVERS_TIMEOUT_MS = 2_000;

export class NotifierActor extends Actor {
  private delivery!: AlertDelivery;
  private deliveryId = '';
  private queue: DeliveryQueue | undefined;

  constructor(private readonly context: PlatformContext) {
    super('notifier', context);
    this.handle(SUBJECTS.notifierStats, () => this.stats(), { concurrency: 4 });
    this.handle(SUBJECTS.notifierUnrouted, (body: { receivers?: unknown }) => {
      const receivers = Array.isArray(body?.receivers) ? body.receivers.filter((r): r is string => typeof r === 'string') : [];
      return { delivery: this.deliveryId, missing: receivers.filter((r) => this.delivery.channels(r).length === 0) };
    });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.deliveryId === '' ? undefined : { 'alerting.delivery': this.deliveryId };
  }

  protected override async onStart(): Promise<void> {
    const choice = await currentChoice(this.context, 'alerting.delivery');
    this.delivery = this.context.registry.instantiate('alerting.delivery', choice.id, { log: this.log }, choice.options);
    this.deliveryId = choice.id;
    const queue = new DeliveryQueue(this.bus, this.log, () => this.delivery, this.context.config.alerting.deliveryAckWaitMs, this.context.config.nats.replicas);
    await queue.start();
    this.queue = queue;
    this.log.info('notifier delivering', { delivery: this.deliveryId });
  }

  private stats(): NotifierStats {
    return { delivery: this.deliveryId, channels: this.delivery.stats(), expanded: this.queue?.expanded ?? 0, refused: this.queue?.refused ?? 0, unrouted: this.queue?.unrouted ?? 0 };
  }

  /** After a swap: receivers the alerting actor's lifecycle names that the new plugin has no channel for (best effort; alerting may run elsewhere or not at all). */
  private async checkReceivers(): Promise<void> {
    try {
      const { receivers } = await this.bus.request<{ receivers: string[] }>(SUBJECTS.alertingReceivers, {}, { timeoutMs: RECEIVERS_TIMEOUT_MS });
      const missing = receivers.filter((r) => this.delivery.channels(r).length === 0);
      if (missing.length > 0) this.log.warn(UNROUTED_WARNING, { receivers: missing, delivery: this.deliveryId });
    } catch (error) {
      this.log.debug('receivers not checked: the alerting actor did not answer', { error });
    }
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    if (request.slot !== 'alerting.delivery') throw new CraftError('CRAFT_SLOT_NOT_HOSTED', `the notifier actor hosts alerting.delivery, not ${request.slot}`);
    const started = this.clock.now();
    // Messages in the queue stay; the next one goes through the new plugin.
    const from = this.deliveryId;
    const previous = this.delivery;
    this.delivery = this.context.registry.instantiate('alerting.delivery', request.plugin, { log: this.log }, request.options);
    this.deliveryId = request.plugin;
    await previous.close();
    void this.checkReceivers();
    return { slot: 'alerting.delivery', from, to: request.plugin, tookMs: this.clock.now() - started, detail: 'queued deliveries go through the new plugin' };
  }

  protected override async onStop(): Promise<void> {
    await this.queue?.stop();
    await this.delivery?.close();
  }

  protected override async onCrash(): Promise<void> {
    await this.queue?.stop().catch(() => undefined);
    await this.delivery?.close().catch(() => undefined);
  }
}
