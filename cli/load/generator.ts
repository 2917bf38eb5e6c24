/**
 * The load generator: closed-loop (each client sends its next request as soon as the last
 * is answered) or paced (a fixed total rate; latency is measured from when a request was
 * due, so a stalled server cannot hide behind fewer requests — no coordinated omission).
 * Keep-alive or a new connection per request. Runs in-process for scenarios and as its own
 * process for benchmarks.
 */
import { Pool } from 'undici';
import { Recorder, summarise, NO_ANSWER, type LatencySummary, type SecondBucket } from './recorder.js';

export interface MetricShape {
  name: string;
  value: number;
  jitter: number;
  type: string;
  tags: Record<string, string>;
  timestamps: 'client' | 'server';
  /** Every sample a series never seen before (an `id` label counting up): a cardinality bomb. */
  uniqueSeries?: boolean;
}

export interface LoadOptions {
  id: string;
  /** Base URL of the ingestion service, e.g. http://127.0.0.1:8080 */
  url: string;
  clients: number;
  mode: 'closed' | 'paced';
  /** Total requests per second (paced). */
  rate?: number;
  durationMs: number;
  batch: number;
  keepAlive: boolean;
  metric: MetricShape;
  timeoutMs: number;
  /** Extra label on every sample, to tell runs apart. */
  runLabel?: string;
  /** Path to post to (default /metrics). */
  path?: string;
  /** Prebuilt request body: the same bytes every time (benchmarks; no timestamps). */
  fixedBody?: string;
  /** The Authorization header every client sends (the tenant with auth off; `Bearer <token>` with it on); default `client-<n>`. */
  authorization?: string;
}

export interface LoadResult {
  id: string;
  clients: number;
  mode: 'closed' | 'paced';
  keepAlive: boolean;
  batch: number;
  durationMs: number;
  requests: number;
  ok: number;
  statusCounts: Record<string, number>;
  successRate: number;
  requestsPerSecond: number;
  okPerSecond: number;
  samplesAcknowledged: number;
  /** Samples in requests that got no answer or a 5xx: they may or may not have been queued. */
  samplesAmbiguous: number;
  samplesPerSecond: number;
  /** Requests without an HTTP answer, by error code or name. */
  errors?: Record<string, number>;
  latencyOk: LatencySummary;
  latencyAll: LatencySummary;
  timeline: SecondBucket[];
}

export class LoadRun {
  readonly recorder: Recorder;
  private stopped = false;
  private readonly pool: Pool;
  private readonly lastTimestamp: number[];
  private samplesAcknowledged = 0;
  /** Why requests got no answer, by error code or name (timeouts, resets, refusals). */
  private readonly errorCounts: Record<string, number> = {};
  private samplesAmbiguous = 0;
  private startedMs = 0;
  private finishedMs = 0;
  readonly done: Promise<LoadResult>;

  constructor(private readonly options: LoadOptions) {
    this.recorder = new Recorder(Date.now());
    this.lastTimestamp = new Array<number>(options.clients).fill(0);
    this.pool = new Pool(options.url, {
      connections: options.clients,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: options.timeoutMs,
    });
    this.done = this.run();
  }

  stop(): void {
    this.stopped = true;
  }

  /** Live counters for progress display. */
  progress(): { requests: number; ok: number; elapsedMs: number } {
    return { requests: this.recorder.count, ok: this.recorder.okCount(), elapsedMs: this.startedMs === 0 ? 0 : Date.now() - this.startedMs };
  }

  /** The next `id` of a unique-series load. */
  private nextSeries = 0;

  private body(client: number): string {
    if (this.options.fixedBody !== undefined) return this.options.fixedBody;
    const { metric, batch, runLabel } = this.options;
    let timestamp = '';
    if (metric.timestamps === 'client') {
      const ts = Math.max(Date.now(), this.lastTimestamp[client]! + 1);
      this.lastTimestamp[client] = ts;
      timestamp = `,"timestamp":${ts}`;
    }
    const tags = { ...metric.tags, client: `c${client}`, ...(runLabel === undefined ? {} : { run: runLabel }) };
    const parts: string[] = new Array(batch);
    for (let i = 0; i < batch; i++) {
      const value = metric.jitter === 0 ? metric.value : metric.value + metric.jitter * (Math.random() * 2 - 1);
      const sampleTags = metric.uniqueSeries === true ? { ...tags, id: String(this.nextSeries++) } : batch === 1 ? tags : { ...tags, slot: `s${i}` };
      parts[i] = `{"name":"${metric.name}","value":${value},"type":"${metric.type}","tags":${JSON.stringify(sampleTags)}${timestamp}}`;
    }
    return `{"metrics":[${parts.join(',')}]}`;
  }

