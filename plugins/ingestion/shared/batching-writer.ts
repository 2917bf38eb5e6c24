/**
 * The async writer (Craft #1 phase 2 onward): request handlers hand their encoded batch to
 * a bounded buffer and wait; a background writer drains the buffer, joins what waits for
 * the same client (one partition) into one queue message — `[batch1,batch2,…]`, a byte
 * concatenation, nothing is decoded — appends it, and answers all of those requests at
 * once when the queue acknowledges: group commit. A request is still answered 2xx only
 * after its samples are in the queue; what changes is that many requests share an append.
 *
 * `concurrency` appends may be in flight; while they are, new batches accumulate, so the
 * group grows with the load by itself (no timer, no added latency when idle).
 */
import { CraftError } from '../../../core/errors.js';
import { NATS_PAYLOAD_BYTES_MAX, RETRY_AFTER_S } from '../../../core/defaults.js';
import type { IngestionSink } from '../../../core/slots/ingestion.js';

export interface BatchingWriterOptions {
  /**
   * What may share one queue message: batches whose clients land in the same partition.
   * Default: the client itself.
   */
  groupKey?: (client: string) => string;
  /** Bytes waiting in the buffer at most; beyond it writes are refused (503). */
  bufferedBytesMax: number;
  /** Appends in flight at once. */
  concurrency: number;
  /** Bytes joined into one queue message at most. */
  groupBytesMax?: number;
}

interface Pending {
  client: string;
  payload: Uint8Array;
  samples: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface WriterStats {
  appends: number;
  batches: number;
  samples: number;
  /** Largest number of requests answered by one append. */
  largestGroup: number;
}

const OPEN = 0x5b;
const COMMA = 0x2c;
const CLOSE = 0x5d;

/** Joins encoded batches into one JSON array message. */
export function joinPayloads(payloads: Uint8Array[]): Uint8Array {
  if (payloads.length === 1) return payloads[0]!;
  let size = 1 + payloads.length;
  for (const p of payloads) size += p.length;
  const out = new Uint8Array(size);
  out[0] = OPEN;
  let at = 1;
  payloads.forEach((p, i) => {
    if (i > 0) out[at++] = COMMA;
    out.set(p, at);
    at += p.length;
  });
  out[at] = CLOSE;
  return out;
}

export class BatchingWriter {
  private readonly waiting = new Map<string, Pending[]>();
  private bufferedBytes = 0;
  private inFlight = 0;
  private readonly counters: WriterStats = { appends: 0, batches: 0, samples: 0, largestGroup: 0 };
  private idleWaiters: (() => void)[] = [];
  private readonly groupBytesMax: number;

  constructor(
    private readonly sink: Pick<IngestionSink, 'appendEncoded'>,
    private readonly options: BatchingWriterOptions,
  ) {
    this.groupBytesMax = options.groupBytesMax ?? NATS_PAYLOAD_BYTES_MAX;
  }

  get stats(): WriterStats {
    return { ...this.counters };
  }

  /** Resolves once the payload is in the queue; rejects (nothing acknowledged) otherwise. */
  write(client: string, payload: Uint8Array, samples: number): Promise<void> {
    const key = this.options.groupKey?.(client) ?? client;
    if (this.bufferedBytes > 0 && this.bufferedBytes + payload.length > this.options.bufferedBytesMax) {
      return Promise.reject(new CraftError('CRAFT_OVERLOADED', `writer buffer holds bufferedBytesMax=${this.options.bufferedBytesMax} bytes`, { details: { retryAfterS: RETRY_AFTER_S } }));
    }
    return new Promise((resolve, reject) => {
      let list = this.waiting.get(key);
      if (list === undefined) {
        list = [];
        this.waiting.set(key, list);
      }
      list.push({ client, payload, samples, resolve, reject });
      this.bufferedBytes += payload.length;
      this.pump();
    });
  }

  /** Writes every part of one request; resolves when all are in the queue. */
  async writeAll(client: string, parts: Uint8Array[], samples: number): Promise<void> {
    if (parts.length === 1) return this.write(client, parts[0]!, samples);
    await Promise.all(parts.map((part) => this.write(client, part, 0)));
  }

  private pump(): void {
    while (this.inFlight < this.options.concurrency && this.waiting.size > 0) {
      const [key, list] = this.waiting.entries().next().value as [string, Pending[]];
      const group: Pending[] = [];
      let bytes = 2;
      while (list.length > 0 && (group.length === 0 || bytes + list[0]!.payload.length + 1 <= this.groupBytesMax)) {
        const next = list.shift()!;
        group.push(next);
        bytes += next.payload.length + 1;
      }
      // Whoever still waits goes to the back, so other groups go first next time.
      this.waiting.delete(key);
      if (list.length > 0) this.waiting.set(key, list);
      for (const p of group) this.bufferedBytes -= p.payload.length;
      // The queue places the message by its first client; all of them share its partition.
      void this.flush(group[0]!.client, group);
    }
    if (this.inFlight === 0 && this.waiting.size === 0) {
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async flush(client: string, group: Pending[]): Promise<void> {
    this.inFlight += 1;
    try {
      await this.sink.appendEncoded(client, joinPayloads(group.map((p) => p.payload)));
      this.counters.appends += 1;
      this.counters.batches += group.length;
      for (const p of group) this.counters.samples += p.samples;
      this.counters.largestGroup = Math.max(this.counters.largestGroup, group.length);
      for (const p of group) p.resolve();
    } catch (error) {
      for (const p of group) p.reject(error);
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }

  /** Resolves when nothing waits and nothing is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
