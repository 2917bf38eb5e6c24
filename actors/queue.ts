/**
 * The queue actor: hosts the `queue.log` slot and serves the queue protocol
 * (core/queue/protocol.ts). It is event-sourced: its journal records the epochs (one per
 * log plugin it has run), which are drained, and which consumer groups exist — so after a
 * restart it reopens every log that still holds undelivered batches.
 *
 * A swap opens a new epoch: appends go to the new log at once; groups read the older
 * epochs first; an old epoch is closed and deleted when every group has committed it all.
 */
import type { Msg } from '@nats-io/transport-node';
import { Actor } from '../core/actor/actor.js';
import { Journal } from '../core/journal/journal.js';
import { CraftError, invariant, toWireError } from '../core/errors.js';
import { RawReply } from '../core/nats/bus.js';
import { SUBJECTS, handoverSubject } from '../core/subjects.js';
import { FETCH_MESSAGES_MAX, FETCH_WAIT_MS, NATS_PAYLOAD_BYTES_MAX } from '../core/defaults.js';
import { CLIENT_HEADER, encodeFetchError, encodeFetchFrame, partitionFor, type CommitRequest, type FetchRequest, type FetchedDelivery, type JoinRequest, type QueueInfo, type QueueRoute } from '../core/queue/protocol.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { QueueLog } from '../core/slots/queue.js';
import { join } from 'node:path';

/** Appends in flight to the log at once; more wait in the mailbox. */
const APPEND_CONCURRENCY = 1_024;
/** Long-poll fetches served at once. */
const FETCH_CONCURRENCY = 16;
/** Trims are issued at most this often per partition. */
const TRIM_INTERVAL_MS = 1_000;

interface EpochRecord {
  epoch: number;
  plugin: string;
  options: Record<string, unknown>;
  drained: boolean;
}

interface QueueState {
  epochs: EpochRecord[];
  groups: string[];
}

type QueueEvent =
  | { type: 'epoch-opened'; epoch: number; plugin: string; options: Record<string, unknown>; atMs: number }
  | { type: 'epoch-drained'; epoch: number; atMs: number }
  | { type: 'group-created'; group: string; atMs: number };

export function applyQueueEvent(state: QueueState, event: QueueEvent): QueueState {
  switch (event.type) {
    case 'epoch-opened':
      return { ...state, epochs: [...state.epochs, { epoch: event.epoch, plugin: event.plugin, options: event.options, drained: false }] };
    case 'epoch-drained':
      return { ...state, epochs: state.epochs.map((e) => (e.epoch === event.epoch ? { ...e, drained: true } : e)) };
    case 'group-created':
      return state.groups.includes(event.group) ? state : { ...state, groups: [...state.groups, event.group] };
  }
}

interface GroupState {
  generation: number;
  member: string | undefined;
}

interface OpenEpoch {
  record: EpochRecord;
  log: QueueLog;
  appendsInFlight: number;
  /**
   * Set once the epoch is no longer current and has been sealed: only then are its last
   * offsets final (direct producers append without passing through this actor), so only
   * then may it be judged drained.
   */
  retired: boolean;
}

export class QueueActor extends Actor {
  private journal!: Journal<QueueState, QueueEvent>;
  private readonly open = new Map<number, OpenEpoch>();
  private current!: OpenEpoch;
  private readonly groups = new Map<string, GroupState>();
  private readonly lastTrimMs = new Map<string, number>();
  /** Partitions (`epoch:partition`) with a trim in flight. */
  private readonly trimming = new Set<string>();
  /** Trims that failed (and were retried later), for `craft.queue.info`. */
  private trimFailures = 0;
  private readonly partitions: number;

