/**
 * Craft #1 phase 6 — lock-free ring buffers. The pool of phase 5, but requests and answers
 * travel through two SharedArrayBuffer rings (a bounded MPMC queue built on Atomics
 * compare-and-swap, plugins/ingestion/shared/ring.ts) instead of message ports: no structured clone,
 * no per-message port handling; the main thread sleeps on the answer ring with
 * Atomics.waitAsync. Messages larger than a slot (256 KiB) are prepared on the main thread.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { RingExecutor } from './shared/executors.js';
import { LIMITER_SHARDS, poolSize, sharedLimiter, WRITER_BUFFERED_BYTES_MAX } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.ring-buffer',
  craft: 1,
  phase: 6,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Phase 5 with requests and answers passed through lock-free SharedArrayBuffer rings',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.ring-buffer',
      keepAlive: false,
      appender: { kind: 'batching', concurrency: 1, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new RingExecutor({ parser: 'single-pass', limits: context.limits }, sharedLimiter(context.limits, LIMITER_SHARDS), poolSize(context.limits), context.limits.workQueueCapacity),
    }),
});
