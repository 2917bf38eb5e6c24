/**
 * Craft #1 phase 2 — async writer (producer/consumer). Still a thread per request and the
 * O(n²) parser, but handlers no longer append themselves: they hand their batch to a
 * bounded buffer that one background writer drains, joining everything waiting for a
 * client into one queue message (group commit). Requests still wait for the queue's
 * acknowledgement before 2xx — unlike the seed, which answered before writing.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { ThreadPerRequestExecutor } from './shared/executors.js';
import { sharedLimiter, WRITER_BUFFERED_BYTES_MAX } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.async-writer',
  craft: 1,
  phase: 2,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Phase 1 plus a background writer that group-commits buffered batches to the queue',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.async-writer',
      keepAlive: false,
      appender: { kind: 'batching', concurrency: 1, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new ThreadPerRequestExecutor({ parser: 'seed-substring', limits: context.limits }, sharedLimiter(context.limits, 1)),
    }),
});
