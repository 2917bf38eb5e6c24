/**
 * Craft #1 phase 7 — HTTP keep-alive. Phase 6, but connections persist across requests
 * (closed after `keepAliveTimeoutMs` idle) so a client pays the TCP handshake once, not per
 * request. Run it under `craft up` with `http.backlog` raised (e.g. 4096) for connection
 * bursts; the backlog belongs to the actor's listening socket.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { RingExecutor } from './shared/executors.js';
import { LIMITER_SHARDS, poolSize, sharedLimiter, WRITER_BUFFERED_BYTES_MAX } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.keep-alive',
  craft: 1,
  phase: 7,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Phase 6 with persistent connections (keep-alive, idle timeout)',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.keep-alive',
      keepAlive: true,
      appender: { kind: 'batching', concurrency: 1, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new RingExecutor({ parser: 'single-pass', limits: context.limits }, sharedLimiter(context.limits, LIMITER_SHARDS), poolSize(context.limits), context.limits.workQueueCapacity),
    }),
});
