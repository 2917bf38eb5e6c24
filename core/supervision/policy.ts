/**
 * Supervision as data (OTP semantics) and the pure decision a supervisor takes when a
 * child exits. The runtime in supervisor.ts only carries decisions out; everything that
 * can be reasoned about lives here and is property-tested.
 */
import {
  RESTART_BACKOFF_JITTER,
  RESTART_BACKOFF_MAX_MS,
  RESTART_BACKOFF_MIN_MS,
  RESTART_INTENSITY,
  RESTART_PERIOD_MS,
} from '../defaults.js';

export const STRATEGIES = ['one_for_one', 'one_for_all', 'rest_for_one'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const RESTART_TYPES = ['permanent', 'transient', 'temporary'] as const;
/** permanent: always restarted; transient: restarted only after an abnormal exit; temporary: never. */
export type RestartType = (typeof RESTART_TYPES)[number];

export interface Backoff {
  minMs: number;
  maxMs: number;
  /** Random factor: the delay is scaled by a uniform value in [1 - jitter, 1 + jitter]. */
  jitter: number;
}

export interface SupervisorPolicy {
  strategy: Strategy;
  /** At most this many restarts within `periodMs`; one more and the supervisor fails upward. */
  intensity: number;
  periodMs: number;
  backoff: Backoff;
}

export const DEFAULT_POLICY: SupervisorPolicy = {
  strategy: 'one_for_one',
  intensity: RESTART_INTENSITY,
  periodMs: RESTART_PERIOD_MS,
  backoff: { minMs: RESTART_BACKOFF_MIN_MS, maxMs: RESTART_BACKOFF_MAX_MS, jitter: RESTART_BACKOFF_JITTER },
};

export type ExitReason = { kind: 'normal' } | { kind: 'shutdown' } | { kind: 'crash'; error: string };

export const isAbnormal = (reason: ExitReason): boolean => reason.kind === 'crash';

/** What the decision needs to know of a child. */
export interface ChildInfo {
  id: string;
  restart: RestartType;
  running: boolean;
}

export interface DecisionInput {
  policy: SupervisorPolicy;
  /** Children in start order. */
  children: readonly ChildInfo[];
  /** Times of the restarts already counted, ms. */
  restartTimesMs: readonly number[];
  exitedId: string;
  reason: ExitReason;
  nowMs: number;
  /** A uniform random number in [0, 1), injected for jitter. */
  random: number;
}

export type Decision =
  /** Not a child of ours (or already gone): nothing to do. */
  | { kind: 'ignore' }
  /** The child stays down; `remove` drops its spec (temporary children). */
  | { kind: 'leave'; remove: boolean; restartTimesMs: readonly number[] }
  /**
   * Stop `stop` (reverse start order), drop `remove` from the children, then after
   * `delayMs` start `start` (start order).
   */
  | { kind: 'restart'; stop: string[]; start: string[]; remove: string[]; delayMs: number; restartTimesMs: readonly number[] }
  /** Intensity exceeded: stop every running child (reverse order) and exit abnormally. */
  | { kind: 'escalate'; stop: string[]; restartTimesMs: readonly number[] };

/** Whether a child with this restart type is restarted after this exit. */
export function wantsRestart(restart: RestartType, reason: ExitReason): boolean {
  if (reason.kind === 'shutdown') return false;
  switch (restart) {
    case 'permanent':
      return true;
    case 'transient':
      return isAbnormal(reason);
    case 'temporary':
      return false;
  }
}

/** Exponential backoff in the number of restarts inside the current period. */
export function backoffDelayMs(backoff: Backoff, restartsInPeriod: number, random: number): number {
  const exponent = Math.max(0, restartsInPeriod - 1);
  const base = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(exponent, 30));
  const factor = 1 + backoff.jitter * (random * 2 - 1);
  return Math.max(0, Math.round(base * factor));
}

export function decide(input: DecisionInput): Decision {
  const { policy, children, exitedId, reason, nowMs } = input;
  const index = children.findIndex((c) => c.id === exitedId);
  if (index < 0) return { kind: 'ignore' };
  const exited = children[index]!;
  if (!wantsRestart(exited.restart, reason)) {
    return { kind: 'leave', remove: exited.restart === 'temporary', restartTimesMs: input.restartTimesMs };
  }

  // OTP's add_restart: keep restarts still inside the period, add this one, compare with MaxR.
  const restartTimesMs = [...input.restartTimesMs.filter((t) => nowMs - t < policy.periodMs), nowMs];
  if (restartTimesMs.length > policy.intensity) {
    const stop = children.filter((c) => c.running && c.id !== exitedId).map((c) => c.id).reverse();
    return { kind: 'escalate', stop, restartTimesMs };
  }

  const affected =
    policy.strategy === 'one_for_one' ? [exited] : policy.strategy === 'one_for_all' ? [...children] : children.slice(index);
  const others = affected.filter((c) => c.id !== exitedId);
  const stop = others.filter((c) => c.running).map((c) => c.id).reverse();
  const remove = others.filter((c) => c.restart === 'temporary').map((c) => c.id);
  const start = affected.filter((c) => c.id === exitedId || c.restart !== 'temporary').map((c) => c.id);
  const delayMs = backoffDelayMs(policy.backoff, restartTimesMs.length, input.random);
  return { kind: 'restart', stop, start, remove, delayMs, restartTimesMs };
}
