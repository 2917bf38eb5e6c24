/**
 * Craft #1 phase 4 — sharded per-client rate limiting. Phase 3 with the limiter's single
 * global lock split into 16 stripes: a client hashes to one stripe, so only clients of the
 * same stripe contend. `lockWaits` in the stats shows the contention that disappears.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { ThreadPerRequestExecutor } from './shared/executors.js';
import { LIMITER_SHARDS, sharedLimiter, WRITER_BUFFERED_BYTES_MAX } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.sharded-limiter',
  craft: 1,
  phase: 4,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Phase 3 with the rate limiter split into 16 lock stripes by client hash',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.sharded-limiter',
      keepAlive: false,
      appender: { kind: 'batching', concurrency: 1, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new ThreadPerRequestExecutor({ parser: 'single-pass', limits: context.limits }, sharedLimiter(context.limits, LIMITER_SHARDS)),
    }),
});
