/**
 * A consumer-group member over NATS: the client side of the queue actor's `queue.groups` slot,
 * running the member machine (member-machine.ts). It joins, heartbeats every
 * `heartbeatIntervalMs` the coordinator names — and at once when the queue announces a new
 * generation on `craft.queue.groups.<group>`, which is what makes a rebalance take
 * milliseconds rather than a heartbeat interval — polls its partitions, and commits.
 *
 * Revocation (eager and cooperative alike): a partition the coordinator takes away is no
 * longer served to this member; once what was fetched from it is committed, the member says
 * so (REVOKED) and its next heartbeat no longer holds it — only then does the coordinator grant
 * it to its new owner. Fenced (stale generation, not the owner, not a member): the member drops
 * everything and joins again; what it had not committed is delivered again (at least once).
 */
import { createActor } from 'xstate';
import type { Subscription } from '@nats-io/transport-node';
import type { Bus } from '../nats/bus.js';
import { groupEventSubject } from '../subjects.js';
import type { GroupDescription, GroupView } from '../slots/queue.js';
import { QueueClient, fenceReason, isFenced, type FetchedDelivery } from './protocol.js';
import { holding, memberMachine } from './member-machine.js';
import { CraftError } from '../errors.js';

export interface GroupMemberOptions {
  group: string;
  member: string;
  /** How long a fetch waits for the queue's answer (default: its long-poll wait + 5 s). */
  fetchTimeoutMs?: number;
}

/**
 * Whether a request may have been carried out without its answer reaching the member. Nobody
 * listening (the queue down), overloaded (refused before anything was taken) and a crashed queue
 * actor (it restarts with its readers at the committed offsets, so whatever it handed out comes
 * again) are not: the member polls again as it is.
 */
function unanswered(error: unknown): boolean {
  return !(error instanceof CraftError && ['CRAFT_NO_RESPONDERS', 'CRAFT_OVERLOADED', 'CRAFT_ACTOR_CRASHED'].includes(error.code));
}

export class GroupMember {
  private readonly queue: QueueClient;
  private readonly machine;
  /** Partition → deliveries fetched and not yet committed. */
  private readonly uncommitted = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  private heartbeating: Promise<void> | undefined;
  private heartbeatAgain = false;
  private halted = false;
  private joining: Promise<void> | undefined;
  /**
   * A fetch or commit went unanswered (timed out, the queue restarting): the queue may have
   * handed this member deliveries it never received, and commits are cumulative, so committing
   * anything later would skip them. The member joins again before its next poll — as the same
   * member, which makes the queue deliver its partitions again from their committed offsets.
   */
  private lost = false;
  private joined = 0;
  /** The interval the coordinator asked for. */
  private intervalMs = 1_000;

  constructor(
    private readonly bus: Bus,
    readonly options: GroupMemberOptions,
  ) {
    this.queue = new QueueClient(bus);
    this.machine = createActor(memberMachine, { input: { id: options.member } });
    this.machine.start();
  }

  get generation(): number {
    return this.machine.getSnapshot().context.generation;
  }

  /** Partitions this member consumes now. */
  get partitions(): number[] {
    return this.machine.getSnapshot().context.consuming;
  }

  /** How often this member joined (once, plus once per fencing or unanswered request). */
  get joins(): number {
    return this.joined;
  }

  /** Stopped (left, or stopped heartbeating as a crash would): it polls and commits no more. */
  get stopped(): boolean {
    return this.halted;
  }

  get state(): string {
    return String(this.machine.getSnapshot().value);
  }

  /** Joins the group and starts heartbeating. */
  async start(): Promise<void> {
    this.subscription ??= this.bus.listen(groupEventSubject(this.options.group), () => void this.heartbeat());
    await this.join();
  }

  /** Joins (again). A stopped member never does: a fetch or commit answered after its leave must not bring it back. */
  private join(): Promise<void> {
    if (this.halted) return Promise.resolve();
    this.joining ??= (async () => {
      this.machine.send({ type: 'JOIN' });
      const view = await this.queue.join({ group: this.options.group, member: this.options.member });
      this.joined += 1;
      this.uncommitted.clear();
      this.answer(view);
    })().finally(() => (this.joining = undefined));
    return this.joining;
  }

  private answer(view: GroupView): void {
    this.machine.send({ type: 'ANSWER', generation: view.generation, assigned: view.assigned, revoke: view.revoke });
    if (view.heartbeatIntervalMs !== this.intervalMs || this.timer === undefined) {
      this.intervalMs = view.heartbeatIntervalMs;
      clearInterval(this.timer);
      if (!this.halted) this.timer = setInterval(() => void this.heartbeat(), this.intervalMs);
    }
    this.releaseIfDone();
  }

  /** Partitions being given up whose fetched deliveries are all committed are released. */
  private releaseIfDone(): void {
    const context = this.machine.getSnapshot().context;
    if (this.state === 'revoking' && context.revoking.every((p) => (this.uncommitted.get(p) ?? 0) === 0)) {
      this.machine.send({ type: 'REVOKED' });
      void this.heartbeat();
    }
  }

  /**
   * The group moved on. Not a member any more (expired, or the coordinator restarted): drop
   * everything and join again. A stale generation or a partition no longer owned: a heartbeat
   * tells the member its generation and partitions — it stays a member, and what it keeps
   * consuming is not interrupted.
   */
  private fenced(error: unknown): Promise<void> {
    if (this.halted) return Promise.resolve();
    if (fenceReason(error) === 'unknown-member') {
      this.machine.send({ type: 'FENCED' });
      this.uncommitted.clear();
      return this.join();
    }
    return this.heartbeat();
  }

