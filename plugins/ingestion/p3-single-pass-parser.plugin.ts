/**
 * Craft #1 phase 3 — single-pass JSON parser. Phase 2 with the O(n²) seed parser replaced
 * by an O(n) one (plugins/ingestion/shared/parsers/single-pass.ts): one cursor, one walk over the
 * body. Large batches are where it shows: a 1000-metric body is read once, not ~1000 times.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { ThreadPerRequestExecutor } from './shared/executors.js';
import { sharedLimiter, WRITER_BUFFERED_BYTES_MAX } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.single-pass-parser',
  craft: 1,
  phase: 3,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Phase 2 with an O(n) single-pass JSON parser instead of the O(n²) substring parser',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.single-pass-parser',
      keepAlive: false,
      appender: { kind: 'batching', concurrency: 1, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
      executor: new ThreadPerRequestExecutor({ parser: 'single-pass', limits: context.limits }, sharedLimiter(context.limits, 1)),
    }),
});
