/**
 * Craft #2 phase 2: consumer groups. The queue actor runs one coordinator machine
 * (shared/group-coordinator.ts, xstate) per group on its clock: members join, heartbeat with
 * the partitions they still hold, and leave over NATS; every change of membership bumps the
 * generation and computes a target with the group's assignor (range, round-robin, sticky or
 * cooperative-sticky); a partition moves only once its previous owner released it or is gone;
 * fetches take only from a member's own partitions and commits are fenced on member,
 * generation and owner.
 *
 * Static membership: a member that joins again under the same id (a restarted storage actor)
 * replaces its earlier incarnation at once — new generation, the same partitions with the
 * sticky assignors, and the queue delivers again what the earlier one had not committed —
 * instead of waiting out the old session.
 */
import { z } from 'zod';
import { createActor, type Actor as XActor } from 'xstate';
import { definePlugin } from '../../core/plugins/define.js';
import type { GroupCoordinator, GroupCoordinatorContext, GroupDescription, GroupRefusal, GroupView } from '../../core/slots/queue.js';
import { consumableBy, describeGroup, fenceCommit, groupMachine, groupOptionsShape, memberView, ownedBy } from './shared/group-coordinator.js';

const optionsSchema = z.object(groupOptionsShape).strict();
type Options = z.output<typeof optionsSchema>;

type GroupActor = XActor<typeof groupMachine>;

class ConsumerGroups implements GroupCoordinator {
  private readonly actors = new Map<string, GroupActor>();
  /** Generations restored from the queue's journal, applied when the group's machine starts. */
  private readonly restored = new Map<string, number>();

  constructor(
    private readonly context: GroupCoordinatorContext,
    private readonly options: Options,
  ) {}

  private actor(group: string): GroupActor {
    let actor = this.actors.get(group);
    if (actor === undefined) {
      const generation = this.restored.get(group);
      const input = { assignor: this.options.assignor, partitions: this.context.partitions, sessionTimeoutMs: this.options.sessionTimeoutMs };
      actor = createActor(groupMachine, { input: generation === undefined ? input : { ...input, generation } });
      actor.start();
      this.actors.set(group, actor);
    }
    return actor;
  }

  private view(group: string, member: string): GroupView | GroupRefusal {
    return memberView(this.actor(group).getSnapshot().context, member, this.options);
  }

  restore(group: string, generation: number): void {
    this.restored.set(group, generation);
  }

  join(group: string, member: string, nowMs: number): GroupView {
    const actor = this.actor(group);
    // A known member joining again is a new incarnation (its process restarted): it leaves and
    // joins, so the generation moves on and whatever its old incarnation still had in flight is
    // fenced; the sticky assignors give it back the same partitions.
    if (actor.getSnapshot().context.members[member] !== undefined) actor.send({ type: 'LEAVE', member, atMs: nowMs });
    actor.send({ type: 'JOIN', member, atMs: nowMs });
    return this.view(group, member) as GroupView;
  }

  heartbeat(group: string, member: string, holding: number[] | undefined, nowMs: number): GroupView | GroupRefusal {
    const actor = this.actor(group);
    actor.send({ type: 'HEARTBEAT', member, atMs: nowMs, holding: holding ?? ownedBy(actor.getSnapshot().context, member) });
    return this.view(group, member);
  }

  leave(group: string, member: string, nowMs: number): void {
    this.actor(group).send({ type: 'LEAVE', member, atMs: nowMs });
  }

  tick(nowMs: number): void {
    for (const actor of this.actors.values()) actor.send({ type: 'TICK', atMs: nowMs });
  }

  fence(group: string, member: string, generation: number, partition: number): GroupRefusal | 'OK' {
    return fenceCommit(this.actor(group).getSnapshot().context, member, generation, partition);
  }

  consumable(group: string, member: string, generation: number): number[] | GroupRefusal {
    return consumableBy(this.actor(group).getSnapshot().context, member, generation);
  }

  describe(group: string): GroupDescription | undefined {
    const actor = this.actors.get(group);
    return actor === undefined ? undefined : describeGroup(group, actor.getSnapshot());
  }

  groups(): string[] {
    return [...this.actors.keys()];
  }
}

export default definePlugin({
  id: 'queue.consumer-groups',
  craft: 2,
  phase: 2,
  slot: 'queue.groups',
  version: '1.0.0',
  summary: 'Consumer groups: join/heartbeat/leave over NATS, generations, fenced commits; range, round-robin, sticky and cooperative-sticky assignors (xstate coordinator)',
  options: optionsSchema,
  create: (context, options) => new ConsumerGroups(context, options),
});
