/**
 * The storage actor: consumes the queue as group "storage", appends batches to the
 * `storage.engine` plugin (which keeps its data in the `storage.kv` engine when it uses one),
 * and commits offsets only after the store has them durably. The store keeps the queue
 * positions it applied (atomically with the samples), so a batch delivered again after a
 * crash is recognised and skipped: exactly-once in effect.
 *
 * Swap (of either slot): consumption pauses (the queue keeps acknowledging and holding
 * batches), a new store is filled from the old one (its whole content and positions), reads
 * and writes switch over, the old store is closed and deleted, consumption resumes.
 */
import { join } from 'node:path';
import { tokenTable } from '../core/auth/tokens.js';
import { ANY_CLIENT, MetricMetadata, type MetricMetadataEntry } from './storage-metadata.js';
import { Actor } from '../core/actor/actor.js';
import { CraftError, invariant } from '../core/errors.js';
import { PartsReply } from '../core/nats/bus.js';
import { SUBJECTS, handoverSubject, storageMemberSubject } from '../core/subjects.js';
import { type FetchedDelivery } from '../core/queue/protocol.js';
import { GroupMember } from '../core/queue/member.js';
import { METRIC_NAME_LABEL, type LabelMatcher } from '../core/model.js';
import { decodeQueueMessage } from '../core/queue/message.js';
import { positionKey, selectLimitError, type QueuePositions, type SampleStore, type StorageContext, type StoreStats } from '../core/slots/storage.js';
import type { KvEngine } from '../core/slots/kv.js';
import { chunkSeries } from '../core/series-chunks.js';
import { rollupParts } from '../core/storage/rollup.js';
import { encodeSeriesValues, type RollupRequest, type LabelValuesRequest, type RangeRequest, type SelectRequest, type StorageInfo, type StorageLag } from '../core/storage/client.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext, type PluginChoiceResolved } from '../core/platform-context.js';
import { sleep } from '../core/clock.js';
import { NATS_PAYLOAD_BYTES_MAX, STORAGE_ANNOUNCE_MS } from '../core/defaults.js';

export const STORAGE_GROUP = 'storage';
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** Fetches one commit may take when the queue holds a backlog. */
const FETCHES_PER_COMMIT_MAX = 4;
/** A fetch at least this large (half a NATS message) says more is waiting. */
const FULL_FETCH_BYTES = NATS_PAYLOAD_BYTES_MAX / 2;
const fetchedBytes = (deliveries: FetchedDelivery[]): number => deliveries.reduce((sum, d) => sum + d.payload.length, 0);

/** Applied batches whose receive → applied lag the percentiles in `craft.storage.info` cover. */
export const LAG_WINDOW_BATCHES = 1_024;

/** Most label names and pairs one cardinality answer lists. */
export const CARDINALITY_LIMIT_MAX = 1_000;

function cardinalityLimit(value: unknown): number {
  if (value === undefined) return 10;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > CARDINALITY_LIMIT_MAX) {
    throw new CraftError('CRAFT_BAD_REQUEST', `cardinality limit must be an integer 1–${CARDINALITY_LIMIT_MAX}`);
  }
  return value;
}

/** The engine and KV plugins a store runs on. */
interface StoreChoice {
  engine: PluginChoiceResolved;
  kv: PluginChoiceResolved;
}

/** Receive → applied lag of the last `LAG_WINDOW_BATCHES` batches. */
class LagWindow {
  private readonly values = new Float64Array(LAG_WINDOW_BATCHES);
  private next = 0;
  private filled = 0;
  latestMs = 0;
  caughtUp = true;

  record(lagMs: number): void {
    this.values[this.next] = lagMs;
    this.next = (this.next + 1) % LAG_WINDOW_BATCHES;
    this.filled = Math.min(LAG_WINDOW_BATCHES, this.filled + 1);
    this.latestMs = lagMs;
  }

  summary(): StorageLag {
    const sorted = Array.from(this.values.subarray(0, this.filled)).sort((a, b) => a - b);
    const at = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return { currentMs: this.caughtUp ? 0 : this.latestMs, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? 0, batches: this.filled };
  }
}

