/**
 * A consumer-group member's lifecycle (Craft #2, the group phases), as an xstate machine — the
 * client side of group-coordinator.ts:
 *
 *            JOIN                 ANSWER (assigned, nothing to revoke)
 *   unjoined ─────▶ joining ─────────────────────────────────────▶ stable ◀──────┐
 *      ▲               │ ANSWER with revocations                      │ ANSWER    │ REVOKED
 *      │               ▼                                              ▼ revoke    │ (given up)
 *      │           revoking ◀─────────────────────────────────────────┘───────────┘
 *      │ FENCED / UNKNOWN (the coordinator forgot it: rejoin)  LEAVE ─▶ left (final)
 *
 * - The member consumes exactly the partitions in `consuming`. An answer's `revoke` stops them
 *   at once (they leave `consuming`); the member reports REVOKED after committing what it
 *   processed, and its next heartbeat no longer lists them — that is the release the
 *   coordinator waits for before granting them elsewhere. An answer's `assigned` adds partitions.
 * - A commit refused as ILLEGAL_GENERATION or NOT_OWNER (FENCED) or a heartbeat answered
 *   UNKNOWN_MEMBER means the coordinator moved on: the member drops everything and rejoins.
 * - `generation` is the one of its last answer: commits carry it (the coordinator fences on it).
 */
import { assign, setup } from 'xstate';

export interface MemberContext {
  id: string;
  generation: number;
  consuming: number[];
  /** Partitions being given up (processing stopped, the release not yet reported). */
  revoking: number[];
}

export type MemberEvent =
  | { type: 'JOIN' }
  | { type: 'ANSWER'; generation: number; assigned: number[]; revoke: number[] }
  | { type: 'REVOKED' }
  | { type: 'FENCED' }
  | { type: 'UNKNOWN' }
  | { type: 'LEAVE' };

const sorted = (ps: Iterable<number>): number[] => [...new Set(ps)].sort((a, b) => a - b);

export const memberMachine = setup({
  types: { context: {} as MemberContext, events: {} as MemberEvent, input: {} as { id: string } },
  guards: {
    revokes: ({ event }) => event.type === 'ANSWER' && event.revoke.length > 0,
  },
  actions: {
    answer: assign(({ context, event }) => {
      if (event.type !== 'ANSWER') return {};
      const revoke = new Set(event.revoke);
      return {
        generation: event.generation,
        consuming: sorted([...context.consuming.filter((p) => !revoke.has(p)), ...event.assigned.filter((p) => !revoke.has(p))]),
        revoking: sorted([...context.revoking, ...event.revoke]),
      };
    }),
    released: assign({ revoking: () => [] }),
    forget: assign({ consuming: () => [], revoking: () => [], generation: () => 0 }),
  },
}).createMachine({
  id: 'group-member',
  context: ({ input }) => ({ id: input.id, generation: 0, consuming: [], revoking: [] }),
  initial: 'unjoined',
  on: {
    LEAVE: { actions: 'forget', target: '.left' },
    FENCED: { actions: 'forget', target: '.joining' },
    UNKNOWN: { actions: 'forget', target: '.joining' },
  },
  states: {
    unjoined: { on: { JOIN: 'joining' } },
    joining: {
      on: { ANSWER: [{ guard: 'revokes', actions: 'answer', target: 'revoking' }, { actions: 'answer', target: 'stable' }] },
    },
    stable: {
      on: { ANSWER: [{ guard: 'revokes', actions: 'answer', target: 'revoking' }, { actions: 'answer', target: 'stable' }] },
    },
    revoking: {
      on: {
        REVOKED: { actions: 'released', target: 'stable' },
        ANSWER: { actions: 'answer' },
      },
    },
    left: { type: 'final' },
  },
});

/** What the member's next heartbeat reports holding: what it consumes (revoked partitions once released are gone). */
export const holding = (context: MemberContext): number[] => sorted([...context.consuming, ...context.revoking]);
