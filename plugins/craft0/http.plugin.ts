/**
 * Craft #0 ingestion: a single-threaded HTTP server that handles one request at a time —
 * the next request waits until the previous one is fully answered (queue append included)
 * — and closes every connection after its response, as the seed's PoC did.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { definePlugin } from '../../core/plugins/define.js';
import { complete, prepare, StatsCounter } from '../../core/ingestion/protocol.js';
import { bodyOrAnswer, FedHttpServer, toRawRequest, writeReply } from '../../core/ingestion/node-http.js';
import { SlidingWindowLimiter } from '../../core/ingestion/rate-limit.js';
import type { IngestionServer, IngestionServerContext, IngestionStats } from '../../core/slots/ingestion.js';

class SingleThreadedHttp implements IngestionServer {
  private readonly counters = new StatsCounter('craft0.http');
  private readonly http: FedHttpServer;
  private readonly limiter: SlidingWindowLimiter;
  /** The one request being served; the next waits for it. */
  private turn: Promise<void> = Promise.resolve();

  constructor(private readonly context: IngestionServerContext) {
    this.limiter = new SlidingWindowLimiter(context.limits.rateLimitPerSecond);
    this.http = new FedHttpServer((request, response) => this.onRequest(request, response), this.counters, { keepAlive: false });
  }

  async start(): Promise<void> {}

  accept(socket: Socket): void {
    this.http.accept(socket);
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    this.counters.requests += 1;
    const previous = this.turn;
    this.turn = (async () => {
      await previous;
      const body = await bodyOrAnswer(request, response, this.context.limits.bodyBytesMax, this.counters);
      if (body === undefined) return;
      const prepared = prepare(toRawRequest(request, body), {
        limits: this.context.limits,
        limiter: this.limiter,
        parseJson: JSON.parse,
        nowMs: this.context.clock.now(),
      });
      const reply = await complete(prepared, this.context.sink, this.counters);
      writeReply(response, reply, true);
    })().catch((error: unknown) => {
      this.context.log.error('request failed', { error });
      writeReply(response, { status: 500, body: JSON.stringify({ error: 'internal error' }), contentType: 'application/json' }, true);
    });
  }

  drain(deadlineMs: number): Promise<void> {
    return this.http.drain(deadlineMs);
  }

  stats(): IngestionStats {
    return this.counters.snapshot();
  }
}

export default definePlugin({
  id: 'craft0.http',
  craft: 0,
  phase: 0,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Single-threaded HTTP: one request at a time, connection closed after each response',
  create: (context) => new SingleThreadedHttp(context),
});
