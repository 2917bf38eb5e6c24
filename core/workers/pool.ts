/**
 * A small pool of worker threads for CPU-bound tasks (query shards, chunk decoding). Workers
 * start on first use and stop after `idleMs` without work, so an idle actor holds no threads;
 * a worker holds the process open only while it has a task. A task that fails in a worker
 * fails with the worker's message; a worker that dies is replaced on the next task.
 *
 * Limits: at most `size` workers, and `queueMax` tasks waiting — past that `run` is refused
 * (CRAFT_OVERLOADED) instead of piling up. The worker module answers with `serveTasks`
 * (core/workers/serve.ts); typed arrays named by `transfer` move instead of being copied.
 */
import { Worker } from 'node:worker_threads';
import { CraftError, type ErrorCode } from '../errors.js';

export interface WorkerPoolOptions<T> {
  /** The compiled worker module (it calls `serveTasks`). */
  file: URL;
  /** What the pool is for, in messages ("query worker pool"). */
  name: string;
  /** The error code a failed task rejects with. */
  errorCode: ErrorCode;
  size: number;
  idleMs?: number;
  queueMax?: number;
  /** Buffers of a task to move to the worker (the caller gives them up). */
  transfer?: (task: T) => ArrayBuffer[];
}

interface Pending<T, R> {
  task: T;
  transfer: ArrayBuffer[];
  resolve: (result: R) => void;
  reject: (error: Error) => void;
}

interface Slot<T, R> {
  worker: Worker;
  busy: Pending<T, R> | undefined;
}

export class WorkerPool<T, R> {
  private readonly slots: Slot<T, R>[] = [];
  private readonly waiting: Pending<T, R>[] = [];
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set once workers are stopped for good; until then a closing pool still takes the tasks in flight. */
  private terminated = false;
  private readonly idleMs: number;
  private readonly queueMax: number;
  /** Tasks run in workers so far. */
  tasksRun = 0;

  constructor(private readonly options: WorkerPoolOptions<T>) {
    this.idleMs = options.idleMs ?? 30_000;
    this.queueMax = options.queueMax ?? 1_000;
  }

  get size(): number {
    return this.options.size;
  }

  run(task: T): Promise<R> {
    if (this.terminated) return Promise.reject(new CraftError(this.options.errorCode, `the ${this.options.name} is closed`));
    if (this.waiting.length >= this.queueMax) return Promise.reject(new CraftError('CRAFT_OVERLOADED', `${this.options.name}: ${this.queueMax} tasks are already waiting`));
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, transfer: this.options.transfer?.(task) ?? [], resolve, reject });
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
      if (slot === undefined && this.slots.length < this.options.size) slot = this.spawn();
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

  private spawn(): Slot<T, R> {
    // No inherited --import hooks (a test runner's): a worker needs only the compiled modules.
    const worker = new Worker(this.options.file, { execArgv: [] });
    const slot: Slot<T, R> = { worker, busy: undefined };
    worker.on('message', (message: { result?: R; error?: string }) => {
      const pending = slot.busy;
      slot.busy = undefined;
      worker.unref();
      if (message.error !== undefined) pending?.reject(new CraftError(this.options.errorCode, message.error));
      else pending?.resolve(message.result as R);
      this.tasksRun += 1;
      this.dispatch();
    });
    const fail = (error: Error): void => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      slot.busy?.reject(new CraftError(this.options.errorCode, `a worker of the ${this.options.name} stopped: ${error.message}`));
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
    const closed = (): CraftError => new CraftError(this.options.errorCode, `the ${this.options.name} closed`);
    for (const pending of this.waiting.splice(0)) pending.reject(closed());
    const slots = this.slots.splice(0);
    for (const slot of slots) slot.busy?.reject(closed());
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
