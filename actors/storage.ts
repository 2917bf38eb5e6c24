/**
 * The storage actor: consumes the queue as group "storage", writes batches to the
 * `storage.engine` plugin, and commits offsets only after the store has them durably.
 * The store keeps the queue positions it applied (atomically with the samples), so a
 * batch delivered again after a crash is recognised and skipped: exactly-once in effect.
 *
 * Swap: consumption pauses (the queue keeps acknowledging and holding batches), the new
 * store is filled from the old one (its whole content and positions), reads and writes
 * switch over, the old store is closed and deleted, consumption resumes.
 */
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Actor } from '../core/actor/actor.js';
import { CraftError, invariant } from '../core/errors.js';
import { PartsReply } from '../core/nats/bus.js';
import { SUBJECTS, handoverSubject } from '../core/subjects.js';
import { QueueClient, isStaleGeneration, type FetchedDelivery } from '../core/queue/protocol.js';
import type { SeriesSamples, WireSample } from '../core/model.js';
import { decodeQueueMessage } from '../core/queue/message.js';
import { positionKey, type QueuePositions, type SampleStore } from '../core/slots/storage.js';
import { chunkSeries } from '../core/series-chunks.js';
import { encodeSeriesValues, type SelectRequest, type StorageInfo } from '../core/storage/client.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import { sleep } from '../core/clock.js';

export const STORAGE_GROUP = 'storage';
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

export class StorageActor extends Actor {
  private store!: SampleStore;
  private pluginId = '';
  private readonly queue: QueueClient;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  /** Held while a batch is applied or a swap is under way. */
  private lock: Promise<void> = Promise.resolve();
  private readsInFlight = 0;
  private batchesApplied = 0;
  private batchesSkipped = 0;
  private batchesUndecodable = 0;
  private lastAppliedReceivedAtMs = 0;
  private readonly member = `storage-${randomUUID().slice(0, 8)}`;

  constructor(private readonly context: PlatformContext) {
    super('storage', context);
    this.queue = new QueueClient(context.bus);
    this.handle(SUBJECTS.storageSelect, (body: SelectRequest) => this.select(body), { concurrency: 8, parts: true });
    this.handle(SUBJECTS.storageCount, (body: SelectRequest) => this.count(body), { concurrency: 4 });
    this.handle(SUBJECTS.storageInfo, () => this.info(), { concurrency: 4 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.pluginId === '' ? undefined : { 'storage.engine': this.pluginId };
  }

  private storeDir(plugin: string): string {
    return join(this.context.dataDir, 'storage', plugin);
  }

  private makeStore(plugin: string, options: Record<string, unknown>): SampleStore {
    return this.context.registry.instantiate('storage.engine', plugin, { dataDir: this.storeDir(plugin), log: this.log.child(plugin) }, options);
  }

  protected override async onStart(): Promise<void> {
    const choice = await currentChoice(this.context, 'storage.engine');
    this.store = this.makeStore(choice.id, choice.options);
    await this.store.open();
    this.pluginId = choice.id;
    this.running = true;
    this.loop = this.consume();
    this.log.info('storage ready', { plugin: this.pluginId, ...this.store.stats() });
  }

  protected override async onStop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.withLock(() => this.store.close());
  }

  protected override async onCrash(): Promise<void> {
    this.running = false;
    await this.lock.catch(() => undefined);
    await this.store?.close().catch(() => undefined);
  }

  private async withLock<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise((resolve) => (release = resolve));
    await previous.catch(() => undefined);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** The consumption loop: join, fetch, apply, commit; transport trouble is retried with backoff. */
  private async consume(): Promise<void> {
    let generation: number | undefined;
    let retryMs = RETRY_MIN_MS;
    while (this.running) {
      try {
        generation ??= (await this.queue.join({ group: STORAGE_GROUP, member: this.member })).generation;
        const { deliveries } = await this.queue.fetch({ group: STORAGE_GROUP, member: this.member, generation, waitMs: 500 });
        if (!this.running) break;
        if (deliveries.length > 0) {
          const commits = await this.withLock(() => this.apply(deliveries));
          await this.queue.commit({ group: STORAGE_GROUP, member: this.member, generation, commits });
        }
        retryMs = RETRY_MIN_MS;
      } catch (error) {
        if (!this.running) break;
        if (isStaleGeneration(error)) {
          generation = undefined;
          continue;
        }
        // The queue unreachable, busy or restarting (a crash it answered with) is an operating error: retry.
        if (error instanceof CraftError && ['CRAFT_NO_RESPONDERS', 'CRAFT_TIMEOUT', 'CRAFT_OVERLOADED', 'CRAFT_ACTOR_CRASHED'].includes(error.code)) {
          this.log.debug('queue unavailable; retrying', { code: error.code, retryMs });
          await sleep(retryMs);
          retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
          // After the queue restarts it has forgotten our membership: join again.
          if (error.code !== 'CRAFT_OVERLOADED') generation = undefined;
          continue;
        }
        this.crash(error);
        return;
      }
    }
  }

  /** Writes the deliveries not yet applied; returns the commits to send (everything seen). */
  private async apply(deliveries: FetchedDelivery[]): Promise<{ epoch: number; partition: number; offset: number }[]> {
    const applied = this.store.positions();
    const samples: WireSample[] = [];
    const positions: QueuePositions = {};
    const commitsByKey = new Map<string, { epoch: number; partition: number; offset: number }>();
    for (const d of deliveries) {
      const key = positionKey(d.epoch, d.partition);
      const commit = commitsByKey.get(key);
      if (commit === undefined || commit.offset < d.offset) commitsByKey.set(key, { epoch: d.epoch, partition: d.partition, offset: d.offset });
      if (d.offset <= (applied[key] ?? 0)) {
        this.batchesSkipped += 1;
        continue;
      }
      let batches;
      try {
        batches = decodeQueueMessage(Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength).toString('utf8'));
      } catch (error) {
        // A message that cannot be decoded would crash storage on every replay: count it, skip it.
        this.batchesUndecodable += 1;
        this.log.error('undecodable queue message skipped', { epoch: d.epoch, partition: d.partition, offset: d.offset, error });
        positions[key] = Math.max(positions[key] ?? 0, d.offset);
        continue;
      }
      for (const batch of batches) {
        for (const sample of batch.samples) samples.push(sample);
        this.lastAppliedReceivedAtMs = Math.max(this.lastAppliedReceivedAtMs, batch.receivedAtMs);
      }
      positions[key] = Math.max(positions[key] ?? 0, d.offset);
      this.batchesApplied += 1;
    }
    if (Object.keys(positions).length > 0) await this.store.write(samples, positions);
    return [...commitsByKey.values()];
  }

