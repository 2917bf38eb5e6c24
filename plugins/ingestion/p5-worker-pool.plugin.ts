/**
 * Craft #1 phase 5 — bounded worker pool. Threads are started once (one per core unless
 * configured) and fed requests as messages; the task queue holds at most 10,000 requests
 * (`workQueueCapacity`) and answers 503 with Retry-After beyond that. No more thread
 * start-up per request, and overload is answered instead of absorbed.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { PoolExecutor } from './shared/executors.js';
import { LIMITER_SHARDS, poolSize, sharedLimiter, WRITER_BUFFERED_BYTES_MAX } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.worker-pool',
  craft: 1,
  phase: 5,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'A fixed pool of worker threads with a bounded task queue of 10,000; 503 when full',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.worker-pool',
      keepAlive: false,
      appender: { kind: 'batching', concurrency: 1, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new PoolExecutor({ parser: 'single-pass', limits: context.limits }, sharedLimiter(context.limits, LIMITER_SHARDS), poolSize(context.limits), context.limits.workQueueCapacity),
    }),
});
