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
import { SUBJECTS, groupEventSubject, handoverSubject } from '../core/subjects.js';
import { FETCH_MESSAGES_MAX, FETCH_WAIT_MS, NATS_PAYLOAD_BYTES_MAX } from '../core/defaults.js';
import { CLIENT_HEADER, encodeFetchError, encodeFetchFrame, partitionFor, type CommitRequest, type FetchRequest, type FetchedDelivery, type HeartbeatRequest, type JoinRequest, type LeaveRequest, type QueueInfo, type QueueRoute } from '../core/queue/protocol.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { GroupCoordinator, GroupDescription, GroupRefusal, GroupView, QueueLog } from '../core/slots/queue.js';
import { join } from 'node:path';

/** Appends in flight to the log at once; more wait in the mailbox. */
const APPEND_CONCURRENCY = 1_024;
/** Long-poll fetches served at once. */
const FETCH_CONCURRENCY = 16;
/** Trims are issued at most this often per partition. */
const TRIM_INTERVAL_MS = 1_000;
/** How often the group coordinator checks sessions (a dead member is found within its session timeout plus this). */
const GROUP_TICK_MS = 100;

const FENCE_REASONS = { UNKNOWN_MEMBER: 'unknown-member', ILLEGAL_GENERATION: 'stale-generation', NOT_OWNER: 'not-owner' } as const;

/** The error a fenced fetch, commit or heartbeat gets: members rejoin on it (core/queue/protocol.ts `isFenced`). */
function fenced(group: string, refusal: GroupRefusal, current: number): CraftError {
  const what = refusal === 'UNKNOWN_MEMBER' ? 'is not a member (expired, left, or the coordinator restarted)' : refusal === 'ILLEGAL_GENERATION' ? `has a stale generation (current ${current})` : 'does not own that partition now';
  return new CraftError('CRAFT_BAD_REQUEST', `group ${group}: the member ${what}; join again`, { details: { reason: FENCE_REASONS[refusal], current } });
}

interface EpochRecord {
  epoch: number;
  plugin: string;
  options: Record<string, unknown>;
  drained: boolean;
}

interface QueueState {
  epochs: EpochRecord[];
  groups: string[];
  /** The last generation of each group, so a restarted coordinator never hands out a stale member's generation again. */
  generations?: Record<string, number>;
}

type QueueEvent =
  | { type: 'epoch-opened'; epoch: number; plugin: string; options: Record<string, unknown>; atMs: number }
  | { type: 'epoch-drained'; epoch: number; atMs: number }
  | { type: 'group-created'; group: string; atMs: number }
  | { type: 'group-generation'; group: string; generation: number; atMs: number };

