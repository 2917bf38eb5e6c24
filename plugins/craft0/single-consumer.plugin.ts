/**
 * The seed's consumer groups: one consumer per group. Whoever joins last owns every partition
 * and bumps the generation; the member before it is fenced (its fetches and commits refused
 * as stale) and, if it joins again, takes everything back — two consumers in one group take
 * turns rather than share. No heartbeats, no sessions: a member is current until replaced.
 * Phase 2 (`queue.consumer-groups`) is what shares partitions.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { GroupCoordinator, GroupCoordinatorContext, GroupDescription, GroupRefusal, GroupView } from '../../core/slots/queue.js';

/** Heartbeats are accepted but not needed; members are told this interval. */
const HEARTBEAT_INTERVAL_MS = 5_000;

class SingleConsumer implements GroupCoordinator {
  private readonly state = new Map<string, { generation: number; member: string | undefined }>();

  constructor(private readonly context: GroupCoordinatorContext) {}

  private group(group: string): { generation: number; member: string | undefined } {
    let state = this.state.get(group);
    if (state === undefined) this.state.set(group, (state = { generation: 0, member: undefined }));
    return state;
  }

  private all(): number[] {
    return Array.from({ length: this.context.partitions }, (_, p) => p);
  }

  restore(group: string, generation: number): void {
    this.group(group).generation = Math.max(this.group(group).generation, generation);
  }

  join(group: string, member: string): GroupView {
    const state = this.group(group);
    state.generation += 1;
    state.member = member;
    return { generation: state.generation, assigned: this.all(), revoke: [], heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, sessionTimeoutMs: Number.MAX_SAFE_INTEGER };
  }

  heartbeat(group: string, member: string): GroupView | GroupRefusal {
    const state = this.group(group);
    if (state.member !== member) return 'UNKNOWN_MEMBER';
    return { generation: state.generation, assigned: this.all(), revoke: [], heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, sessionTimeoutMs: Number.MAX_SAFE_INTEGER };
  }

  leave(group: string, member: string): void {
    const state = this.group(group);
    if (state.member === member) state.member = undefined;
  }

  tick(): void {}

  fence(group: string, member: string, generation: number): GroupRefusal | 'OK' {
    const state = this.group(group);
    if (generation !== state.generation) return 'ILLEGAL_GENERATION';
    if (state.member !== member) return 'UNKNOWN_MEMBER';
    return 'OK';
  }

  consumable(group: string, member: string, generation: number): number[] | GroupRefusal {
    const verdict = this.fence(group, member, generation);
    return verdict === 'OK' ? this.all() : verdict;
  }

  describe(group: string): GroupDescription | undefined {
    const state = this.state.get(group);
    if (state === undefined) return undefined;
    const owners: Record<number, string> = {};
    if (state.member !== undefined) for (const p of this.all()) owners[p] = state.member;
    return { group, phase: state.member === undefined ? 'empty' : 'stable', generation: state.generation, members: state.member === undefined ? [] : [state.member], owners, target: { ...owners } };
  }

  groups(): string[] {
    return [...this.state.keys()];
  }
}

export default definePlugin({
  id: 'craft0.single-consumer',
  craft: 0,
  phase: 0,
  slot: 'queue.groups',
  version: '1.0.0',
  summary: 'The seed\'s groups: the last member to join consumes every partition; the one before is fenced',
  options: z.object({}).strict(),
  create: (context) => new SingleConsumer(context),
});
