/**
 * The supervisor runtime: starts children in order, stops them in reverse, and carries out
 * `decide()` when one exits. Operations are serialised, so an exit that arrives while a
 * restart is under way waits its turn.
 */
import { systemClock, type Clock, type Timer } from '../clock.js';
import { createLogger, type Logger } from '../log.js';
import { decide, type ExitReason, type SupervisorPolicy } from './policy.js';
import type { ChildHandle, ChildSpec, NodeStatus, NodeState } from './child.js';

interface Entry {
  spec: ChildSpec;
  handle: ChildHandle | undefined;
  state: NodeState;
  restarts: number;
  lastError: string | undefined;
  /** Handles we stop on purpose; their exits are not crashes. */
  stopping: Set<ChildHandle>;
}

/** Observes what the supervisor does, for the runtime event stream and tests. */
export type SupervisorEvent =
  | { type: 'child.started'; supervisor: string; child: string }
  | { type: 'child.exited'; supervisor: string; child: string; reason: ExitReason }
  | { type: 'child.restarting'; supervisor: string; child: string; delayMs: number }
  | { type: 'supervisor.escalated'; supervisor: string; restartsInPeriod: number };

export interface SupervisorOptions {
  clock?: Clock;
  random?: () => number;
  log?: Logger;
  onEvent?: (event: SupervisorEvent) => void;
}

export class Supervisor implements ChildHandle {
  readonly exited: Promise<ExitReason>;
  private resolveExit!: (reason: ExitReason) => void;
  private readonly entries: Entry[];
  private restartTimesMs: readonly number[] = [];
  private state: NodeState = 'starting';
  private operations: Promise<void> = Promise.resolve();
  private readonly pendingTimers = new Map<Timer, () => void>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly onEvent: (event: SupervisorEvent) => void;
  private lastError: string | undefined;