  private async send(client: number, dueMs: number): Promise<void> {
    let status = NO_ANSWER;
    try {
      // The timeout runs from when the request was due, queueing in the pool included: a
      // paced run against a server that cannot keep up ends on time instead of draining a
      // backlog for minutes, and the requests that waited too long count as unanswered.
      const signal = AbortSignal.timeout(Math.max(1, Math.ceil(this.options.timeoutMs - (Date.now() - dueMs))));
      const response = await this.pool.request({
        path: this.options.path ?? '/metrics',
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: this.options.authorization ?? `client-${client}` },
        body: this.body(client),
        reset: !this.options.keepAlive,
        signal,
      });
      status = response.statusCode;
      await response.body.dump();
    } catch (error) {
      status = NO_ANSWER;
      const kind = (error as { code?: string; name?: string }).code ?? (error as Error).name ?? 'Error';
      this.errorCounts[kind] = (this.errorCounts[kind] ?? 0) + 1;
    }
    const now = performance.now() + performance.timeOrigin;
    this.recorder.record(dueMs, now - dueMs, status);
    if (status >= 200 && status < 300) this.samplesAcknowledged += this.options.batch;
    else if (status === NO_ANSWER || status >= 500) this.samplesAmbiguous += this.options.batch;
  }

  private async run(): Promise<LoadResult> {
    this.startedMs = Date.now();
    const endMs = this.startedMs + this.options.durationMs;
    const nowMs = (): number => performance.now() + performance.timeOrigin;
    if (this.options.mode === 'closed') {
      await Promise.all(
        Array.from({ length: this.options.clients }, async (_, client) => {
          while (!this.stopped && Date.now() < endMs) await this.send(client, nowMs());
        }),
      );
    } else {
      const intervalMs = 1_000 / this.options.rate!;
      const inFlight = new Set<Promise<void>>();
      let sent = 0;
      while (!this.stopped && Date.now() < endMs) {
        const dueMs = this.startedMs + sent * intervalMs;
        const waitMs = dueMs - Date.now();
        if (waitMs > 1) await new Promise((r) => setTimeout(r, Math.min(waitMs, 50)));
        if (Date.now() < dueMs - 1) continue;
        const request = this.send(sent % this.options.clients, dueMs);
        inFlight.add(request);
        void request.finally(() => inFlight.delete(request));
        sent += 1;
      }
      await Promise.all(inFlight);
    }
    this.finishedMs = Date.now();
    await this.pool.close();
    return this.result();
  }

  private result(): LoadResult {
    const durationMs = Math.max(1, this.finishedMs - this.startedMs);
    const requests = this.recorder.count;
    const ok = this.recorder.okCount();
    return {
      id: this.options.id,
      clients: this.options.clients,
      mode: this.options.mode,
      keepAlive: this.options.keepAlive,
      batch: this.options.batch,
      durationMs,
      requests,
      ok,
      statusCounts: this.recorder.statusCounts(),
      successRate: requests === 0 ? 0 : ok / requests,
      requestsPerSecond: (requests * 1_000) / durationMs,
      okPerSecond: (ok * 1_000) / durationMs,
      samplesAcknowledged: this.samplesAcknowledged,
      samplesAmbiguous: this.samplesAmbiguous,
      samplesPerSecond: (this.samplesAcknowledged * 1_000) / durationMs,
      errors: { ...this.errorCounts },
      latencyOk: summarise(this.recorder.okLatencies()),
      latencyAll: summarise(this.recorder.allLatencies()),
      timeline: this.recorder.timeline(),
    };
  }
}
