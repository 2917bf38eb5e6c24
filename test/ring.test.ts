/**
 * The lock-free ring and the shared limiter, under real concurrency (worker threads):
 * every message is taken exactly once (no loss, no duplicate), each producer's messages
 * come out in the order it pushed them, and the limiter never admits more than its limit
 * in any window even when several threads admit at once.
 */
import t from 'tap';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { SharedRing } from '../plugins/ingestion/shared/ring.js';
import { SharedRateLimiter } from '../plugins/ingestion/shared/shared-limiter.js';

const WORKER = new URL('./helpers/ring-worker.js', import.meta.url);
const runWorker = <T>(data: unknown): Promise<T> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: data });
    worker.once('message', (value: T) => {
      resolve(value);
      void worker.terminate();
    });
    worker.once('error', reject);
  });

t.test('property (single thread): the ring behaves as a bounded FIFO', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom(2, 4, 8, 16), fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant(null)), { maxLength: 200 }), (capacity, ops) => {
      const ring = SharedRing.create(capacity, 32);
      const model: number[][] = [];
      for (const op of ops) {
        if (op === null) {
          const got = ring.tryPop();
          const expected = model.shift();
          if ((got === undefined) !== (expected === undefined)) return false;
          if (got !== undefined && JSON.stringify([...got]) !== JSON.stringify(expected)) return false;
        } else {
          const pushed = ring.tryPush(op);
          const shouldPush = model.length < capacity && op.length <= 32;
          if (pushed !== shouldPush) return false;
          if (pushed) model.push([...op]);
        }
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('property (threads): concurrent producers and consumers lose nothing, duplicate nothing, keep each producer\'s order', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 1_000 }), fc.constantFrom(2, 8, 64), async (producers, consumers, count, capacity) => {
      const ring = SharedRing.create(capacity, 8);
      const taken = new SharedArrayBuffer(4);
      const total = producers * count;
      const results = await Promise.all([
        ...Array.from({ length: consumers }, () => runWorker<[number, number][]>({ role: 'consumer', ring: ring.buffer, taken, total })),
        ...Array.from({ length: producers }, (_, id) => runWorker<[number, number][]>({ role: 'producer', ring: ring.buffer, id, count })),
      ]);
      const consumed = results.slice(0, consumers);
      const all = consumed.flat();
      if (all.length !== total) return false;
      const seen = new Set(all.map(([p, s]) => p * 1_000_000 + s));
      if (seen.size !== total) return false;
      for (let p = 0; p < producers; p++) for (let s = 0; s < count; s++) if (!seen.has(p * 1_000_000 + s)) return false;
      // Each consumer sees every producer's messages in increasing order.
      for (const list of consumed) {
        const last = new Map<number, number>();
        for (const [p, s] of list) {
          if ((last.get(p) ?? -1) >= s) return false;
          last.set(p, s);
        }
      }
      return ring.tryPop() === undefined;
    }),
    { numRuns: 10 },
  );
  t.pass();
});

t.test('property (threads): the shared limiter admits exactly its limit per client when threads race for it', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 500 }), fc.constantFrom(1, 4, 16), fc.integer({ min: 2, max: 3 }), fc.integer({ min: 1, max: 8 }), async (limit, shards, threads, clients) => {
      const limiter = SharedRateLimiter.create(limit, shards);
      // 250 ms of racing, every call at one instant (a loaded machine may start the threads far apart), so each client gets exactly `limit`.
      const atMs = Date.now();
      const admitted = (await Promise.all(Array.from({ length: threads }, () => runWorker<[number, number][]>({ role: 'limiter', limiter: limiter.buffer, durationMs: 250, clients, atMs })))).flat();
      for (let c = 0; c < clients; c++) {
        if (admitted.filter(([client]) => client === c).length !== limit) return false;
      }
      return true;
    }),
    { numRuns: 12 },
  );
  const contended = SharedRateLimiter.create(1_000_000, 1);
  await Promise.all(Array.from({ length: 2 }, () => runWorker({ role: 'limiter', limiter: contended.buffer, durationMs: 200, clients: 4 })));
  t.ok(contended.lockWaits()[0]! >= 0, `lock waits under contention with one global lock: ${contended.lockWaits()[0]}`);
});