  constructor(
    readonly id: string,
    private readonly policy: SupervisorPolicy,
    specs: ChildSpec[],
    options: SupervisorOptions = {},
  ) {
    const ids = new Set<string>();
    for (const spec of specs) {
      if (ids.has(spec.id)) throw new Error(`duplicate child id ${spec.id} under supervisor ${id}`);
      ids.add(spec.id);
    }
    this.entries = specs.map((spec) => ({ spec, handle: undefined, state: 'stopped', restarts: 0, lastError: undefined, stopping: new Set() }));
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.log = options.log ?? createLogger(`supervisor:${id}`);
    this.onEvent = options.onEvent ?? (() => undefined);
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  /** Starts every child in order. If one fails to start, the ones started are stopped in reverse and the error is thrown. */
  async start(): Promise<this> {
    for (const entry of this.entries) {
      try {
        await this.startEntry(entry);
      } catch (error) {
        this.log.error('child failed to start', { child: entry.spec.id, error });
        await this.stopEntries([...this.entries].reverse());
        this.state = 'failed';
        throw error;
      }
    }
    this.state = 'running';
    return this;
  }

  /** Stops children in reverse start order, each within its shutdown timeout. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'failed') return;
    this.state = 'stopping';
    for (const [timer, release] of this.pendingTimers) {
      timer.cancel();
      release();
    }
    this.pendingTimers.clear();
    await this.serialise(async () => {
      await this.stopEntries([...this.entries].reverse());
    });
    this.state = 'stopped';
    this.resolveExit({ kind: 'shutdown' });
  }

  status(): NodeStatus {
    const children = this.entries.map((entry) => {
      const live = entry.handle?.status();
      const base: NodeStatus = live ?? { id: entry.spec.id, kind: 'actor', state: entry.state, restarts: 0 };
      return {
        ...base,
        state: entry.state === 'running' ? base.state : entry.state,
        restarts: entry.restarts,
        ...(entry.lastError === undefined ? {} : { lastError: entry.lastError }),
      };
    });
    return {
      id: this.id,
      kind: 'supervisor',
      state: this.state,
      restarts: 0,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      children,
    };
  }

  /** The live handle of a child, for tests and fault injection. */
  child(id: string): ChildHandle | undefined {
    return this.entries.find((e) => e.spec.id === id)?.handle;
  }

  private serialise(operation: () => Promise<void>): Promise<void> {
    const next = this.operations.then(operation, operation);
    this.operations = next.catch(() => undefined);
    return next;
  }

  private async startEntry(entry: Entry): Promise<void> {
    entry.state = 'starting';
    const handle = await entry.spec.start();
    entry.handle = handle;
    entry.state = 'running';
    this.onEvent({ type: 'child.started', supervisor: this.id, child: entry.spec.id });
    void handle.exited.then((reason) => {
      if (entry.stopping.has(handle)) {
        entry.stopping.delete(handle);
        return;
      }
      if (entry.handle !== handle) return;
      void this.serialise(() => this.onChildExit(entry, reason));
    });
  }

  private async stopEntries(entries: Entry[]): Promise<void> {
    for (const entry of entries) {
      const handle = entry.handle;
      if (handle === undefined || entry.state !== 'running') continue;
      entry.state = 'stopping';
      entry.stopping.add(handle);
      try {
        await handle.stop(entry.spec.shutdownMs);
      } catch (error) {
        this.log.warn('child did not stop cleanly', { child: entry.spec.id, error });
      }
      entry.handle = undefined;
      entry.state = 'stopped';
    }
  }

  private async onChildExit(entry: Entry, reason: ExitReason): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped' || this.state === 'failed') return;
    entry.handle = undefined;
    entry.state = reason.kind === 'crash' ? 'crashed' : 'stopped';
    if (reason.kind === 'crash') entry.lastError = reason.error;
    this.onEvent({ type: 'child.exited', supervisor: this.id, child: entry.spec.id, reason });
    if (reason.kind === 'crash') this.log.warn('child crashed', { child: entry.spec.id, error: reason.error });

    const decision = decide({
      policy: this.policy,
      children: this.entries.map((e) => ({ id: e.spec.id, restart: e.spec.restart, running: e.state === 'running' })),
      restartTimesMs: this.restartTimesMs,
      exitedId: entry.spec.id,
      reason,
      nowMs: this.clock.now(),
      random: this.random(),
    });

    switch (decision.kind) {
      case 'ignore':
        return;
      case 'leave':
        if (decision.remove) this.entries.splice(this.entries.indexOf(entry), 1);
        return;
      case 'escalate': {
        this.restartTimesMs = decision.restartTimesMs;
        this.onEvent({ type: 'supervisor.escalated', supervisor: this.id, restartsInPeriod: decision.restartTimesMs.length });
        this.log.error('restart intensity exceeded; failing upward', { restarts: decision.restartTimesMs.length, periodMs: this.policy.periodMs });
        await this.stopEntries(decision.stop.map((id) => this.entries.find((e) => e.spec.id === id)!).filter(Boolean));
        this.state = 'failed';
        this.lastError = `restart intensity exceeded (${this.policy.intensity} in ${this.policy.periodMs} ms) after ${entry.spec.id}: ${entry.lastError ?? reason.kind}`;
        this.resolveExit({ kind: 'crash', error: this.lastError });
        return;
      }
      case 'restart': {
        this.restartTimesMs = decision.restartTimesMs;
        await this.stopEntries(decision.stop.map((id) => this.entries.find((e) => e.spec.id === id)!));
        for (const id of decision.remove) {
          const index = this.entries.findIndex((e) => e.spec.id === id);
          if (index >= 0) this.entries.splice(index, 1);
        }
        const toStart = decision.start.map((id) => this.entries.find((e) => e.spec.id === id)!);
        for (const e of toStart) {
          e.state = 'restarting';
          this.onEvent({ type: 'child.restarting', supervisor: this.id, child: e.spec.id, delayMs: decision.delayMs });
        }
        await new Promise<void>((resolve) => {
          const timer = this.clock.setTimeout(() => {
            this.pendingTimers.delete(timer);
            resolve();
          }, decision.delayMs);
          this.pendingTimers.set(timer, resolve);
        });
        if (this.state !== 'running') return;
        for (const e of toStart) {
          e.restarts += 1;
          try {
            await this.startEntry(e);
          } catch (error) {
            // A restart that fails to start is a crash of that child: decided again, so intensity bounds retries.
            const message = error instanceof Error ? error.message : String(error);
            e.state = 'crashed';
            e.lastError = message;
            void this.serialise(() => this.onChildExit(e, { kind: 'crash', error: `start failed: ${message}` }));
            return;
          }
        }
        return;
      }
    }
  }
}
