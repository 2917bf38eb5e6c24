/**
 * The consumer-group coordinator's rebalance protocol (Craft #2, the group phases), as an xstate
 * machine — a value; the coordinator runs one actor of it per group, on an injected clock:
 *
 *            JOIN                         every revocation acknowledged (or its owner gone)
 *   empty ─────────▶ rebalancing ─────────────────────────────────────────────▶ stable
 *     ▲                 ▲   │                                                    │
 *     │ last member     │   └──── JOIN / LEAVE / session expired: new target ────┤
 *     └─ leaves/expires ┴──────────────────────────────────────────────────────────┘
 *
 * - Members JOIN, HEARTBEAT (reporting the partitions they still hold) and LEAVE; a member
 *   that does not heartbeat within `sessionTimeoutMs` is expired (EXPIRE, checked on each event
 *   and on ticks). Every change of membership bumps the **generation** and computes a target
 *   assignment with the group's assignor.
 * - A partition is **granted** to its target owner only once its previous owner released it
 *   (a heartbeat that no longer lists it) or left/expired: a partition never has two owners.
 *   Eager assignors (range, round-robin, sticky) revoke every partition on a rebalance;
 *   cooperative-sticky revokes only the partitions that move — the others keep being consumed.
 * - **Commits are fenced**: accepted only from a live member, at the current generation, for a
 *   partition it owns now; anything else gets `ILLEGAL_GENERATION`, `NOT_OWNER` or `UNKNOWN_MEMBER`.
 *
 * Everything the machine decides is in its context (members, owners, target, generation), so
 * the coordinator can journal the events and a restart folds them back (the group journal).
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import type { GroupDescription, GroupRefusal, GroupView } from '../../../core/slots/queue.js';
import { ASSIGNORS, cooperativeStickyAssign, rangeAssign, roundRobinAssign, stickyAssign, type Assignment, type AssignorName } from './assignors.js';

export interface MemberState {
  lastHeartbeatMs: number;
  /** The generation the member last heard (from its join or heartbeat answer). */
  generation: number;
}

export interface GroupContext {
  assignor: AssignorName;
  partitions: number;
  sessionTimeoutMs: number;
  generation: number;
  members: Record<string, MemberState>;
  /** Partition → the member allowed to consume it now (absent: nobody). */
  owners: Record<number, string>;
  /** Partition → the member the current generation assigns it to. */
  target: Record<number, string>;
}

export type GroupEvent =
  | { type: 'JOIN'; member: string; atMs: number }
  | { type: 'HEARTBEAT'; member: string; atMs: number; holding: number[] }
  | { type: 'LEAVE'; member: string; atMs: number }
  | { type: 'TICK'; atMs: number }
  /** Adopts a group's state as stored elsewhere (phase 3's lease bucket, written by another coordinator or before a restart). */
  | { type: 'RESTORE'; state: GroupState };

/** What a coordinator stores of a group to take it over: everything the machine decides. */
export type GroupState = Pick<GroupContext, 'generation' | 'members' | 'owners' | 'target'>;

export interface GroupInput {
  assignor: AssignorName;
  partitions: number;
  sessionTimeoutMs: number;
  /** The generation a restarted coordinator starts from (journaled), so stale members stay stale. */
  generation?: number;
}

/** The partitions `member` owns now (may consume and commit). */
export const ownedBy = (context: GroupContext, member: string): number[] =>
  Object.entries(context.owners).filter(([, m]) => m === member).map(([p]) => Number(p)).sort((a, b) => a - b);

/** What a heartbeat answer tells a member: its generation, what it may consume, what to give up. */
export function heartbeatAnswer(context: GroupContext, member: string): { generation: number; assigned: number[]; revoke: number[] } | { error: 'UNKNOWN_MEMBER' } {
  if (context.members[member] === undefined) return { error: 'UNKNOWN_MEMBER' };
  const owned = ownedBy(context, member);
  return { generation: context.generation, assigned: owned.filter((p) => context.target[p] === member), revoke: owned.filter((p) => context.target[p] !== member) };
}

