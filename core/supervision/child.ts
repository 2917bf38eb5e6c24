/**
 * What a supervisor supervises: anything that starts, reports its exit once, and stops
 * on request — an actor, a nested supervisor, or an OS process hosting actors.
 */
import type { ExitReason, RestartType } from './policy.js';

export type NodeKind = 'supervisor' | 'actor' | 'process';
export type NodeState = 'starting' | 'running' | 'stopping' | 'stopped' | 'restarting' | 'crashed' | 'failed';

/** One node of the live supervision tree, as `craft status` prints it. */
export interface NodeStatus {
  id: string;
  kind: NodeKind;
  state: NodeState;
  restarts: number;
  /** Mailbox depth and its named limit, for actors. */
  mailbox?: { depth: number; capacity: number };
  /** Active plugin per slot, for actors that host slots. */
  plugins?: Record<string, string>;
  pid?: number;
  lastError?: string;
  children?: NodeStatus[];
}

export interface ChildHandle {
  readonly id: string;
  /** Settles once, when the child has exited for any reason. */
  readonly exited: Promise<ExitReason>;
  /**
   * Asks the child to stop; after `timeoutMs` it is stopped by force. Resolves once it has
   * exited. Its `exited` then reports `shutdown`.
   */
  stop(timeoutMs: number): Promise<void>;
  status(): NodeStatus;
}

export interface ChildSpec {
  id: string;
  restart: RestartType;
  /** Grace period for `stop` before the child is stopped by force. */
  shutdownMs: number;
  /** Starts the child; resolves once it is ready to take messages. */
  start(): Promise<ChildHandle>;
}
