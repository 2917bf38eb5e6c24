/**
 * The lifecycle of one alert, as an xstate machine (a value; the lifecycle runs one actor of it
 * per alert, on the platform's clock):
 *
 *              HOLDS                      after `for`
 *   inactive ─────────▶ pending ─────────────────────────▶ firing ◀──────┐
 *       ▲  (for = 0: straight to firing)                     │ CLEARS    │ HOLDS
 *       │ CLEARS         │                                   ▼           │
 *       └────────────────┘            keep_firing_for = 0 ◀─┴─▶ keepFiring (still firing)
 *                                              │                  │ after keep_firing_for
 *                                              ▼                  ▼
 *                                           resolved (final) ◀────┘
 *
 * HOLDS: an evaluation returned the alert's series; CLEARS: an evaluation did not. Timers are
 * xstate `after` delays computed from the context and the injected clock (`now`), so a machine
 * restored from the journal with RESTORE waits only what is left of its `for`, or fires at once.
 * `pending → firing` happens when `for` has elapsed since the alert became active — on the
 * timer, not at the next evaluation as in Prometheus (it fires up to one interval earlier).
 * A resolved alert is finished; if it holds again it is a new alert with a new `activeAt`.
 */
import { assign, setup } from 'xstate';

export type AlertPhase = 'inactive' | 'pending' | 'firing' | 'keepFiring' | 'resolved';

export interface AlertMachineContext {
  forMs: number;
  keepFiringForMs: number;
  /** When the alert started to hold (Prometheus's `activeAt`). */
  activeAtMs: number;
  firedAtMs: number;
  /** When a firing alert stopped holding (start of `keep_firing_for`). */
  clearedAtMs: number;
  resolvedAtMs: number;
  now: () => number;
  /** Told of every change of phase, with its time. */
  changed: (phase: AlertPhase, atMs: number) => void;
}

export type AlertMachineEvent =
  | { type: 'HOLDS'; atMs: number }
  | { type: 'CLEARS'; atMs: number }
  | { type: 'RESTORE'; phase: 'pending' | 'firing' | 'keepFiring'; activeAtMs: number; firedAtMs: number; clearedAtMs: number };

export interface AlertMachineInput {
  forMs: number;
  keepFiringForMs: number;
  now: () => number;
  changed: (phase: AlertPhase, atMs: number) => void;
}

export const alertMachine = setup({
  types: {
    context: {} as AlertMachineContext,
    events: {} as AlertMachineEvent,
    input: {} as AlertMachineInput,
  },
  delays: {
    untilFiring: ({ context }) => Math.max(0, context.activeAtMs + context.forMs - context.now()),
    untilResolved: ({ context }) => Math.max(0, context.clearedAtMs + context.keepFiringForMs - context.now()),
  },
  guards: {
    firesAtOnce: ({ context, event }) => event.type === 'HOLDS' && context.forMs === 0,
    keepsFiring: ({ context }) => context.keepFiringForMs > 0,
    restoresPending: ({ event }) => event.type === 'RESTORE' && event.phase === 'pending',
    restoresFiring: ({ event }) => event.type === 'RESTORE' && event.phase === 'firing',
    restoresKeepFiring: ({ event }) => event.type === 'RESTORE' && event.phase === 'keepFiring',
  },
  actions: {
    activate: assign({ activeAtMs: ({ event }) => (event.type === 'HOLDS' ? event.atMs : 0) }),
    restore: assign(({ event }) => (event.type === 'RESTORE' ? { activeAtMs: event.activeAtMs, firedAtMs: event.firedAtMs, clearedAtMs: event.clearedAtMs } : {})),
    fireNow: assign({ firedAtMs: ({ event }) => (event.type === 'HOLDS' ? event.atMs : 0) }),
    fireOnTimer: assign({ firedAtMs: ({ context }) => context.now() }),
    clear: assign({ clearedAtMs: ({ event }) => (event.type === 'CLEARS' ? event.atMs : 0) }),
    resolveNow: assign({ resolvedAtMs: ({ event }) => (event.type === 'CLEARS' ? event.atMs : 0) }),
    resolveOnTimer: assign({ resolvedAtMs: ({ context }) => context.now() }),
    toldPending: ({ context }) => context.changed('pending', context.activeAtMs),
    toldFiring: ({ context }) => context.changed('firing', context.firedAtMs),
    toldInactive: ({ context, event }) => context.changed('inactive', event.type === 'CLEARS' ? event.atMs : context.now()),
    toldKeepFiring: ({ context }) => context.changed('keepFiring', context.clearedAtMs),
    toldRefiring: ({ context, event }) => context.changed('firing', event.type === 'HOLDS' ? event.atMs : context.now()),
    toldResolved: ({ context }) => context.changed('resolved', context.resolvedAtMs),
  },
}).createMachine({
  id: 'alert',
  initial: 'inactive',
  context: ({ input }) => ({ ...input, activeAtMs: 0, firedAtMs: 0, clearedAtMs: 0, resolvedAtMs: 0 }),
  states: {
    inactive: {
      on: {
        HOLDS: [
          { guard: 'firesAtOnce', target: 'firing', actions: ['activate', 'fireNow', 'toldFiring'] },
          { target: 'pending', actions: ['activate', 'toldPending'] },
        ],
        RESTORE: [
          { guard: 'restoresPending', target: 'pending', actions: 'restore' },
          { guard: 'restoresFiring', target: 'firing', actions: 'restore' },
          { guard: 'restoresKeepFiring', target: 'keepFiring', actions: 'restore' },
        ],
      },
    },
    pending: {
      after: { untilFiring: { target: 'firing', actions: ['fireOnTimer', 'toldFiring'] } },
      on: { CLEARS: { target: 'inactive', actions: 'toldInactive' } },
    },
    firing: {
      on: {
        CLEARS: [
          { guard: 'keepsFiring', target: 'keepFiring', actions: ['clear', 'toldKeepFiring'] },
          { target: 'resolved', actions: ['resolveNow', 'toldResolved'] },
        ],
      },
    },
    keepFiring: {
      after: { untilResolved: { target: 'resolved', actions: ['resolveOnTimer', 'toldResolved'] } },
      on: { HOLDS: { target: 'firing', actions: 'toldRefiring' } },
    },
    resolved: { type: 'final' },
  },
});
