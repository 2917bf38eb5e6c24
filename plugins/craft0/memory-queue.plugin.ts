/**
 * Craft #0 queue: an in-memory buffer per partition, as the seed's PoC had. Appends are
 * acknowledged once in memory — so a crash of the process (or a restart of the queue
 * actor) loses what storage had not consumed yet. That is the lesson this phase teaches;
 * the durable JetStream queue is the platform default.
 */
import { z } from 'zod';
import { CraftError } from '../../core/errors.js';
import { MEMORY_QUEUE_MESSAGES_MAX, RETRY_AFTER_S } from '../../core/defaults.js';
import { definePlugin } from '../../core/plugins/define.js';
import { waitForWake } from '../../core/queue/wait.js';
import type { Delivery, PartitionReader, QueueLog, QueueLogContext, QueueLogInfo } from '../../core/slots/queue.js';

interface Entry {
  offset: number;
  payload: Uint8Array;
}

/** One partition: entries in offset order from `head`; offsets are contiguous from 1. */
class MemoryPartition {
  entries: Entry[] = [];
  head = 0;
  lastOffset = 0;
  readonly waiters = new Set<() => void>();

  get retained(): number {
    return this.entries.length - this.head;
  }

  /** Index of the first entry with offset > `offset`. */
  indexAfter(offset: number): number {
    const first = this.entries[this.head];
    if (first === undefined) return this.entries.length;
    return Math.max(this.head, Math.min(this.entries.length, this.head + (offset - first.offset) + 1));
  }

  notify(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }
}

class MemoryReader implements PartitionReader {
  private committedOffset = 0;
  private deliveredOffset = 0;
  private closed = false;

  constructor(private readonly partition: MemoryPartition, private readonly partitionIndex: number) {}

  take(maxMessages: number, maxBytes: number): Delivery[] {
    const out: Delivery[] = [];
    let bytes = 0;
    for (let i = this.partition.indexAfter(this.deliveredOffset); i < this.partition.entries.length && out.length < maxMessages; i++) {
      const entry = this.partition.entries[i]!;
      if (bytes + entry.payload.length > maxBytes) break;
      out.push({ partition: this.partitionIndex, offset: entry.offset, payload: entry.payload });
      bytes += entry.payload.length;
      this.deliveredOffset = entry.offset;
    }
    return out;
  }

  waitForData(waitMs: number): Promise<void> {
    if (this.closed || this.partition.lastOffset > this.deliveredOffset) return Promise.resolve();
    return waitForWake(this.partition.waiters, waitMs);
  }

  async commit(offset: number): Promise<void> {
    if (offset > this.committedOffset) this.committedOffset = offset;
    if (this.deliveredOffset < this.committedOffset) this.deliveredOffset = this.committedOffset;
  }

  async rewind(): Promise<void> {
    this.deliveredOffset = this.committedOffset;
  }

  committed(): number {
    return this.committedOffset;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

class MemoryQueueLog implements QueueLog {
  private readonly partitions: MemoryPartition[];
  private readonly readers = new Map<string, MemoryReader>();
  private appended = 0;

  constructor(private readonly context: QueueLogContext, private readonly messagesMax: number) {
    this.partitions = Array.from({ length: context.partitions }, () => new MemoryPartition());
  }

  async open(): Promise<void> {}

  async append(partition: number, payload: Uint8Array): Promise<number> {
    const p = this.partitions[partition];
    if (p === undefined) throw new CraftError('CRAFT_BAD_REQUEST', `partition ${partition} does not exist`);
    if (p.retained >= this.messagesMax) {
      throw new CraftError('CRAFT_OVERLOADED', `memory queue partition ${partition} holds MEMORY_QUEUE_MESSAGES_MAX=${this.messagesMax} messages`, {
        details: { retryAfterS: RETRY_AFTER_S },
      });
    }
    p.lastOffset += 1;
    p.entries.push({ offset: p.lastOffset, payload });
    this.appended += 1;
    p.notify();
    return p.lastOffset;
  }

  lastOffset(partition: number): number {
    return this.partitions[partition]?.lastOffset ?? 0;
  }

  async reader(group: string, partition: number): Promise<PartitionReader> {
    const key = `${group}/${partition}`;
    let reader = this.readers.get(key);
    if (reader === undefined) {
      const p = this.partitions[partition];
      if (p === undefined) throw new CraftError('CRAFT_BAD_REQUEST', `partition ${partition} does not exist`);
      reader = new MemoryReader(p, partition);
      this.readers.set(key, reader);
    }
    return reader;
  }

  async trim(partition: number, offset: number): Promise<void> {
    const p = this.partitions[partition];
    if (p === undefined) return;
    p.head = p.indexAfter(offset);
    if (p.head > 4096 && p.head * 2 > p.entries.length) {
      p.entries.splice(0, p.head);
      p.head = 0;
    }
  }

  async info(): Promise<QueueLogInfo> {
    return { depth: this.partitions.map((p) => p.retained), appended: this.appended };
  }

  async close(): Promise<void> {
    for (const reader of this.readers.values()) await reader.close();
    for (const p of this.partitions) p.notify();
    this.readers.clear();
  }
}

export default definePlugin({
  id: 'craft0.memory-queue',
  craft: 0,
  phase: 0,
  slot: 'queue.log',
  version: '1.0.0',
  summary: 'In-memory buffer per partition; fast, and loses unconsumed batches when its process dies',
  durable: false,
  options: z.object({ messagesMax: z.number().int().positive().default(MEMORY_QUEUE_MESSAGES_MAX) }).strict(),
  create: (context, options) => new MemoryQueueLog(context, options.messagesMax),
});
