/**
 * Test worker for the ring property test: produces `count` messages (producer id, sequence)
 * or consumes until `total` messages have been taken by all consumers together.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedRing } from '../../plugins/ingestion/shared/ring.js';
import { SharedRateLimiter } from '../../plugins/ingestion/shared/shared-limiter.js';

interface Job {
  role: 'producer' | 'consumer' | 'limiter';
  ring?: SharedArrayBuffer;
  taken?: SharedArrayBuffer;
  id?: number;
  count?: number;
  total?: number;
  limiter?: SharedArrayBuffer;
  durationMs?: number;
  clients?: number;
  /** The limiter's time for every call (so threads started at different moments still race inside one window). */
  atMs?: number;
}

const job = workerData as Job;
if (job.role === 'producer') {
  const ring = new SharedRing(job.ring!);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let seq = 0; seq < job.count!; ) {
    const message = new Uint8Array(8);
    new DataView(message.buffer).setUint32(0, job.id!);
    new DataView(message.buffer).setUint32(4, seq);
    if (ring.tryPush(message)) seq++;
    else Atomics.wait(pause, 0, 0, 0.05); // full: yield instead of burning the core
  }
  parentPort!.postMessage([]);
} else if (job.role === 'consumer') {
  const ring = new SharedRing(job.ring!);
  const taken = new Int32Array(job.taken!);
  const got: [number, number][] = [];
  while (Atomics.load(taken, 0) < job.total!) {
    const seen = ring.signalValue();
    const message = ring.tryPop();
    if (message === undefined) {
      ring.waitForPush(seen, 1); // empty: sleep until a push (or 1 ms, to recheck the total)
      continue;
    }
    Atomics.add(taken, 0, 1);
    const view = new DataView(message.buffer);
    got.push([view.getUint32(0), view.getUint32(4)]);
  }
  parentPort!.postMessage(got);
} else {
  // Hammer the shared limiter (at one instant when the parent gives one, else on the real clock); report the admitted requests per client.
  const limiter = new SharedRateLimiter(job.limiter!);
  const admitted: [number, number][] = [];
  const end = Date.now() + job.durationMs!;
  for (let i = 0; ; i++) {
    const now = Date.now();
    if (now >= end) break;
    const client = i % job.clients!;
    const at = job.atMs ?? now;
    if (limiter.admit(`client-${client}`, at)) admitted.push([client, at]);
  }
  parentPort!.postMessage(admitted);
}