  private async read(request: SelectRequest): Promise<SeriesSamples[]> {
    if (!Array.isArray(request.matchers) || typeof request.startMs !== 'number' || typeof request.endMs !== 'number') {
      throw new CraftError('CRAFT_BAD_REQUEST', 'select needs {matchers: [], startMs: number, endMs: number}');
    }
    const store = this.store;
    this.readsInFlight += 1;
    try {
      return await store.select(request.matchers, request.startMs, request.endMs);
    } finally {
      this.readsInFlight -= 1;
    }
  }

  private async select(request: SelectRequest): Promise<PartsReply<unknown>> {
    const series = await this.read(request);
    return new PartsReply(chunkSeries(series).map((part) => encodeSeriesValues(part)));
  }

  private async count(request: SelectRequest): Promise<{ series: number; samples: number }> {
    const series = await this.read(request);
    return { series: series.length, samples: series.reduce((sum, s) => sum + s.timestampsMs.length, 0) };
  }

  private info(): StorageInfo {
    return {
      plugin: this.pluginId,
      stats: this.store.stats(),
      positions: this.store.positions(),
      batchesApplied: this.batchesApplied,
      batchesSkipped: this.batchesSkipped,
      batchesUndecodable: this.batchesUndecodable,
      lagMs: this.lastAppliedReceivedAtMs === 0 ? 0 : Math.max(0, this.clock.now() - this.lastAppliedReceivedAtMs),
    };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    invariant(request.slot === 'storage.engine', `storage actor asked to swap ${request.slot}`);
    if (request.plugin === this.pluginId) throw new CraftError('CRAFT_SWAP_FAILED', `${request.plugin} is already the active store`);
    const started = this.clock.now();
    return this.withLock(async () => {
      const old = this.store;
      // The target starts empty: leftovers of an earlier use of that plugin are stale.
      let next = this.makeStore(request.plugin, request.options);
      await next.open();
      await next.close({ destroy: true });
      next = this.makeStore(request.plugin, request.options);
      await next.open();
      let copied = 0;
      try {
        for await (const chunk of old.scan()) {
          await next.write(chunk, {});
          copied += chunk.length;
        }
        await next.write([], old.positions());
        const expected = old.stats().samples;
        if (next.stats().samples !== expected) {
          throw new CraftError('CRAFT_SWAP_FAILED', `copy incomplete: ${next.stats().samples} of ${expected} samples`);
        }
      } catch (error) {
        await next.close({ destroy: true }).catch(() => undefined);
        throw error instanceof CraftError ? error : new CraftError('CRAFT_SWAP_FAILED', (error as Error).message, { cause: error });
      }
      const from = this.pluginId;
      this.store = next;
      this.pluginId = request.plugin;
      while (this.readsInFlight > 0) await sleep(5);
      await old.close({ destroy: true });
      return {
        slot: 'storage.engine' as const,
        from,
        to: request.plugin,
        tookMs: this.clock.now() - started,
        detail: `${copied} samples and the queue positions handed over; consumption paused ${this.clock.now() - started} ms`,
      };
    });
  }
}
