/**
 * Craft #1 phase 8 — event-driven. The design Node is built for: one event loop (epoll
 * underneath) owns every connection — 10,000+ of them cost memory, not threads — and does
 * the whole request itself with the native JSON parser; no thread hop, no locks (the
 * limiter belongs to the loop). The async writer keeps 16 appends in flight and joins
 * waiting batches per client into one queue message, so the queue sees few, large appends.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from '../../core/ingestion/phase-server.js';
import { InlineExecutor } from '../../core/ingestion/executors.js';
import { loopLimiter, WRITER_BUFFERED_BYTES_MAX } from '../../core/ingestion/limiters.js';

export default definePlugin({
  id: 'ingestion.event-driven',
  craft: 1,
  phase: 8,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'One event loop for all connections, native parser, group commit with 16 appends in flight',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.event-driven',
      keepAlive: true,
      appender: { kind: 'batching', concurrency: 16, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new InlineExecutor({ parser: 'native', limits: context.limits }, loopLimiter(context.limits)),
    }),
});
