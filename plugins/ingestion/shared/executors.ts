/**
 * Where `prepare()` runs, phase by phase:
 *   InlineExecutor         on the event loop itself (Craft #0, phase 8)
 *   ThreadPerRequest       a new worker thread for every request (phases 1–4)
 *   PoolExecutor           a fixed pool fed by messages, bounded task queue (phase 5)
 *   RingExecutor           a fixed pool fed through shared lock-free rings (phases 6–7)
 */
import { Worker } from 'node:worker_threads';
import { CraftError } from '../../../core/errors.js';
import { RETRY_AFTER_S } from '../../../core/defaults.js';
import { prepare, type Prepared, type PrepareDeps, type RawRequest } from '../../../core/ingestion/protocol.js';
import { SharedRing } from './ring.js';
import { decodePrepared, encodeRequest } from './prepare-codec.js';
import type { ParserName, WorkerSetup } from './workers/prepare-worker.js';
import { PARSERS } from './workers/prepare-worker-parsers.js';
import { unlimited, type RateLimiter } from '../../../core/ingestion/rate-limit.js';
import type { SharedRateLimiter } from './shared-limiter.js';

const WORKER_URL = new URL('./workers/prepare-worker.js', import.meta.url);
/**
 * Workers get no inherited command-line flags: the code they run is plain compiled JS, and
 * flags a host process was started with (a test runner's loaders, a profiler) would make
 * every thread start far slower — which would distort phase 1's cost. (Hooks that arrive
 * through NODE_OPTIONS still load in every thread; keep them out of the process.)
 */
const WORKER_EXEC_ARGV: string[] = [];

export interface PrepareExecutor {
  start(): Promise<void>;
  /** Prepares one request; rejects with CRAFT_OVERLOADED when the executor's queue is full. */
  run(request: RawRequest, nowMs: number): Promise<Prepared>;
  stop(): Promise<void>;
  /** Counters that show this executor's cost (threads started, queue depth, overflows). */
  stats(): Record<string, number>;
}

export interface ExecutorOptions {
  parser: ParserName;
  limits: PrepareDeps['limits'];
  /** See PrepareDeps.forwardSeedBody; honoured by the inline executor with the native parser. */
  forwardSeedBody?: boolean;
}

/** A copy of the body in its own ArrayBuffer, so it can be transferred or shared. */
const ownBody = (request: RawRequest): RawRequest => ({ ...request, body: new Uint8Array(request.body) });

export class InlineExecutor implements PrepareExecutor {
  private readonly forwardSeedBody: boolean;
  constructor(private readonly options: ExecutorOptions, private readonly limiter: RateLimiter) {
    this.forwardSeedBody = options.forwardSeedBody === true && options.parser === 'native';
  }
  async start(): Promise<void> {}
  async run(request: RawRequest, nowMs: number): Promise<Prepared> {
    return prepare(request, { limits: this.options.limits, limiter: this.limiter, parseJson: PARSERS[this.options.parser], nowMs, forwardSeedBody: this.forwardSeedBody });
  }
  async stop(): Promise<void> {}
  stats(): Record<string, number> {
    return {};
  }
}

/** How long stopping waits for running request threads before terminating them. */
const THREADS_STOP_WAIT_MS = 5_000;

export class ThreadPerRequestExecutor implements PrepareExecutor {
  private threadsStarted = 0;
  private threadsRunning = 0;
  private readonly running = new Set<Worker>();
  constructor(private readonly options: ExecutorOptions, private readonly limiter: SharedRateLimiter | null) {}
  async start(): Promise<void> {}
  run(request: RawRequest, nowMs: number): Promise<Prepared> {
    const setup: WorkerSetup = { mode: 'once', parser: this.options.parser, limits: this.options.limits, limiterBuffer: this.limiter?.buffer ?? null, request: ownBody(request), nowMs };
    this.threadsStarted += 1;
    this.threadsRunning += 1;
    return new Promise((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { workerData: setup, execArgv: WORKER_EXEC_ARGV });
      this.running.add(worker);
      let answered = false;
      worker.once('message', (prepared: Prepared) => {
        answered = true;
        resolve(prepared);
      });
      worker.once('error', reject);
      worker.once('exit', () => {
        this.threadsRunning -= 1;
        this.running.delete(worker);
        if (!answered) reject(new Error('worker exited without an answer'));
      });
    });
  }
  async stop(): Promise<void> {
    const deadline = Date.now() + THREADS_STOP_WAIT_MS;
    while (this.threadsRunning > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await Promise.all([...this.running].map((worker) => worker.terminate()));
  }
  stats(): Record<string, number> {
    return { threadsStarted: this.threadsStarted, threadsRunning: this.threadsRunning, lockWaits: this.limiter?.lockWaits().reduce((a, b) => a + b, 0) ?? 0 };
  }
}

interface Waiting {
  resolve: (prepared: Prepared) => void;
  reject: (error: unknown) => void;
}

/** Shared by the pool and ring executors: the workers, the ids, the answers. */
abstract class PooledExecutor implements PrepareExecutor {
  protected readonly workers: Worker[] = [];
  protected readonly waiting = new Map<number, Waiting>();
  protected nextId = 1;
  protected stopping = false;