/** What a coordinator answers a member: its view, with the group's timing, or why it is refused. */
export function memberView(context: GroupContext, member: string, timing: { heartbeatIntervalMs: number; sessionTimeoutMs: number }): GroupView | GroupRefusal {
  const answer = heartbeatAnswer(context, member);
  if ('error' in answer) return answer.error;
  return { ...answer, heartbeatIntervalMs: timing.heartbeatIntervalMs, sessionTimeoutMs: timing.sessionTimeoutMs };
}

/** The partitions a fetch of `member` at `generation` may take from: owned and not being given up. */
export function consumableBy(context: GroupContext, member: string, generation: number): number[] | GroupRefusal {
  if (context.members[member] === undefined) return 'UNKNOWN_MEMBER';
  if (generation !== context.generation) return 'ILLEGAL_GENERATION';
  return ownedBy(context, member).filter((p) => context.target[p] === member);
}

/** A group machine's state as `craft.queue.info` shows it. */
export function describeGroup(group: string, snapshot: { value: unknown; context: GroupContext }): GroupDescription {
  const { generation, members, owners, target } = snapshot.context;
  return { group, phase: String(snapshot.value), generation, members: Object.keys(members).sort(), owners: { ...owners }, target: { ...target } };
}

/** The options every group coordinator takes (phase 3 adds its bucket). */
export const groupOptionsShape = {
  assignor: z.enum(ASSIGNORS).default('cooperative-sticky'),
  /** A member not heard from for this long is expired and its partitions move (seed: 30 s). */
  sessionTimeoutMs: z.number().int().min(100).default(30_000),
  /** How often members heartbeat (seed: 5 s); they also heartbeat at once when told the group changed. */
  heartbeatIntervalMs: z.number().int().min(10).default(5_000),
};

export type CommitVerdict = 'OK' | 'UNKNOWN_MEMBER' | 'ILLEGAL_GENERATION' | 'NOT_OWNER';

/** Whether a commit is accepted: a live member, the current generation, a partition it owns. */
export function fenceCommit(context: GroupContext, member: string, generation: number, partition: number): CommitVerdict {
  if (context.members[member] === undefined) return 'UNKNOWN_MEMBER';
  if (generation !== context.generation) return 'ILLEGAL_GENERATION';
  if (context.owners[partition] !== member) return 'NOT_OWNER';
  return 'OK';
}

function assignmentOf(context: GroupContext): Assignment {
  const out: Assignment = new Map(Object.keys(context.members).map((m) => [m, []]));
  for (const [p, m] of Object.entries(context.target)) out.get(m)?.push(Number(p));
  return out;
}

/** A new target for the members now in the group (generation bumped); eager assignors revoke everything. */
function retarget(context: GroupContext): Pick<GroupContext, 'generation' | 'target' | 'owners'> {
  const members = Object.keys(context.members);
  const previous = assignmentOf(context);
  const assigned =
    context.assignor === 'range' ? rangeAssign(members, context.partitions)
    : context.assignor === 'round-robin' ? roundRobinAssign(members, context.partitions)
    : context.assignor === 'sticky' ? stickyAssign(members, context.partitions, previous)
    : cooperativeStickyAssign(members, context.partitions, previous).target;
  const target: Record<number, string> = {};
  for (const [m, ps] of assigned) for (const p of ps) target[p] = m;
  // Owners that are gone release at once; the live ones release when their heartbeat says so.
  const owners: Record<number, string> = {};
  for (const [p, m] of Object.entries(context.owners)) if (context.members[m] !== undefined) owners[Number(p)] = m;
  return { generation: context.generation + 1, target, owners: grant({ ...context, owners, target }) };
}

/** Grants every partition nobody holds to its target owner. */
function grant(context: Pick<GroupContext, 'owners' | 'target' | 'partitions'>): Record<number, string> {
  const owners = { ...context.owners };
  for (let p = 0; p < context.partitions; p++) if (owners[p] === undefined && context.target[p] !== undefined) owners[p] = context.target[p]!;
  return owners;
}

/** Members whose session has run out at `atMs`. */
const expiredAt = (context: GroupContext, atMs: number): string[] => Object.entries(context.members).filter(([, s]) => atMs - s.lastHeartbeatMs > context.sessionTimeoutMs).map(([m]) => m);

function without(context: GroupContext, gone: string[]): GroupContext {
  const members = { ...context.members };
  for (const m of gone) delete members[m];
  const owners: Record<number, string> = {};
  for (const [p, m] of Object.entries(context.owners)) if (members[m] !== undefined) owners[Number(p)] = m;
  return { ...context, members, owners };
}

