/**
 * Craft #2 phase 3: consumer groups whose state lives in NATS, not in the coordinator's memory.
 * The decisions are phase 2's (the same xstate coordinator, shared/group-coordinator.ts, and the
 * same assignors); what changes is where membership and assignment are kept:
 *
 * - **Leases**: each member is a key `<group>.lease.<member>` in the JetStream KV bucket
 *   `craft-queue-groups` (R3 with `nats.replicas: 3`), renewed by its heartbeats (at most every
 *   half heartbeat interval: fetches count as heartbeats and come hundreds a second). Renewals
 *   carry the revision the coordinator last wrote (`update(key, value, revision)`): if anyone
 *   else wrote the lease meanwhile — another coordinator took the member over — the renewal is
 *   refused and the coordinator adopts what the bucket says. NATS 2.9 has no per-key TTL: the
 *   coordinator expires a lease whose last renewal is older than the session, deleting it with
 *   the revision it read, so a lease renewed meanwhile elsewhere is not deleted.
 * - **Assignment**: `<group>.state` holds the generation, owners and target, written with the
 *   revision it replaces. The generation is the fencing token: two coordinators cannot both move
 *   a group on from the same state — the second write is refused, that coordinator adopts the
 *   bucket and decides again from there.
 * - **Watches**: the coordinator watches the bucket; a lease or state written by anyone else
 *   (a second coordinator, an operator deleting a lease) makes it adopt that group — a rebalance
 *   when membership changed.
 *
 * What a learner measures against phase 2: a restarted queue actor, or a swap between two
 * instances of this plugin, finds every group with its members, generations and owners — nobody
 * is fenced, nothing is rejoined or delivered again — where phase 2 forgets them all. The price
 * is a KV write (a replicated one in a cluster) on every membership change and lease renewal.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createActor, type Actor as XActor } from 'xstate';
import { Kvm, KvWatchInclude, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { definePlugin } from '../../core/plugins/define.js';
import { unavailable } from './shared/unavailable.js';
import { CraftError } from '../../core/errors.js';
import { BUCKETS } from '../../core/subjects.js';
import type { GroupCoordinator, GroupCoordinatorContext, GroupDescription, GroupRefusal, GroupView } from '../../core/slots/queue.js';
import { consumableBy, describeGroup, fenceCommit, groupMachine, groupOptionsShape, memberView, ownedBy, type GroupState } from './shared/group-coordinator.js';

const optionsSchema = z
  .object({
    ...groupOptionsShape,
    /** The bucket (one per platform; tests and benchmarks may use their own). A lease is written at most every half heartbeat interval. */
    bucket: z.string().regex(/^[A-Za-z0-9_-]+$/).default(BUCKETS.groups),
  })
  .strict();
type Options = z.output<typeof optionsSchema>;

type GroupActor = XActor<typeof groupMachine>;

/** A lease as stored: who, which incarnation (a new one per join), when it was last renewed. */
interface Lease {
  group: string;
  member: string;
  incarnation: string;
  renewedAtMs: number;
}

/** An assignment as stored. */
interface StoredState {
  group: string;
  generation: number;
  /** Member → the generation it last heard. */
  members: Record<string, number>;
  owners: Record<number, string>;
  target: Record<number, string>;
}

interface Group {
  name: string;
  actor: GroupActor;
  /** Revision of `<group>.state` as this coordinator last wrote or read it (0: none). */
  stateRevision: number;
  /** The state as last stored, to write only on change. */
  storedJson: string;
  leases: Map<string, { incarnation: string; revision: number; renewedAtMs: number }>;
  /** Operations on one group run one at a time. */
  lock: Promise<unknown>;
}