  constructor(
    protected readonly options: ExecutorOptions,
    protected readonly limiter: SharedRateLimiter | null,
    protected readonly size: number,
    protected readonly queueCapacity: number,
  ) {}

  protected abstract setup(): WorkerSetup;
  abstract run(request: RawRequest, nowMs: number): Promise<Prepared>;

  async start(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.size }, async () => {
        const worker = new Worker(WORKER_URL, { workerData: this.setup(), execArgv: WORKER_EXEC_ARGV });
        worker.on('message', (message: { id: number; prepared?: Prepared; overflow?: Uint8Array }) => {
          if (message.overflow !== undefined) this.answer(decodePrepared(message.overflow));
          else this.answer({ id: message.id, prepared: message.prepared! });
        });
        worker.on('error', (error) => {
          // A worker that dies fails what waits; the phase answers those requests 500.
          for (const waiting of this.waiting.values()) waiting.reject(error);
          this.waiting.clear();
        });
        await new Promise<void>((resolve) => worker.once('online', () => resolve()));
        this.workers.push(worker);
      }),
    );
  }

  protected answer({ id, prepared }: { id: number; prepared: Prepared }): void {
    const waiting = this.waiting.get(id);
    if (waiting === undefined) return;
    this.waiting.delete(id);
    waiting.resolve(prepared);
  }

  /**
   * Admits a task into the bounded queue and hands it to `dispatch` with its id; the
   * promise settles with the worker's answer. A full queue rejects with CRAFT_OVERLOADED.
   */
  protected submit(dispatch: (id: number) => void): Promise<Prepared> {
    if (this.waiting.size >= this.queueCapacity) {
      return Promise.reject(new CraftError('CRAFT_OVERLOADED', `work queue holds WORK_QUEUE_CAPACITY=${this.queueCapacity} tasks`, { details: { retryAfterS: RETRY_AFTER_S } }));
    }
    const id = this.nextId;
    this.nextId = (this.nextId + 1) % 0x7fffffff || 1;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      dispatch(id);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const deadline = Date.now() + 5_000;
    while (this.waiting.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }

  stats(): Record<string, number> {
    return { workers: this.workers.length, queued: this.waiting.size, queueCapacity: this.queueCapacity, lockWaits: this.limiter?.lockWaits().reduce((a, b) => a + b, 0) ?? 0 };
  }
}

export class PoolExecutor extends PooledExecutor {
  private turn = 0;
  protected setup(): WorkerSetup {
    return { mode: 'pool', parser: this.options.parser, limits: this.options.limits, limiterBuffer: this.limiter?.buffer ?? null };
  }
  run(request: RawRequest, nowMs: number): Promise<Prepared> {
    return this.submit((id) => {
      const body = new Uint8Array(request.body);
      const worker = this.workers[this.turn++ % this.workers.length]!;
      worker.postMessage({ id, request: { ...request, body }, nowMs }, [body.buffer]);
    });
  }
}

/** Ring slots: 256 of 256 KiB each way; larger messages go over the port (counted). */
const RING_SLOTS = 256;
const RING_SLOT_BYTES = 256 * 1024;

export class RingExecutor extends PooledExecutor {
  private readonly requests = SharedRing.create(RING_SLOTS, RING_SLOT_BYTES);
  private readonly responses = SharedRing.create(RING_SLOTS, RING_SLOT_BYTES);
  private readonly stopFlag = new SharedArrayBuffer(4);
  private overflowRequests = 0;
  private reading: Promise<void> = Promise.resolve();

  protected setup(): WorkerSetup {
    return {
      mode: 'ring',
      parser: this.options.parser,
      limits: this.options.limits,
      limiterBuffer: this.limiter?.buffer ?? null,
      requestRing: this.requests.buffer,
      responseRing: this.responses.buffer,
      stopFlag: this.stopFlag,
    };
  }

  override async start(): Promise<void> {
    await super.start();
    this.reading = this.readAnswers();
  }

  /** The main thread drains the answer ring, sleeping on it (Atomics.waitAsync) when empty. */
  private async readAnswers(): Promise<void> {
    while (!this.stopping) {
      const seen = this.responses.signalValue();
      const bytes = this.responses.tryPop();
      if (bytes === undefined) {
        await this.responses.waitForPushAsync(seen, 100);
        continue;
      }
      this.answer(decodePrepared(bytes));
    }
  }

  run(request: RawRequest, nowMs: number): Promise<Prepared> {
    return this.submit((id) => {
      const message = encodeRequest(id, request, nowMs);
      if (!this.requests.tryPush(message)) {
        // Larger than a slot, or the ring is full: prepared here on the main thread instead
        // (ring workers block on the ring and do not read their port). Counted, so it shows.
        this.overflowRequests += 1;
        const limiter = this.limiter ?? unlimited;
        this.answer({ id, prepared: prepare(request, { limits: this.options.limits, limiter, parseJson: PARSERS[this.options.parser], nowMs }) });
      }
    });
  }

  override async stop(): Promise<void> {
    this.stopping = true;
    Atomics.store(new Int32Array(this.stopFlag), 0, 1);
    this.requests.wakeAll();
    this.responses.wakeAll();
    await this.reading;
    await super.stop();
  }

  override stats(): Record<string, number> {
    return { ...super.stats(), overflowRequests: this.overflowRequests };
  }
}