export class StorageActor extends Actor {
  private store!: SampleStore;
  private choice!: StoreChoice;
  /** This actor's membership of the consumer group `storage` (while consuming). */
  private groupMember: GroupMember | undefined;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  /** Held while a batch is applied, a delete runs or a swap is under way. */
  private lock: Promise<void> = Promise.resolve();
  private readsInFlight = 0;
  private batchesApplied = 0;
  private batchesSkipped = 0;
  private batchesUndecodable = 0;
  private samplesApplied = 0;
  private samplesRestamped = 0;
  private readonly lag = new LagWindow();
  private metadata!: MetricMetadata;
  /** Tokens configured: a batch's client id is its tenant (metric types are kept per tenant). */
  private readonly tenantsOn: boolean;
  /** Static membership: the same id across restarts of this process's storage actor, so a restart keeps its partitions (queue.consumer-groups). */
  private readonly member: string;
  private announcer: NodeJS.Timeout | undefined;

  constructor(private readonly context: PlatformContext) {
    super('storage', context);
    this.member = `storage@${context.processName}`;
    this.tenantsOn = tokenTable(context.config.auth.tokens) !== undefined;
    // Each request is served on the shared subject (one member answers: a queue group) and on
    // this member's own subject, where readers that know several members ask each of them.
    const serve = <T>(subject: string, handler: (body: T) => unknown, options: { concurrency?: number; parts?: boolean } = {}): void => {
      this.handle(subject, handler, { ...options, queue: STORAGE_GROUP });
      this.handle(storageMemberSubject(this.member, subject), handler, options);
    };
    serve(SUBJECTS.storageSelect, (body: SelectRequest) => this.select(body), { concurrency: 8, parts: true });
    serve(SUBJECTS.storageSeries, (body: RangeRequest) => this.read(body, (q, m) => q.series(m)), { concurrency: 4 });
    serve(SUBJECTS.storageLabels, (body: RangeRequest) => this.read(body, (q, m) => q.labelNames(m)), { concurrency: 4 });
    serve(SUBJECTS.storageLabelValues, (body: LabelValuesRequest) => this.labelValues(body), { concurrency: 4 });
    serve(SUBJECTS.storageCount, (body: RangeRequest) => this.count(body), { concurrency: 4 });
    serve(SUBJECTS.storageDelete, (body: RangeRequest) => this.deleteSeries(body));
    serve(SUBJECTS.storageRollup, (body: RollupRequest) => this.rollup(body), { concurrency: 4, parts: true });
    serve(SUBJECTS.storageCardinality, (body: { limit?: unknown }) => this.store.cardinality(cardinalityLimit(body?.limit)), { concurrency: 2 });
    serve(SUBJECTS.storageFlush, () => this.withLock(async () => (await this.store.flush(), this.store.stats())));
    serve(SUBJECTS.storageInfo, () => this.info(), { concurrency: 4 });
    serve(SUBJECTS.storageMetadata, (body: { metric?: unknown; limit?: unknown; tenant?: unknown }) => this.metricMetadata(body), { concurrency: 2 });
    // Every member answers who it is (no queue group).
    this.handle(SUBJECTS.storageMembers, () => ({ member: this.member }), { concurrency: 4 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.store === undefined ? undefined : { 'storage.engine': this.choice.engine.id, 'storage.kv': this.choice.kv.id };
  }

  private storeDir(choice: StoreChoice): string {
    return join(this.context.dataDir, 'storage', `${choice.engine.id}@${choice.kv.id}`);
  }

  private makeStore(choice: StoreChoice): SampleStore {
    const dataDir = this.storeDir(choice);
    const log = this.log.child(choice.engine.id);
    const storageContext: StorageContext = {
      dataDir,
      log,
      clock: this.clock,
      openKv: async (name: string): Promise<KvEngine> => {
        const kv = this.context.registry.instantiate('storage.kv', choice.kv.id, { dataDir: join(dataDir, name), log: log.child(choice.kv.id) }, choice.kv.options);
        await kv.open();
        return kv;
      },
    };
    return this.context.registry.instantiate('storage.engine', choice.engine.id, storageContext, choice.engine.options);
  }

  protected override async onStart(): Promise<void> {
    const announce = (): void => {
      if (!this.bus.closed) this.bus.publish(SUBJECTS.storageAnnounce, { member: this.member });
    };
    this.announcer = setInterval(announce, STORAGE_ANNOUNCE_MS);
    this.announcer.unref();
    announce();
    this.metadata = new MetricMetadata(join(this.context.dataDir, 'storage', 'metadata.json'), this.clock);
    this.choice = { engine: await currentChoice(this.context, 'storage.engine'), kv: await currentChoice(this.context, 'storage.kv') };
    const store = this.makeStore(this.choice);
    await store.open();
    this.store = store;
    this.running = true;
    this.loop = this.consume();
    this.log.info('storage ready', { plugin: this.choice.engine.id, kv: this.choice.kv.id, ...this.store.stats() });
  }

  protected override async onStop(): Promise<void> {
    clearInterval(this.announcer);
    this.running = false;
    await this.loop;
    // Stopped on purpose: leave, so the other members take its partitions at once.
    await this.groupMember?.stop({ leave: true }).catch(() => undefined);
    this.metadata.save();
    await this.withLock(() => this.store.close());
  }

  protected override async onCrash(): Promise<void> {
    clearInterval(this.announcer);
    this.running = false;
    // Crashed: no leave (a restart rejoins as the same member and takes its partitions back).
    await this.groupMember?.stop({ leave: false }).catch(() => undefined);
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

  /**
   * The consumption loop, as a member of the consumer group `storage` (core/queue/member.ts: it
   * joins, heartbeats, gives up revoked partitions once what it fetched from them is committed,
   * commits again at a new generation, joins again when fenced or when a fetch went unanswered):
   * fetch, apply, commit; transport trouble is retried with backoff. While a batch is applied and
   * committed, the next fetch is already on its way: the queue's answer time, which grows when
   * ingestion keeps the queue busy, is no longer added to every batch. A full fetch means a
   * backlog: up to `FETCHES_PER_COMMIT_MAX` fetches go into one commit. Deliveries fetched but not
   * applied (a crash, a stop, a stale generation) are not committed; they come again.
   */
  private async consume(): Promise<void> {
    const member = new GroupMember(this.bus, { group: STORAGE_GROUP, member: this.member });
    this.groupMember = member;
    let started = false;
    let retryMs = RETRY_MIN_MS;
    let next: Promise<FetchedDelivery[]> | undefined;
    const poll = (): Promise<FetchedDelivery[]> => {
      const pending = member.poll({ waitMs: 500 });
      pending.catch(() => undefined); // awaited below, or dropped
      return pending;
    };
    while (this.running) {
      try {
        if (!started) {
          await member.start();
          started = true;
        }
        const deliveries = await (next ?? poll());
        next = undefined;
        if (!this.running) break;
        this.lag.caughtUp = deliveries.length === 0;
        if (deliveries.length > 0) {
          next = poll();
          // A full fetch means a backlog: take the fetches behind it into the same commit (one
          // synced write for up to FETCHES_PER_COMMIT_MAX fetches), so storage does more per turn
          // of an event loop it may share with ingestion.
          let batch = deliveries;
          for (let extra = 1; extra < FETCHES_PER_COMMIT_MAX && fetchedBytes(batch) >= FULL_FETCH_BYTES * extra; extra++) {
            const more = await next;
            next = poll();
            if (more.length === 0) break;
            batch = batch.concat(more);
          }
          await this.withLock(() => this.apply(batch));
          await member.commit(batch);
        }
        retryMs = RETRY_MIN_MS;
      } catch (error) {
        next = undefined;
        if (!this.running) break;
        // The queue unreachable, busy or restarting (a crash it answered with) is an operating error: retry.
        if (error instanceof CraftError && ['CRAFT_NO_RESPONDERS', 'CRAFT_TIMEOUT', 'CRAFT_OVERLOADED', 'CRAFT_ACTOR_CRASHED'].includes(error.code)) {
          this.log.debug('queue unavailable; retrying', { code: error.code, retryMs });
          await sleep(retryMs);
          retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
          continue;
        }
        this.crash(error);
        return;
      }
    }
  }

  /** Appends the deliveries not yet applied in one transaction (the member client commits them all after). */
  private async apply(deliveries: FetchedDelivery[]): Promise<void> {
    const applied = this.store.positions();
    const appender = this.store.appender();
    const positions: QueuePositions = {};
    const receivedAtMs: number[] = [];
    let samples = 0;
    let minTimeMs = Infinity;
    let maxTimeMs = -Infinity;
    for (const d of deliveries) {
      const key = positionKey(d.epoch, d.partition);
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
        // With tokens the client id is the tenant; without, it is whatever Authorization header came (not kept).
        this.metadata.note(this.tenantsOn ? batch.client : ANY_CLIENT, batch.types);
        for (const sample of batch.samples) {
          appender.append(sample[0], sample[1], sample[2], sample[3] === 1);
          if (sample[1] < minTimeMs) minTimeMs = sample[1];
          if (sample[1] > maxTimeMs) maxTimeMs = sample[1];
        }
        samples += batch.samples.length;
        receivedAtMs.push(batch.receivedAtMs);
      }
      positions[key] = Math.max(positions[key] ?? 0, d.offset);
      this.batchesApplied += 1;
    }
    if (Object.keys(positions).length === 0) {
      appender.rollback();
      return;
    }
    const result = await appender.commit(positions);
    const nowMs = this.clock.now();
    for (const t of receivedAtMs) this.lag.record(Math.max(0, nowMs - t));
    this.samplesApplied += samples;
    this.samplesRestamped += result.restamped;
    // A restamped sample moved past its series' newest, which may lie beyond this batch: say "any time after".
    if (samples > 0) this.bus.publish(SUBJECTS.storageEventsApplied, { minTimeMs, maxTimeMs: result.restamped > 0 ? Number.MAX_SAFE_INTEGER : maxTimeMs, samples });
  }

  private async metricMetadata(body: { metric?: unknown; limit?: unknown; tenant?: unknown }): Promise<Record<string, MetricMetadataEntry[]>> {
    const metric = typeof body?.metric === 'string' && body.metric !== '' ? body.metric : undefined;
    const limit = typeof body?.limit === 'number' && Number.isInteger(body.limit) ? body.limit : undefined;
    const tenant = typeof body?.tenant === 'string' ? body.tenant : undefined;
    const names = await this.store.querier(0, Number.MAX_SAFE_INTEGER).labelValues(METRIC_NAME_LABEL);
    return this.metadata.list(names, metric, limit, tenant, 'none');
  }

  private checkRange(request: RangeRequest): void {
    if (request === null || typeof request !== 'object' || !Array.isArray(request.matchers) || typeof request.startMs !== 'number' || typeof request.endMs !== 'number') {
      throw new CraftError('CRAFT_BAD_REQUEST', 'storage requests need {matchers: [], startMs: number, endMs: number}');
    }
  }

  /** Runs a read on the current store; a swap waits for reads in flight before closing the old one. */
  private async read<T>(request: RangeRequest, work: (querier: ReturnType<SampleStore['querier']>, matchers: LabelMatcher[]) => Promise<T>): Promise<T> {
    this.checkRange(request);
    const store = this.store;
    this.readsInFlight += 1;
    try {
      return await work(store.querier(request.startMs, request.endMs), request.matchers);
    } finally {
      this.readsInFlight -= 1;
    }
  }

  private async select(request: SelectRequest): Promise<PartsReply<unknown>> {
    const { selectSeriesMax: seriesMax, selectSamplesMax: samplesMax } = this.context.config.storage;
    const limits = { seriesMax, samplesMax };
    const series = await this.read(request, (q, m) => q.select(m, { ...request.hints, limits }));
    // Stores that cannot tell before reading are held to the same bounds before anything is sent.
    const refused = selectLimitError(limits, series.length, series.reduce((sum, s) => sum + s.timestampsMs.length, 0));
    if (refused !== undefined) throw refused;
    return new PartsReply(chunkSeries(series).map((part) => encodeSeriesValues(part)));
  }

  private async rollup(request: RollupRequest): Promise<PartsReply<unknown>> {
    if (typeof request?.stepMs !== 'number') throw new CraftError('CRAFT_BAD_REQUEST', 'rollup needs {stepMs: number}');
    return new PartsReply(rollupParts(await this.read(request, (q, m) => q.rollup(m, request.stepMs))));
  }

  private labelValues(request: LabelValuesRequest): Promise<string[]> {
    if (typeof request?.name !== 'string') throw new CraftError('CRAFT_BAD_REQUEST', 'label values need {name: string}');
    return this.read(request, (q, m) => q.labelValues(request.name, m));
  }

  private async count(request: RangeRequest): Promise<{ series: number; samples: number }> {
    const series = await this.read(request, (q, m) => q.select(m));
    return { series: series.length, samples: series.reduce((sum, s) => sum + s.timestampsMs.length, 0) };
  }

  private deleteSeries(request: RangeRequest): Promise<{ deleted: number }> {
    this.checkRange(request);
    if (request.matchers.length === 0) throw new CraftError('CRAFT_BAD_REQUEST', 'delete needs at least one matcher');
    return this.withLock(async () => ({ deleted: await this.store.deleteSeries(request.matchers, request.startMs, request.endMs) }));
  }

  private info(): StorageInfo {
    const lag = this.lag.summary();
    return {
      member: this.member,
      plugin: this.choice.engine.id,
      kv: this.choice.kv.id,
      stats: this.store.stats(),
      positions: this.store.positions(),
      batchesApplied: this.batchesApplied,
      batchesSkipped: this.batchesSkipped,
      batchesUndecodable: this.batchesUndecodable,
      samplesApplied: this.samplesApplied,
      samplesRestamped: this.samplesRestamped,
      lag,
      lagMs: lag.currentMs,
    };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    invariant(request.slot === 'storage.engine' || request.slot === 'storage.kv', `storage actor asked to swap ${request.slot}`);
    const target: PluginChoiceResolved = { id: request.plugin, options: request.options };
    const nextChoice: StoreChoice = request.slot === 'storage.engine' ? { ...this.choice, engine: target } : { ...this.choice, kv: target };
    const from = request.slot === 'storage.engine' ? this.choice.engine.id : this.choice.kv.id;
    if (request.plugin === from) throw new CraftError('CRAFT_SWAP_FAILED', `${request.plugin} is already the active ${request.slot}`);
    const started = this.clock.now();
    return this.withLock(async () => {
      const old = this.store;
      // The target starts empty: leftovers of an earlier use of that combination are stale.
      let next = this.makeStore(nextChoice);
      await next.open();
      await next.close({ destroy: true });
      next = this.makeStore(nextChoice);
      await next.open();
      let copied = 0;
      let stats: StoreStats;
      try {
        for await (const chunk of old.scan()) {
          const appender = next.appender();
          for (const [labels, t, v] of chunk) appender.append(labels, t, v);
          await appender.commit({});
          copied += chunk.length;
        }
        await next.appender().commit(old.positions());
        stats = next.stats();
        const expected = old.stats().samples;
        if (stats.samples !== expected) throw new CraftError('CRAFT_SWAP_FAILED', `copy incomplete: ${stats.samples} of ${expected} samples`);
      } catch (error) {
        await next.close({ destroy: true }).catch(() => undefined);
        throw error instanceof CraftError ? error : new CraftError('CRAFT_SWAP_FAILED', (error as Error).message, { cause: error });
      }
      this.store = next;
      this.choice = nextChoice;
      while (this.readsInFlight > 0) await sleep(5);
      await old.close({ destroy: true });
      return {
        slot: request.slot,
        from,
        to: request.plugin,
        tookMs: this.clock.now() - started,
        detail: `${copied} samples and the queue positions handed over; consumption paused ${this.clock.now() - started} ms`,
      };
    });
  }
}
