/**
 * Craft #1 phase 1 — thread per request. Every request gets a new worker thread that
 * rate-limits (one global lock over shared state), parses with the seed's O(n²) substring
 * parser and validates; the main thread then appends to the queue one request at a time
 * (the seed's blocking write under a mutex) and closes the connection after the answer.
 * Bottlenecks to see: thread start-up (~tens of ms), serialised appends, no keep-alive.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { PhaseServer } from './shared/phase-server.js';
import { ThreadPerRequestExecutor } from './shared/executors.js';
import { sharedLimiter } from './shared/limiters.js';

export default definePlugin({
  id: 'ingestion.thread-per-request',
  craft: 1,
  phase: 1,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'A new worker thread per request, O(n²) seed parser, one global lock, serial appends, no keep-alive',
  create: (context) =>
    new PhaseServer(context, {
      id: 'ingestion.thread-per-request',
      keepAlive: false,
      appender: { kind: 'serial' },
      executor: new ThreadPerRequestExecutor({ parser: 'seed-substring', limits: context.limits }, sharedLimiter(context.limits, 1)),
    }),
});