  constructor(private readonly context: PlatformContext) {
    super('queue', context);
    this.partitions = context.config.queue.partitions;
    this.handle(SUBJECTS.queueAppend, (data: Uint8Array, message) => this.append(data, message), { raw: true, concurrency: APPEND_CONCURRENCY });
    this.handle(SUBJECTS.queueJoin, (body: JoinRequest) => this.join(body));
    this.handle(SUBJECTS.queueFetch, (body: FetchRequest) => this.fetch(body), { concurrency: FETCH_CONCURRENCY });
    this.handle(SUBJECTS.queueCommit, (body: CommitRequest) => this.commit(body), { concurrency: 64 });
    this.handle(SUBJECTS.queueInfo, () => this.info(), { concurrency: 4 });
    this.handle(SUBJECTS.queueRoute, () => this.route(), { concurrency: 16 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.current === undefined ? undefined : { 'queue.log': `${this.current.record.plugin} (epoch ${this.current.record.epoch})` };
  }

  protected override async onStart(): Promise<void> {
    this.journal = await Journal.open<QueueState, QueueEvent>(this.bus, {
      name: 'queue',
      initial: () => ({ epochs: [], groups: [] }),
      apply: applyQueueEvent,
    });
    for (const group of this.journal.state.groups) this.groups.set(group, { generation: 0, member: undefined });
    const choice = await currentChoice(this.context, 'queue.log');
    for (const record of this.journal.state.epochs.filter((e) => !e.drained)) {
      this.open.set(record.epoch, await this.openLog(record));
    }
    const last = this.journal.state.epochs.at(-1);
    if (last === undefined || last.drained || last.plugin !== choice.id || JSON.stringify(last.options) !== JSON.stringify(choice.options)) {
      await this.openEpoch(choice.id, choice.options);
      this.bus.publish(SUBJECTS.queueEvents, { type: 'epoch', epoch: this.current.record.epoch });
    } else {
      this.current = this.open.get(last.epoch)!;
    }
    for (const open of this.open.values()) if (open !== this.current) await this.retire(open);
    this.log.info('queue ready', { plugin: this.current.record.plugin, epoch: this.current.record.epoch, draining: this.open.size - 1 });
  }

  protected override async onStop(): Promise<void> {
    for (const epoch of this.open.values()) await epoch.log.close();
  }

  protected override async onCrash(): Promise<void> {
    for (const epoch of this.open.values()) await epoch.log.close().catch(() => undefined);
  }

  private async openLog(record: EpochRecord): Promise<OpenEpoch> {
    const log = this.context.registry.instantiate('queue.log', record.plugin, {
      partitions: this.partitions,
      epoch: record.epoch,
      dataDir: join(this.context.dataDir, 'queue', `e${record.epoch}`),
      bus: this.bus,
      log: this.log.child(`e${record.epoch}`),
    }, record.options);
    await log.open();
    return { record, log, appendsInFlight: 0, retired: false };
  }

  private async openEpoch(plugin: string, options: Record<string, unknown>): Promise<OpenEpoch> {
    const epoch = (this.journal.state.epochs.at(-1)?.epoch ?? 0) + 1;
    const record: EpochRecord = { epoch, plugin, options, drained: false };
    const opened = await this.openLog(record);
    await this.journal.append({ type: 'epoch-opened', epoch, plugin, options, atMs: this.clock.now() });
    this.open.set(epoch, opened);
    this.current = opened;
    return opened;
  }

  private route(): QueueRoute {
    const direct = typeof this.current.log.directSubject === 'function';
    return { epoch: this.current.record.epoch, partitions: this.partitions, direct };
  }

  /** Makes an epoch that is no longer current refuse appends (direct producers then re-route). */
  private async retire(open: OpenEpoch): Promise<void> {
    if (open.log.seal !== undefined) await open.log.seal();
    open.retired = true;
  }

  private async append(data: Uint8Array, message: Msg): Promise<unknown> {
    const client = message.headers?.get(CLIENT_HEADER) || 'default';
    const partition = partitionFor(client, this.partitions);
    const target = this.current;
    target.appendsInFlight += 1;
    try {
      const offset = await target.log.append(partition, data);
      return { partition, offset, epoch: target.record.epoch };
    } finally {
      target.appendsInFlight -= 1;
    }
  }

  private async join(request: JoinRequest): Promise<{ generation: number }> {
    if (typeof request.group !== 'string' || request.group === '' || typeof request.member !== 'string') {
      throw new CraftError('CRAFT_BAD_REQUEST', 'join needs {group, member}');
    }
    let group = this.groups.get(request.group);
    if (group === undefined) {
      await this.journal.append({ type: 'group-created', group: request.group, atMs: this.clock.now() });
      group = { generation: 0, member: undefined };
      this.groups.set(request.group, group);
    }
    group.generation += 1;
    group.member = request.member;
    // Everything delivered to an earlier member and not committed is delivered again.
    for (const epoch of this.open.values()) {
      for (let p = 0; p < this.partitions; p++) await (await epoch.log.reader(request.group, p)).rewind();
    }
    return { generation: group.generation };
  }

  private checkGeneration(group: string, generation: number): void {
    const state = this.groups.get(group);
    if (state === undefined || state.generation !== generation) {
      throw new CraftError('CRAFT_BAD_REQUEST', `generation ${generation} of group ${group} is stale (current ${state?.generation ?? 'none'})`, {
        details: { reason: 'stale-generation', current: state?.generation ?? 0 },
      });
    }
  }

  /** Counts fetches, to rotate the partition a fetch starts at. */
  private fetchRound = 0;

  private async fetch(request: FetchRequest): Promise<RawReply> {
    try {
      this.checkGeneration(request.group, request.generation);
    } catch (error) {
      return new RawReply(encodeFetchError(toWireError(error)));
    }
    const maxMessages = Math.min(request.maxMessages ?? FETCH_MESSAGES_MAX, FETCH_MESSAGES_MAX * 4);
    const maxBytes = Math.min(request.maxBytes ?? NATS_PAYLOAD_BYTES_MAX, NATS_PAYLOAD_BYTES_MAX);
    const waitMs = Math.min(request.waitMs ?? FETCH_WAIT_MS, 30_000);
    let deliveries = await this.takeAll(request.group, maxMessages, maxBytes);
    if (deliveries.length === 0 && waitMs > 0) {
      const readers = await this.readersOf(request.group);
      await Promise.race(readers.map((r) => r.reader.waitForData(waitMs)));
      // A member may have joined while this fetch waited: a stale fetch must take nothing,
      // or it would carry away deliveries the new member never sees.
      try {
        this.checkGeneration(request.group, request.generation);
      } catch (error) {
        return new RawReply(encodeFetchError(toWireError(error)));
      }
      deliveries = await this.takeAll(request.group, maxMessages, maxBytes);
    }
    return new RawReply(encodeFetchFrame(request.generation, deliveries));
  }

  private async readersOf(group: string): Promise<{ epoch: number; reader: Awaited<ReturnType<QueueLog['reader']>> }[]> {
    const out = [];
    for (const epoch of [...this.open.values()].sort((a, b) => a.record.epoch - b.record.epoch)) {
      for (let p = 0; p < this.partitions; p++) out.push({ epoch: epoch.record.epoch, reader: await epoch.log.reader(group, p) });
    }
    return out;
  }

  /**
   * Oldest epoch first, partitions in turn, up to the limits. Each fetch starts at the next
   * partition, so that one partition whose messages fill the byte budget cannot starve the
   * others (a reader's `take` never exceeds the budget it is given).
   */
  private async takeAll(group: string, maxMessages: number, maxBytes: number): Promise<FetchedDelivery[]> {
    const out: FetchedDelivery[] = [];
    let bytes = 0;
    const readers = await this.readersOf(group);
    const start = this.fetchRound++ % this.partitions;
    const ordered = readers.map((r, i) => ({ ...r, order: r.epoch * this.partitions + ((i % this.partitions) - start + this.partitions) % this.partitions })).sort((a, b) => a.order - b.order);
    for (const { epoch, reader } of ordered) {
      if (out.length >= maxMessages || bytes >= maxBytes) break;
      for (const d of reader.take(maxMessages - out.length, maxBytes - bytes)) {
        out.push({ epoch, partition: d.partition, offset: d.offset, payload: d.payload });
        bytes += d.payload.length;
      }
    }
    return out;
  }

  private async commit(request: CommitRequest): Promise<{ committed: number }> {
    this.checkGeneration(request.group, request.generation);
    let committed = 0;
    for (const { epoch, partition, offset } of request.commits) {
      const open = this.open.get(epoch);
      if (open === undefined) continue; // epoch already drained: an old duplicate commit
      const reader = await open.log.reader(request.group, partition);
      await reader.commit(offset);
      committed += 1;
      this.maybeTrim(open, partition);
    }
    await this.checkDrained();
    return { committed };
  }

  /**
   * Trims a partition through the lowest offset every known group has committed: housekeeping,
   * off the commit's path. One trim per partition at a time; a trim that fails (JetStream purging
   * a long backlog can outlast a request timeout) is logged and tried again at the next
   * interval — it neither fails the commit that prompted it nor crashes the actor.
   */
  private maybeTrim(open: OpenEpoch, partition: number): void {
    const key = `${open.record.epoch}:${partition}`;
    const now = this.clock.now();
    if (this.trimming.has(key) || now - (this.lastTrimMs.get(key) ?? 0) < TRIM_INTERVAL_MS) return;
    this.lastTrimMs.set(key, now);
    this.trimming.add(key);
    void (async () => {
      let floor = Infinity;
      for (const group of this.groups.keys()) floor = Math.min(floor, (await open.log.reader(group, partition)).committed());
      if (Number.isFinite(floor) && floor > 0) await open.log.trim(partition, floor);
    })()
      .catch((error: unknown) => {
        this.trimFailures += 1;
        this.log.warn('trim failed; retrying at the next interval', { epoch: open.record.epoch, partition, error: error instanceof Error ? error.message : String(error) });
      })
      .finally(() => this.trimming.delete(key));
  }

  /** Closes and deletes older epochs that every group has committed through their end. */
  private async checkDrained(): Promise<void> {
    for (const open of [...this.open.values()]) {
      if (open === this.current || !open.retired || open.appendsInFlight > 0) continue;
      let done = true;
      for (let p = 0; p < this.partitions && done; p++) {
        const last = open.log.lastOffset(p);
        // With no consumer group yet, nobody has read this epoch: it drains only if empty.
        if (this.groups.size === 0 && last > 0) done = false;
        for (const group of this.groups.keys()) {
          if ((await open.log.reader(group, p)).committed() < last) {
            done = false;
            break;
          }
        }
      }
      if (!done) continue;
      await this.journal.append({ type: 'epoch-drained', epoch: open.record.epoch, atMs: this.clock.now() });
      this.open.delete(open.record.epoch);
      await open.log.close({ destroy: true });
      this.log.info('epoch drained and closed', { epoch: open.record.epoch, plugin: open.record.plugin });
    }
  }

  private async info(): Promise<QueueInfo> {
    const epochs = [];
    let depth = 0;
    let appended = 0;
    for (const open of [...this.open.values()].sort((a, b) => a.record.epoch - b.record.epoch)) {
      const info = await open.log.info();
      const epochDepth = info.depth.reduce((a, b) => a + b, 0);
      depth += epochDepth;
      appended += info.appended;
      epochs.push({ epoch: open.record.epoch, plugin: open.record.plugin, draining: open !== this.current, depth: epochDepth });
    }
    return {
      plugin: this.current.record.plugin,
      epoch: this.current.record.epoch,
      partitions: this.partitions,
      depth,
      appended,
      epochs,
      groups: [...this.groups.keys()],
      trimFailures: this.trimFailures,
    };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    invariant(request.slot === 'queue.log', `queue actor asked to swap ${request.slot}`);
    const started = this.clock.now();
    const from = this.current.record.plugin;
    const previous = this.current;
    const next = await this.openEpoch(request.plugin, request.options);
    this.bus.publish(SUBJECTS.queueEvents, { type: 'epoch', epoch: next.record.epoch });
    await this.retire(previous);
    await this.checkDrained();
    return {
      slot: 'queue.log',
      from,
      to: request.plugin,
      tookMs: this.clock.now() - started,
      detail: `appends now go to epoch ${next.record.epoch}; older epochs drain to their readers first`,
    };
  }
}