  /** Heartbeats now (one at a time; a request meanwhile runs once more after it). */
  heartbeat(): Promise<void> {
    if (this.halted) return Promise.resolve();
    if (this.heartbeating !== undefined) {
      this.heartbeatAgain = true;
      return this.heartbeating;
    }
    this.heartbeating = (async () => {
      do {
        this.heartbeatAgain = false;
        try {
          if (this.joining !== undefined) await this.joining;
          const view = await this.queue.heartbeat({ group: this.options.group, member: this.options.member, holding: holding(this.machine.getSnapshot().context) });
          this.answer(view);
        } catch (error) {
          if (isFenced(error) && !this.halted) {
            this.machine.send({ type: 'FENCED' });
            this.uncommitted.clear();
            await this.join().catch(() => undefined);
          }
          // Transport trouble: the next interval tries again; the session outlasts a few misses.
        }
      } while (this.heartbeatAgain && !this.halted);
    })().finally(() => (this.heartbeating = undefined));
    return this.heartbeating;
  }

  /** Fetches from this member's partitions (the queue serves only those). Fenced: rejoins and answers nothing. */
  async poll(options: { maxMessages?: number; waitMs?: number } = {}): Promise<FetchedDelivery[]> {
    if (this.halted) throw new CraftError('CRAFT_BAD_REQUEST', `member ${this.options.member} of group ${this.options.group} is stopped`);
    if (this.joining !== undefined) await this.joining;
    if (this.lost) {
      this.machine.send({ type: 'FENCED' });
      await this.join();
      this.lost = false;
    }
    try {
      const timeoutMs = this.options.fetchTimeoutMs;
      const { deliveries } = await this.queue.fetch({ group: this.options.group, member: this.options.member, generation: this.generation, ...options }, timeoutMs === undefined ? {} : { timeoutMs });
      for (const d of deliveries) this.uncommitted.set(d.partition, (this.uncommitted.get(d.partition) ?? 0) + 1);
      return deliveries;
    } catch (error) {
      if (!isFenced(error)) {
        this.lost ||= unanswered(error);
        throw error;
      }
      await this.fenced(error);
      return [];
    }
  }

  /** Commits deliveries (the highest offset per epoch and partition). Fenced: rejoins; they come again. */
  async commit(deliveries: FetchedDelivery[]): Promise<boolean> {
    if (deliveries.length === 0) return true;
    const highest = new Map<string, { epoch: number; partition: number; offset: number }>();
    for (const d of deliveries) {
      const key = `${d.epoch}:${d.partition}`;
      if ((highest.get(key)?.offset ?? -1) < d.offset) highest.set(key, { epoch: d.epoch, partition: d.partition, offset: d.offset });
    }
    const send = (): Promise<unknown> => this.queue.commit({ group: this.options.group, member: this.options.member, generation: this.generation, commits: [...highest.values()] });
    try {
      await send();
    } catch (error) {
      if (!isFenced(error)) {
        // Unanswered: it may or may not have been applied; joining again settles it.
        this.lost ||= unanswered(error);
        throw error;
      }
      await this.fenced(error);
      // A rebalance moved the generation on while these were processed: if the member still
      // holds their partitions, the commit goes again at the new generation (as Kafka's
      // consumers retry after a rebalance); otherwise they are delivered again to the new owner.
      const held = new Set(holding(this.machine.getSnapshot().context));
      const retry = fenceReason(error) !== 'unknown-member' && [...highest.values()].every((c) => held.has(c.partition));
      if (!retry || !(await send().then(() => true, () => false))) {
        for (const d of deliveries) this.uncommitted.set(d.partition, Math.max(0, (this.uncommitted.get(d.partition) ?? 0) - 1));
        this.releaseIfDone();
        return false;
      }
    }
    for (const d of deliveries) this.uncommitted.set(d.partition, Math.max(0, (this.uncommitted.get(d.partition) ?? 0) - 1));
    this.releaseIfDone();
    return true;
  }

  /** Stops heartbeating; `leave` tells the coordinator at once (otherwise the session runs out, as for a crashed member). */
  async stop(options: { leave?: boolean } = {}): Promise<void> {
    this.halted = true;
    clearInterval(this.timer);
    this.subscription?.unsubscribe();
    await this.heartbeating;
    // A join in flight would make the member again after its leave: it ends first.
    await this.joining?.catch(() => undefined);
    if (options.leave !== false) {
      this.machine.send({ type: 'LEAVE' });
      await this.queue.leave({ group: this.options.group, member: this.options.member }).catch(() => undefined);
    }
    this.machine.stop();
  }
}

/**
 * Whether a group has settled on exactly `live` members: the coordinator says stable, and each of
 * the `partitions` is owned by its target owner, a live member.
 */
export function groupSettled(state: GroupDescription | undefined, live: readonly string[], partitions: number): boolean {
  if (state === undefined || state.phase !== 'stable' || state.members.join() !== [...live].sort().join()) return false;
  for (let p = 0; p < partitions; p++) {
    const owner = state.owners[p];
    if (owner === undefined || owner !== state.target[p] || !live.includes(owner)) return false;
  }
  return true;
}
