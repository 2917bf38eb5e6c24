/**
 * A small pool of worker threads for shard tasks. Workers start on first use and stop after
 * `idleMs` without work, so an idle query actor holds no threads; a worker holds the process
 * open only while it has a task. A task that fails in a worker fails its query with the
 * worker's message; a worker that dies is replaced on the next task.
 *
 * Limits: at most `size` workers, and `queueMax` tasks waiting — past that a query is refused
 * (CRAFT_OVERLOADED) instead of piling up.
 */
import { Worker } from 'node:worker_threads';
import { CraftError } from '../../../core/errors.js';
import type { ShardTask } from './shard-task.js';
import type { PartialTransfer } from './partial.js';

const WORKER_FILE = new URL('./worker.js', import.meta.url);

interface Pending {
  task: ShardTask;
  transfer: ArrayBuffer[];
  resolve: (result: PartialTransfer) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Pending | undefined;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Pending[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set once workers are stopped for good; until then a closing pool still takes the tasks of queries in flight. */
  private terminated = false;
  /** Tasks run in workers so far. */
  tasksRun = 0;

  constructor(
    readonly size: number,
    private readonly idleMs = 30_000,
    private readonly queueMax = 1_000,
  ) {}

  run(task: ShardTask): Promise<PartialTransfer> {
    if (this.terminated) return Promise.reject(new CraftError('CRAFT_QUERY_EXECUTION', 'the query worker pool is closed'));
    if (this.waiting.length >= this.queueMax) return Promise.reject(new CraftError('CRAFT_OVERLOADED', `query worker pool: ${this.queueMax} shard tasks are already waiting`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, transfer: [task.offsets.buffer, task.times.buffer, task.values.buffer, task.refs.buffer] as ArrayBuffer[], resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    while (this.waiting.length > 0) {
      let slot = this.slots.find((s) => s.busy === undefined);
      if (slot === undefined && this.slots.length < this.size) slot = this.spawn();
      if (slot === undefined) return;
      const pending = this.waiting.shift()!;
      slot.busy = pending;
      slot.worker.ref();
      slot.worker.postMessage({ id: this.nextId++, task: pending.task }, pending.transfer);
    }
    if (this.slots.every((s) => s.busy === undefined)) {
      this.idleTimer = setTimeout(() => void this.stopWorkers(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  private spawn(): Slot {
    // No inherited --import hooks (a test runner's): a worker needs only the compiled modules.
    const worker = new Worker(WORKER_FILE, { execArgv: [] });
    const slot: Slot = { worker, busy: undefined };
    worker.on('message', (message: { result?: PartialTransfer; error?: string }) => {
      const pending = slot.busy;
      slot.busy = undefined;
      worker.unref();
      if (message.error !== undefined) pending?.reject(new CraftError('CRAFT_QUERY_EXECUTION', message.error));
      else if (message.result !== undefined) pending?.resolve(message.result);
      this.tasksRun += 1;
      this.dispatch();
    });
    const fail = (error: Error): void => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      slot.busy?.reject(new CraftError('CRAFT_QUERY_EXECUTION', `a query worker stopped: ${error.message}`));
      slot.busy = undefined;
      this.dispatch();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (slot.busy !== undefined || this.slots.includes(slot)) fail(new Error(`exit code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private async stopWorkers(): Promise<void> {
    const idle = this.slots.filter((s) => s.busy === undefined);
    for (const slot of idle) this.slots.splice(this.slots.indexOf(slot), 1);
    await Promise.all(idle.map((s) => s.worker.terminate()));
  }

  /**
   * Takes no more tasks, lets the queued and running ones finish (at most `drainMs`; after that
   * they fail), then stops every worker.
   */
  async close(drainMs = 30_000): Promise<void> {
    const deadline = Date.now() + drainMs;
    while ((this.waiting.length > 0 || this.slots.some((s) => s.busy !== undefined)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    this.terminated = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    for (const pending of this.waiting.splice(0)) pending.reject(new CraftError('CRAFT_QUERY_EXECUTION', 'the query worker pool closed'));
    const slots = this.slots.splice(0);
    for (const slot of slots) slot.busy?.reject(new CraftError('CRAFT_QUERY_EXECUTION', 'the query worker pool closed'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