export const groupMachine = setup({
  types: { context: {} as GroupContext, events: {} as GroupEvent, input: {} as GroupInput },
  guards: {
    isNewMember: ({ context, event }) => event.type === 'JOIN' && context.members[event.member] === undefined,
    isMember: ({ context, event }) => 'member' in event && context.members[event.member] !== undefined,
    someoneExpired: ({ context, event }) => 'atMs' in event && expiredAt(context, event.atMs).length > 0,
    settled: ({ context }) => Object.keys(context.target).every((p) => context.owners[Number(p)] === context.target[Number(p)]),
    nobodyLeft: ({ context }) => Object.keys(context.members).length === 0,
  },
  actions: {
    restore: assign(({ event }) => {
      if (event.type !== 'RESTORE') return {};
      const { generation, members, owners, target } = event.state;
      return { generation, members: { ...members }, owners: { ...owners }, target: { ...target } };
    }),
    expire: assign(({ context, event }) => {
      if (!('atMs' in event)) return {};
      const gone = expiredAt(context, event.atMs);
      if (gone.length === 0) return {};
      const next = without(context, gone);
      return { ...next, ...retarget(next) };
    }),
    join: assign(({ context, event }) => {
      if (event.type !== 'JOIN') return {};
      const next = { ...context, members: { ...context.members, [event.member]: { lastHeartbeatMs: event.atMs, generation: context.generation + 1 } } };
      return { ...next, ...retarget(next) };
    }),
    leave: assign(({ context, event }) => {
      if (event.type !== 'LEAVE' || context.members[event.member] === undefined) return {};
      const next = without(context, [event.member]);
      return { ...next, ...retarget(next) };
    }),
    heartbeat: assign(({ context, event }) => {
      // A member expired by this very event is gone: it must join again.
      if (event.type !== 'HEARTBEAT' || context.members[event.member] === undefined) return {};
      const holding = new Set(event.holding);
      // What the member no longer holds and was told to give up is released, then granted onwards.
      const owners: Record<number, string> = {};
      for (const [p, m] of Object.entries(context.owners)) {
        const partition = Number(p);
        if (m === event.member && !holding.has(partition) && context.target[partition] !== m) continue;
        owners[partition] = m;
      }
      return { members: { ...context.members, [event.member]: { lastHeartbeatMs: event.atMs, generation: context.generation } }, owners: grant({ ...context, owners }) };
    }),
  },
}).createMachine({
  id: 'consumer-group',
  context: ({ input }) => ({ assignor: input.assignor, partitions: input.partitions, sessionTimeoutMs: input.sessionTimeoutMs, generation: input.generation ?? 0, members: {}, owners: {}, target: {} }),
  initial: 'empty',
  // Sessions are checked first on every event; a group that lost its last member is empty again.
  on: {
    TICK: { guard: 'someoneExpired', actions: 'expire', target: '.checking' },
    RESTORE: { actions: 'restore', target: '.checking' },
  },
  states: {
    empty: {
      on: { JOIN: { actions: 'join', target: 'checking' } },
    },
    rebalancing: {
      on: {
        JOIN: [{ guard: 'isNewMember', actions: ['expire', 'join'], target: 'checking' }, { actions: 'expire', target: 'checking' }],
        LEAVE: { guard: 'isMember', actions: ['expire', 'leave'], target: 'checking' },
        HEARTBEAT: { guard: 'isMember', actions: ['expire', 'heartbeat'], target: 'checking' },
      },
    },
    stable: {
      on: {
        JOIN: [{ guard: 'isNewMember', actions: ['expire', 'join'], target: 'checking' }, { actions: 'expire', target: 'checking' }],
        LEAVE: { guard: 'isMember', actions: ['expire', 'leave'], target: 'checking' },
        HEARTBEAT: { guard: 'isMember', actions: ['expire', 'heartbeat'], target: 'checking' },
      },
    },
    /** Transient: where the group stands after an event. */
    checking: {
      always: [{ guard: 'nobodyLeft', target: 'empty' }, { guard: 'settled', target: 'stable' }, { target: 'rebalancing' }],
    },
  },
});

export type GroupPhase = 'empty' | 'rebalancing' | 'stable';
