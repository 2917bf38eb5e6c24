/**
 * The skeleton every Craft #1 phase shares: a node:http server fed with the actor's
 * accepted sockets, a body limit, and the shared protocol. A phase is a choice of three
 * parts — where `prepare()` runs (executor), how batches reach the queue (appender), and
 * whether connections are kept alive — so each phase plugin states only what it changes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CraftError } from '../../../core/errors.js';
import { complete, REPLIES, StatsCounter, json, type Appender, type RawRequest, type Reply } from '../../../core/ingestion/protocol.js';
import { bodyOrAnswer, FedHttpServer, toRawRequest, writeReply } from '../../../core/ingestion/node-http.js';
import { RawHttpServer } from './raw-http.js';
import { BatchingWriter } from './batching-writer.js';
import { InlineExecutor, type PrepareExecutor } from './executors.js';
import { loopLimiter, WRITER_BUFFERED_BYTES_MAX } from './limiters.js';
import type { IngestionLimits, IngestionServer, IngestionServerContext, IngestionStats } from '../../../core/slots/ingestion.js';

export type AppenderDesign =
  /** One append at a time, in arrival order: the seed's blocking write under a global lock. */
  | { kind: 'serial' }
  /** The async writer: a background drain with group commit, `concurrency` appends in flight. */
  | { kind: 'batching'; concurrency: number; bufferedBytesMax: number };

export interface PhaseDesign {
  id: string;
  keepAlive: boolean;
  appender: AppenderDesign;
  executor: PrepareExecutor;
  /**
   * The HTTP layer: node:http (default), or the phase's own HTTP/1.1 server on the raw
   * sockets (raw-http.ts), which skips node:http's per-request stream objects.
   */
  http?: 'node' | 'raw';
}

/**
 * Phase 8's design, shared by its first event loop (in the actor's process) and the loops it
 * forks: keep-alive, the chosen HTTP layer, prepare on the loop with the native parser and
 * seed bodies forwarded as received, a per-loop limiter, group commit.
 */
export function eventLoopDesign(id: string, limits: IngestionLimits, appendsInFlight: number, http: 'raw' | 'node'): PhaseDesign {
  return {
    id,
    keepAlive: true,
    http,
    appender: { kind: 'batching', concurrency: appendsInFlight, bufferedBytesMax: WRITER_BUFFERED_BYTES_MAX },
    executor: new InlineExecutor({ parser: 'native', limits, forwardSeedBody: true }, loopLimiter(limits)),
  };
}

export class PhaseServer implements IngestionServer {
  private readonly counters: StatsCounter;
  private readonly http: FedHttpServer | RawHttpServer;
  private readonly appendParts: Appender;
  private readonly writer: BatchingWriter | undefined;
  private inFlight = 0;

  constructor(
    private readonly context: IngestionServerContext,
    private readonly design: PhaseDesign,
  ) {
    this.counters = new StatsCounter(design.id);
    this.http =
      design.http === 'raw'
        ? new RawHttpServer((request) => this.handle(request), this.counters, {
            bodyBytesMax: context.limits.bodyBytesMax,
            keepAlive: design.keepAlive,
            keepAliveTimeoutMs: context.limits.keepAliveTimeoutMs,
          })
        : new FedHttpServer((request, response) => void this.onRequest(request, response), this.counters, {
            keepAlive: design.keepAlive,
            keepAliveTimeoutMs: context.limits.keepAliveTimeoutMs,
          });
    if (design.appender.kind === 'serial') {
      let previous: Promise<unknown> = Promise.resolve();
      this.appendParts = (client, parts) => {
        const mine = previous.then(async () => {
          for (const part of parts) await context.sink.appendEncoded(client, part);
        });
        previous = mine.catch(() => undefined);
        return mine;
      };
    } else {
      const writer = new BatchingWriter(context.sink, {
        concurrency: design.appender.concurrency,
        bufferedBytesMax: design.appender.bufferedBytesMax,
        groupKey: (client) => `p${context.sink.partitionOf(client)}`,
      });
      this.writer = writer;
      this.appendParts = (client, parts, samples) => writer.writeAll(client, parts, samples);
    }
  }

  async start(): Promise<void> {
    await this.design.executor.start();
  }

  accept(socket: Socket): void {
    this.http.accept(socket);
  }

  /** node:http: read the body under its limit, handle, answer. */
  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const close = !this.design.keepAlive || this.http.isDraining;
    const body = await bodyOrAnswer(request, response, this.context.limits.bodyBytesMax, this.counters);
    if (body === undefined) {
      this.counters.requests += 1;
      return;
    }
    const reply = await this.handle(toRawRequest(request, body));
    writeReply(response, reply, close || this.http.isDraining || reply.status === 500);
  }

  /** One request, whatever the HTTP layer: prepare (where the executor runs it), then complete. */
  private async handle(request: RawRequest): Promise<Reply> {
    this.counters.requests += 1;
    this.inFlight += 1;
    try {
      let prepared;
      try {
        prepared = await this.design.executor.run(request, this.context.clock.now());
      } catch (error) {
        if (error instanceof CraftError && error.code === 'CRAFT_OVERLOADED') {
          this.counters.rejectedOverload += 1;
          return REPLIES.overloaded;
        }
        throw error;
      }
      return await complete(prepared, this.context.sink, this.counters, this.appendParts, () => this.statsView?.() ?? this.stats());
    } catch (error) {
      this.context.log.error('request failed', { phase: this.design.id, error });
      return json(500, { error: 'internal error' });
    } finally {
      this.inFlight -= 1;
    }
  }

  async drain(deadlineMs: number): Promise<void> {
    await this.http.drain(deadlineMs);
    await this.writer?.idle();
    await this.design.executor.stop();
  }

  /** What `GET /stats` and `GET /metrics` answer, when not this server's own counters (phase 8's loops answer for all of them). */
  statsView: (() => IngestionStats) | undefined;

  stats(): IngestionStats {
    return { ...this.counters.snapshot(), detail: { inFlight: this.inFlight, ...this.design.executor.stats(), ...(this.writer === undefined ? {} : prefixed('writer', this.writer.stats)) } };
  }
}

const prefixed = (prefix: string, values: object): Record<string, number> =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [`${prefix}.${k}`, v as number]));