export function applyQueueEvent(state: QueueState, event: QueueEvent): QueueState {
  switch (event.type) {
    case 'epoch-opened':
      return { ...state, epochs: [...state.epochs, { epoch: event.epoch, plugin: event.plugin, options: event.options, drained: false }] };
    case 'epoch-drained':
      return { ...state, epochs: state.epochs.map((e) => (e.epoch === event.epoch ? { ...e, drained: true } : e)) };
    case 'group-created':
      return state.groups.includes(event.group) ? state : { ...state, groups: [...state.groups, event.group] };
    case 'group-generation':
      return { ...state, generations: { ...state.generations, [event.group]: Math.max(event.generation, state.generations?.[event.group] ?? 0) } };
  }
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
  /** Known groups (each has a reader per partition and epoch). */
  private readonly groups = new Set<string>();
  /** Slot `queue.groups`: who consumes which partition. */
  private coordinator!: GroupCoordinator;
  private coordinatorId = '';
  /** What each group looked like after the last change, to see what moved. */
  private readonly seen = new Map<string, GroupDescription>();
  /** `group:partition` whose readers are being rewound for a new owner: nobody takes from them meanwhile. */
  private readonly rewinding = new Set<string>();
  private tickTimer: NodeJS.Timeout | undefined;
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
    this.handle(SUBJECTS.queueHeartbeat, (body: HeartbeatRequest) => this.heartbeat(body), { concurrency: 64 });
    this.handle(SUBJECTS.queueLeave, (body: LeaveRequest) => this.leave(body));
    this.handle(SUBJECTS.queueFetch, (body: FetchRequest) => this.fetch(body), { concurrency: FETCH_CONCURRENCY });
    this.handle(SUBJECTS.queueCommit, (body: CommitRequest) => this.commit(body), { concurrency: 64 });
    this.handle(SUBJECTS.queueInfo, () => this.info(), { concurrency: 4 });
    this.handle(SUBJECTS.queueRoute, () => this.route(), { concurrency: 16 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.current === undefined ? undefined : { 'queue.log': `${this.current.record.plugin} (epoch ${this.current.record.epoch})`, 'queue.groups': this.coordinatorId };
  }

  protected override async onStart(): Promise<void> {
    this.journal = await Journal.open<QueueState, QueueEvent>(this.bus, {
      name: 'queue',
      replicas: this.context.config.nats.replicas,
      initial: () => ({ epochs: [], groups: [] }),
      apply: applyQueueEvent,
    });
    for (const group of this.journal.state.groups) this.groups.add(group);
    await this.openCoordinator();
    let ticking = false;
    this.tickTimer = setInterval(() => {
      if (this.coordinator === undefined || ticking) return;
      ticking = true;
      void (async () => {
        await this.coordinator.tick(this.clock.now());
        for (const group of this.groups) await this.afterChange(group);
      })()
        .catch((error: unknown) => this.crash(error))
        .finally(() => (ticking = false));
    }, GROUP_TICK_MS);
    this.tickTimer.unref();
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
    clearInterval(this.tickTimer);
    await this.coordinator?.close?.();
    for (const epoch of this.open.values()) await epoch.log.close();
  }

  protected override async onCrash(): Promise<void> {
    clearInterval(this.tickTimer);
    await this.coordinator?.close?.().catch(() => undefined);
    for (const epoch of this.open.values()) await epoch.log.close().catch(() => undefined);
  }

  /** Opens the `queue.groups` plugin chosen now, at every group's journaled generation. */
  private async openCoordinator(choice?: { id: string; options: Record<string, unknown> }): Promise<void> {
    const chosen = choice ?? (await currentChoice(this.context, 'queue.groups'));
    const coordinator = this.context.registry.instantiate('queue.groups', chosen.id, { partitions: this.partitions, log: this.log.child('groups'), bus: this.bus, replicas: this.context.config.nats.replicas }, chosen.options);
    await coordinator.open?.();
    for (const group of this.groups) {
      const generation = Math.max(this.journal.state.generations?.[group] ?? 0, this.seen.get(group)?.generation ?? 0);
      coordinator.restore(group, generation);
    }
    const previous = this.coordinator;
    this.coordinator = coordinator;
    this.coordinatorId = chosen.id;
    this.seen.clear();
    // A coordinator that keeps its groups outside the process (phase 3) brings them back with
    // their members: nothing moved, nobody is fenced.
    for (const group of coordinator.groups()) {
      this.groups.add(group);
      const kept = coordinator.describe(group);
      if (kept !== undefined && kept.members.length > 0) this.seen.set(group, kept);
    }
    await previous?.close?.();
  }

  /**
   * After anything that may change a group: journal a new generation and tell the members
   * (`craft.queue.groups.<group>`: they heartbeat at once), and rewind the readers of every
   * partition that got a new owner, so it gets what the previous owner had not committed.
   */
  private async afterChange(group: string, rejoined?: string): Promise<void> {
    const now = this.coordinator.describe(group);
    if (now === undefined) return;
    const before = this.seen.get(group);
    this.seen.set(group, now);
    const moved: number[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const owner = now.owners[p];
      if (owner !== undefined && (owner !== before?.owners[p] || owner === rejoined)) moved.push(p);
    }
    for (const p of moved) this.rewinding.add(`${group}:${p}`);
    try {
      if (before?.generation !== now.generation) {
        await this.journal.append({ type: 'group-generation', group, generation: now.generation, atMs: this.clock.now() });
        this.bus.publish(groupEventSubject(group), { group, generation: now.generation, members: now.members.length });
      }
      for (const p of moved) {
        for (const epoch of this.open.values()) await (await epoch.log.reader(group, p)).rewind();
      }
    } finally {
      for (const p of moved) this.rewinding.delete(`${group}:${p}`);
    }
  }

  private async openLog(record: EpochRecord): Promise<OpenEpoch> {
    const log = this.context.registry.instantiate('queue.log', record.plugin, {
      partitions: this.partitions,
      epoch: record.epoch,
      dataDir: join(this.context.dataDir, 'queue', `e${record.epoch}`),
      bus: this.bus,
      log: this.log.child(`e${record.epoch}`),
      replicas: this.context.config.nats.replicas,
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

  private async join(request: JoinRequest): Promise<GroupView> {
    if (typeof request?.group !== 'string' || request.group === '' || typeof request.member !== 'string' || request.member === '') {
      throw new CraftError('CRAFT_BAD_REQUEST', 'join needs {group, member}');
    }
    if (!this.groups.has(request.group)) {
      await this.journal.append({ type: 'group-created', group: request.group, atMs: this.clock.now() });
      this.groups.add(request.group);
    }
    const known = this.coordinator.describe(request.group)?.members.includes(request.member) === true;
    const view = await this.coordinator.join(request.group, request.member, this.clock.now());
    // A member joining again under its id lost what it had in flight: its partitions are delivered again.
    await this.afterChange(request.group, known ? request.member : undefined);
    return view;
  }

  private async heartbeat(request: HeartbeatRequest): Promise<GroupView> {
    if (typeof request?.group !== 'string' || typeof request.member !== 'string' || (request.holding !== undefined && !Array.isArray(request.holding))) {
      throw new CraftError('CRAFT_BAD_REQUEST', 'heartbeat needs {group, member, holding?: number[]}');
    }
    const view = await this.coordinator.heartbeat(request.group, request.member, request.holding, this.clock.now());
    await this.afterChange(request.group);
    if (typeof view === 'string') throw fenced(request.group, view, this.coordinator.describe(request.group)?.generation ?? 0);
    return view;
  }

  private async leave(request: LeaveRequest): Promise<{ left: boolean }> {
    if (typeof request?.group !== 'string' || typeof request.member !== 'string') throw new CraftError('CRAFT_BAD_REQUEST', 'leave needs {group, member}');
    await this.coordinator.leave(request.group, request.member, this.clock.now());
    await this.afterChange(request.group);
    return { left: true };
  }

  /** Counts fetches, to rotate the partition a fetch starts at. */
  private fetchRound = 0;

  /**
   * The partitions a member's fetch may take from now (a fetch also counts as a heartbeat that
   * holds what the member owns), or the refusal that fences it.
   */
  private async consumable(request: FetchRequest): Promise<Set<number> | CraftError> {
    if (!this.groups.has(request.group)) return fenced(request.group, 'UNKNOWN_MEMBER', 0);
    await this.coordinator.heartbeat(request.group, request.member, undefined, this.clock.now());
    await this.afterChange(request.group);
    const partitions = this.coordinator.consumable(request.group, request.member, request.generation);
    if (typeof partitions === 'string') return fenced(request.group, partitions, this.coordinator.describe(request.group)?.generation ?? 0);
    return new Set(partitions.filter((p) => !this.rewinding.has(`${request.group}:${p}`)));
  }

  private async fetch(request: FetchRequest): Promise<RawReply> {
    let partitions = await this.consumable(request);
    if (partitions instanceof CraftError) return new RawReply(encodeFetchError(toWireError(partitions)));
    const maxMessages = Math.min(request.maxMessages ?? FETCH_MESSAGES_MAX, FETCH_MESSAGES_MAX * 4);
    const maxBytes = Math.min(request.maxBytes ?? NATS_PAYLOAD_BYTES_MAX, NATS_PAYLOAD_BYTES_MAX);
    const waitMs = Math.min(request.waitMs ?? FETCH_WAIT_MS, 30_000);
    let deliveries = await this.takeAll(request.group, maxMessages, maxBytes, partitions);
    if (deliveries.length === 0 && waitMs > 0) {
      const readers = (await this.readersOf(request.group)).filter((r) => (partitions as Set<number>).has(r.partition));
      if (readers.length > 0) await Promise.race(readers.map((r) => r.reader.waitForData(waitMs)));
      else await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, GROUP_TICK_MS)));
      // The group may have changed while this fetch waited: a fenced fetch must take nothing,
      // or it would carry away deliveries the new owner never sees.
      partitions = await this.consumable(request);
      if (partitions instanceof CraftError) return new RawReply(encodeFetchError(toWireError(partitions)));
      deliveries = await this.takeAll(request.group, maxMessages, maxBytes, partitions);
    }
    return new RawReply(encodeFetchFrame(request.generation, deliveries));
  }

  private async readersOf(group: string): Promise<{ epoch: number; partition: number; reader: Awaited<ReturnType<QueueLog['reader']>> }[]> {
    const out = [];
    for (const epoch of [...this.open.values()].sort((a, b) => a.record.epoch - b.record.epoch)) {
      for (let p = 0; p < this.partitions; p++) out.push({ epoch: epoch.record.epoch, partition: p, reader: await epoch.log.reader(group, p) });
    }
    return out;
  }

  /**
   * Oldest epoch first, partitions in turn, up to the limits. Each fetch starts at the next
   * partition, so that one partition whose messages fill the byte budget cannot starve the
   * others (a reader's `take` never exceeds the budget it is given).
   */
  private async takeAll(group: string, maxMessages: number, maxBytes: number, partitions: Set<number>): Promise<FetchedDelivery[]> {
    const out: FetchedDelivery[] = [];
    let bytes = 0;
    const readers = await this.readersOf(group);
    const start = this.fetchRound++ % this.partitions;
    const ordered = readers.map((r, i) => ({ ...r, order: r.epoch * this.partitions + ((i % this.partitions) - start + this.partitions) % this.partitions })).sort((a, b) => a.order - b.order);
    for (const { epoch, partition, reader } of ordered) {
      if (out.length >= maxMessages || bytes >= maxBytes) break;
      if (!partitions.has(partition)) continue;
      for (const d of reader.take(maxMessages - out.length, maxBytes - bytes)) {
        out.push({ epoch, partition: d.partition, offset: d.offset, payload: d.payload });
        bytes += d.payload.length;
      }
    }
    return out;
  }

  private async commit(request: CommitRequest): Promise<{ committed: number }> {
    if (!this.groups.has(request.group)) throw fenced(request.group, 'UNKNOWN_MEMBER', 0);
    // Fenced whole: a commit with one partition the member no longer owns is refused, nothing of it applied.
    for (const { partition } of request.commits) {
      const verdict = this.coordinator.fence(request.group, request.member, request.generation, partition);
      if (verdict !== 'OK') throw fenced(request.group, verdict, this.coordinator.describe(request.group)?.generation ?? 0);
    }
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
      groupCoordinator: this.coordinatorId,
      groupStates: [...this.groups].map((g) => this.coordinator.describe(g)).filter((d): d is GroupDescription => d !== undefined),
      trimFailures: this.trimFailures,
    };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    if (request.slot === 'queue.groups') {
      const started = this.clock.now();
      const from = this.coordinatorId;
      await this.openCoordinator({ id: request.plugin, options: request.options });
      for (const group of this.groups) this.bus.publish(groupEventSubject(group), { group, coordinator: request.plugin });
      const kept = [...this.groups].filter((g) => (this.coordinator.describe(g)?.members.length ?? 0) > 0);
      const detail = kept.length > 0
        ? `the new coordinator took over ${kept.join(', ')} from its lease bucket with their members: nobody is fenced`
        : 'members are fenced once (unknown to the new coordinator) and join again; generations continue';
      return { slot: 'queue.groups', from, to: request.plugin, tookMs: this.clock.now() - started, detail };
    }
    invariant(request.slot === 'queue.log', `queue actor asked to swap ${request.slot}`);
    const started = this.clock.now();
    const from = this.current.record.plugin;
    const previous = this.current;
    const next = await this.openEpoch(request.plugin, request.options);
    // Every known group's readers of the new epoch open now, together, not one by one inside the
    // first fetches (a JetStream reader is a durable consumer to create: under load the first
    // fetches of every group waited for all of them, and rebalances with them). A reader that
    // fails to open here opens on its first fetch.
    await Promise.all([...this.groups].flatMap((group) => Array.from({ length: this.partitions }, (_, p) => next.log.reader(group, p).catch(() => undefined))));
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