/** A KV key token for any group or member name: `[A-Za-z0-9_-]` kept, every other UTF-8 byte as `=XX`. */
export function keyToken(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The other writer won: the revision a write expected is not the key's any more. */
const isConflict = (error: unknown): boolean =>
  (error as { code?: unknown })?.code === 10071 || /wrong last sequence|key exists/i.test(error instanceof Error ? error.message : String(error));

/** Raised inside an operation when the bucket changed under it: the group is adopted and the operation runs again. */
class Conflict extends Error {
  constructor(readonly key: string) {
    super(`${key} changed under this coordinator`);
  }
}

const ATTEMPTS_MAX = 4;

class KvLeaseGroups implements GroupCoordinator {
  private kv!: KV;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  /** The bucket as this coordinator knows it: key → its newest entry (`value` undefined: deleted). */
  private readonly mirror = new Map<string, { revision: number; value: Lease | StoredState | undefined }>();
  /** The newest revision the watch delivered: the mirror holds everything written up to it. */
  private watchRevision = 0;
  private initialized = false;
  private readonly groupsByName = new Map<string, Group>();
  /** Generations restored from the queue's journal: a group never goes below them. */
  private readonly restored = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly context: GroupCoordinatorContext,
    private readonly options: Options,
  ) {}

  private leaseKey(group: string, member: string): string {
    return `${keyToken(group)}.lease.${keyToken(member)}`;
  }

  private stateKey(group: string): string {
    return `${keyToken(group)}.state`;
  }

  async open(): Promise<void> {
    this.kv = await new Kvm(this.context.bus.nc).create(this.options.bucket, { history: 1, replicas: this.context.replicas ?? 1 });
    // One watch feeds a mirror of the bucket: its last values first, then every change. The
    // coordinator reads groups from the mirror (the client's `keys()` listing stalled for 30 s
    // at times under concurrent writes).
    const lastRevision = (await this.kv.status()).streamInfo.state.last_seq;
    this.watcher = await this.kv.watch({ key: '>', include: KvWatchInclude.LastValue });
    void this.watch(this.watcher);
    const deadline = Date.now() + 10_000;
    while (this.watchRevision < lastRevision && !this.closed) {
      if (Date.now() > deadline) throw new CraftError('CRAFT_TIMEOUT', `bucket ${this.options.bucket}: its values did not arrive within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const entry of this.mirror.values()) if (entry.value !== undefined) this.group(entry.value.group);
    for (const g of this.groupsByName.values()) this.adopt(g);
    this.initialized = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.stop();
    for (const g of this.groupsByName.values()) {
      await g.lock.catch(() => undefined);
      g.actor.stop();
    }
  }

  /** Keeps the newest entry of each key. */
  private remember(key: string, revision: number, value: Lease | StoredState | undefined): void {
    const known = this.mirror.get(key);
    if (known !== undefined && known.revision >= revision) return;
    this.mirror.set(key, { revision, value });
  }

  /**
   * A write was refused because `key` moved on: waits until the watch has delivered its newest
   * revision (and so every write before it — leases are written before the state that counts
   * them), so that adopting the mirror sees what beat us.
   */
  private async catchUp(key: string): Promise<void> {
    const current = (await this.kv.get(key))?.revision ?? 0;
    const deadline = Date.now() + 5_000;
    while (this.watchRevision < current && Date.now() < deadline && !this.closed) await new Promise((resolve) => setTimeout(resolve, 2));
  }

  /** Mirrors the bucket; anything written by someone else makes this coordinator adopt that group. */
  private async watch(watcher: QueuedIterator<KvWatchEntry>): Promise<void> {
    try {
      for await (const entry of watcher) {
        if (this.closed) break;
        const ours = (this.mirror.get(entry.key)?.revision ?? 0) >= entry.revision;
        const value = entry.operation === 'PUT' ? (entry.json() as Lease | StoredState) : undefined;
        this.remember(entry.key, entry.revision, value);
        this.watchRevision = Math.max(this.watchRevision, entry.revision);
        if (ours || !this.initialized) continue;
        const name = value?.group ?? [...this.groupsByName.keys()].find((n) => entry.key.startsWith(`${keyToken(n)}.`));
        if (name === undefined) continue;
        const group = this.group(name);
        void this.locked(group, async () => this.adopt(group));
      }
    } catch (error) {
      if (!this.closed) this.context.log.warn('lease bucket watch ended', { error: String(error) });
    }
  }

  private group(name: string): Group {
    let g = this.groupsByName.get(name);
    if (g === undefined) {
      const input = { assignor: this.options.assignor, partitions: this.context.partitions, sessionTimeoutMs: this.options.sessionTimeoutMs, generation: this.restored.get(name) ?? 0 };
      const actor = createActor(groupMachine, { input });
      actor.start();
      g = { name, actor, stateRevision: 0, storedJson: '', leases: new Map(), lock: Promise.resolve() };
      this.groupsByName.set(name, g);
    }
    return g;
  }

  private locked<T>(g: Group, operation: () => Promise<T>): Promise<T> {
    const run = g.lock.then(operation, operation);
    g.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs an operation on a group and stores what it changed; when the bucket changed under it
   * (another writer), adopts the bucket's state and runs it again from there.
   */
  private async operate<T>(name: string, operation: (g: Group) => Promise<T> | T): Promise<T> {
    const g = this.group(name);
    return this.locked(g, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await operation(g);
          await this.store(g);
          return result;
        } catch (error) {
          if (!(error instanceof Conflict) || attempt >= ATTEMPTS_MAX) throw unavailable(`consumer group ${name} in ${this.options.bucket}`, error);
          await this.catchUp(error.key);
          this.adopt(g);
        }
      }
    });
  }

  /** Makes the group's leases and state in the bucket (as mirrored) the machine's. */
  private adopt(g: Group): void {
    const prefix = `${keyToken(g.name)}.lease.`;
    const leases = new Map<string, { incarnation: string; revision: number; renewedAtMs: number }>();
    for (const [key, entry] of this.mirror) {
      if (!key.startsWith(prefix) || entry.value === undefined) continue;
      const lease = entry.value as Lease;
      leases.set(lease.member, { incarnation: lease.incarnation, revision: entry.revision, renewedAtMs: lease.renewedAtMs });
    }
    const entry = this.mirror.get(this.stateKey(g.name));
    const stored = entry?.value as StoredState | undefined;
    g.stateRevision = entry?.revision ?? 0;
    g.storedJson = stored === undefined ? '' : JSON.stringify(stored);
    g.leases = leases;
    // The stored generation is the one members were told (an answer goes out only once its state
    // is stored); what this machine computed and did not store is dropped.
    const generation = Math.max(stored?.generation ?? 0, this.restored.get(g.name) ?? 0);
    // The state as stored; then joins for leases the state has not seen yet and leaves for
    // members whose lease is gone — the machine rebalances for them. (A member whose lease is
    // gone stays in the restored state until its LEAVE: dropping it there would leave its
    // partitions with no target, and the LEAVE of a member the machine does not know changes
    // nothing — found by the two-coordinator property.)
    const members: GroupState['members'] = {};
    for (const [m, heard] of Object.entries(stored?.members ?? {})) members[m] = { lastHeartbeatMs: leases.get(m)?.renewedAtMs ?? 0, generation: heard };
    const owners: Record<number, string> = {};
    for (const [p, m] of Object.entries(stored?.owners ?? {})) owners[Number(p)] = m;
    const target: Record<number, string> = {};
    for (const [p, m] of Object.entries(stored?.target ?? {})) target[Number(p)] = m;
    g.actor.send({ type: 'RESTORE', state: { generation, members, owners, target } });
    for (const [m, lease] of leases) if (members[m] === undefined) g.actor.send({ type: 'JOIN', member: m, atMs: lease.renewedAtMs });
    for (const m of Object.keys(members)) if (!leases.has(m)) g.actor.send({ type: 'LEAVE', member: m, atMs: 0 });
  }

  /** Writes the group's state when it changed, with the revision it replaces. */
  private async store(g: Group): Promise<void> {
    const { generation, members, owners, target } = g.actor.getSnapshot().context;
    const state: StoredState = { group: g.name, generation, members: Object.fromEntries(Object.entries(members).map(([m, s]) => [m, s.generation])), owners, target };
    const json = JSON.stringify(state);
    if (json === g.storedJson) return;
    try {
      g.stateRevision = g.stateRevision === 0 ? await this.kv.create(this.stateKey(g.name), json) : await this.kv.update(this.stateKey(g.name), json, g.stateRevision);
      g.storedJson = json;
      this.remember(this.stateKey(g.name), g.stateRevision, state);
    } catch (error) {
      if (isConflict(error)) throw new Conflict(this.stateKey(g.name));
      throw error;
    }
  }

  /** Writes a member's lease: a join replaces whatever was there; a renewal expects the revision it last wrote. */
  private async writeLease(g: Group, member: string, nowMs: number, how: 'join' | 'renew'): Promise<void> {
    const known = g.leases.get(member);
    const incarnation = how === 'join' || known === undefined ? randomUUID() : known.incarnation;
    const lease: Lease = { group: g.name, member, incarnation, renewedAtMs: nowMs };
    const key = this.leaseKey(g.name, member);
    let revision: number;
    try {
      revision = how === 'join' ? await this.kv.put(key, JSON.stringify(lease)) : await this.kv.update(key, JSON.stringify(lease), known?.revision ?? 0);
    } catch (error) {
      if (isConflict(error)) throw new Conflict(key);
      throw error;
    }
    g.leases.set(member, { incarnation, revision, renewedAtMs: nowMs });
    this.remember(key, revision, lease);
  }

  /** Deletes a lease if it is still at `revision` (otherwise someone renewed it: a conflict). */
  private async deleteLease(g: Group, member: string, revision: number): Promise<void> {
    const key = this.leaseKey(g.name, member);
    try {
      await this.kv.delete(key, { previousSeq: revision });
    } catch (error) {
      if (isConflict(error)) throw new Conflict(key);
      throw error;
    }
    g.leases.delete(member);
  }

  private view(g: Group, member: string): GroupView | GroupRefusal {
    return memberView(g.actor.getSnapshot().context, member, this.options);
  }

  restore(group: string, generation: number): void {
    this.restored.set(group, Math.max(generation, this.restored.get(group) ?? 0));
    const g = this.groupsByName.get(group);
    if (g !== undefined && g.actor.getSnapshot().context.generation < generation) {
      const { members, owners, target } = g.actor.getSnapshot().context;
      g.actor.send({ type: 'RESTORE', state: { generation, members, owners, target } });
    }
  }

  join(group: string, member: string, nowMs: number): Promise<GroupView> {
    return this.operate(group, async (g) => {
      await this.writeLease(g, member, nowMs, 'join');
      // A known member joining again is a new incarnation: leave and join (static membership, as phase 2).
      if (g.actor.getSnapshot().context.members[member] !== undefined) g.actor.send({ type: 'LEAVE', member, atMs: nowMs });
      g.actor.send({ type: 'JOIN', member, atMs: nowMs });
      return this.view(g, member) as GroupView;
    });
  }

  heartbeat(group: string, member: string, holding: number[] | undefined, nowMs: number): Promise<GroupView | GroupRefusal> {
    return this.operate(group, async (g) => {
      const context = g.actor.getSnapshot().context;
      const lease = g.leases.get(member);
      if (context.members[member] === undefined || lease === undefined) return 'UNKNOWN_MEMBER' as const;
      const incarnation = lease.incarnation;
      if (nowMs - lease.renewedAtMs >= this.options.heartbeatIntervalMs / 2) {
        try {
          await this.writeLease(g, member, nowMs, 'renew');
        } catch (error) {
          if (!(error instanceof Conflict)) throw error;
          // Someone else wrote this member's lease. A new incarnation (the member joined again
          // through another coordinator) fences this one; our own is renewed on the bucket's revision.
          await this.catchUp(this.leaseKey(g.name, member));
          this.adopt(g);
          if (g.leases.get(member)?.incarnation !== incarnation || g.actor.getSnapshot().context.members[member] === undefined) return 'UNKNOWN_MEMBER' as const;
          await this.writeLease(g, member, nowMs, 'renew');
        }
      }
      g.actor.send({ type: 'HEARTBEAT', member, atMs: nowMs, holding: holding ?? ownedBy(g.actor.getSnapshot().context, member) });
      return this.view(g, member);
    });
  }

  leave(group: string, member: string, nowMs: number): Promise<void> {
    return this.operate(group, async (g) => {
      const lease = g.leases.get(member);
      g.actor.send({ type: 'LEAVE', member, atMs: nowMs });
      if (lease !== undefined) {
        await this.deleteLease(g, member, lease.revision);
      }
    });
  }

  /** Expires members whose lease ran out; the bucket is told, with the revision that expired. */
  async tick(nowMs: number): Promise<void> {
    for (const g of this.groupsByName.values()) {
      const before = Object.keys(g.actor.getSnapshot().context.members);
      await this.operate(g.name, async () => {
        g.actor.send({ type: 'TICK', atMs: nowMs });
        const after = g.actor.getSnapshot().context.members;
        for (const m of before) {
          const lease = g.leases.get(m);
          if (after[m] !== undefined || lease === undefined) continue;
          // Renewed elsewhere meanwhile (a conflict): not expired after all — the group is adopted.
          await this.deleteLease(g, m, lease.revision);
        }
      }).catch((error: unknown) => this.context.log.warn('expiring leases failed; the next tick tries again', { group: g.name, error: String(error) }));
    }
  }

  fence(group: string, member: string, generation: number, partition: number): GroupRefusal | 'OK' {
    const g = this.groupsByName.get(group);
    if (g === undefined) return 'UNKNOWN_MEMBER';
    return fenceCommit(g.actor.getSnapshot().context, member, generation, partition);
  }

  consumable(group: string, member: string, generation: number): number[] | GroupRefusal {
    const g = this.groupsByName.get(group);
    return g === undefined ? 'UNKNOWN_MEMBER' : consumableBy(g.actor.getSnapshot().context, member, generation);
  }

  describe(group: string): GroupDescription | undefined {
    const g = this.groupsByName.get(group);
    return g === undefined ? undefined : describeGroup(group, g.actor.getSnapshot());
  }

  groups(): string[] {
    return [...this.groupsByName.keys()];
  }
}

export default definePlugin({
  id: 'queue.kv-leases',
  craft: 2,
  phase: 3,
  slot: 'queue.groups',
  version: '1.0.0',
  summary: 'Consumer groups kept in NATS: members as leases in a KV bucket with revision checks, generation as fencing token, watches adopt outside changes',
  options: optionsSchema,
  create: (context, options) => new KvLeaseGroups(context, options),
});
