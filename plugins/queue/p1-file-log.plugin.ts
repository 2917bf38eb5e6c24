/**
 * Craft #2, phase 1 — the file-based partitioned log, served by the queue actor over NATS
 * request-reply (`craft.queue.append`, `fetch`, `commit`): no JetStream in the data path.
 *
 * - `layout: segments` (default): per partition, segment files of CRC'd records with an offset
 *   index beside each closed one, and **group commit** — appends that arrive while a write is
 *   being synced go out together, one write and one `fdatasync` for the lot
 *   (p1-file-log/segments.ts). After `kill -9` at any moment, opening truncates a torn tail and
 *   every acknowledged append is there.
 * - `layout: file-per-message`: the seed's design — a file and an fsync per message, one at a
 *   time (p1-file-log/file-per-message.ts) — kept as the baseline the lesson is measured against.
 * - Committed offsets: a small file per group and partition, replaced atomically (write, fsync,
 *   rename, fsync the directory) on every commit.
 * - Retention: by commits (`trim`, when every group has consumed a segment), and optionally by
 *   size (`retentionBytes` per partition) and age (`retentionMs`) — which, like Kafka's, drops
 *   records whether or not anyone consumed them; off by default.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CraftError } from '../../core/errors.js';
import { definePlugin } from '../../core/plugins/define.js';
import { waitForWake } from '../../core/queue/wait.js';
import type { Delivery, PartitionReader, QueueLog, QueueLogContext, QueueLogInfo } from '../../core/slots/queue.js';
import { SegmentLog, syncDir } from './p1-file-log/segments.js';
import { FilePerMessageLog } from './p1-file-log/file-per-message.js';

const optionsSchema = z
  .object({
    layout: z.enum(['segments', 'file-per-message']).default('segments'),
    /** A segment closes (its index is written, the next one starts) at this size. */
    segmentBytesMax: z.number().int().min(4_096).default(64 * 1024 * 1024),
    /** Closed segments beyond this many bytes of a partition are deleted, consumed or not (0: off). */
    retentionBytes: z.number().int().min(0).default(0),
    /** Closed segments whose newest record is older than this are deleted, consumed or not, ms (0: off). */
    retentionMs: z.number().int().min(0).default(0),
  })
  .strict();
type Options = z.infer<typeof optionsSchema>;

type PartitionLog = SegmentLog | FilePerMessageLog;

class Partition {
  readonly waiters = new Set<() => void>();
  constructor(readonly log: PartitionLog) {
    log.onDurable = () => {
      for (const wake of this.waiters) wake();
      this.waiters.clear();
    };
  }
}

/** A group's committed offset of one partition, in a file replaced atomically. */
class CommitFile {
  constructor(private readonly path: string) {}

  read(): number {
    if (!existsSync(this.path)) return 0;
    const text = readFileSync(this.path, 'utf8').trim();
    const offset = Number(text);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new CraftError('CRAFT_STORE_CORRUPT', `${this.path}: not an offset (${JSON.stringify(text.slice(0, 40))})`);
    return offset;
  }

  write(offset: number): void {
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${offset}\n`);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}

class FileReader implements PartitionReader {
  private delivered: number;
  private closed = false;

  constructor(
    private readonly partition: Partition,
    private readonly index: number,
    private committedOffset: number,
    private readonly file: CommitFile,
    private readonly dir: string,
  ) {
    this.delivered = committedOffset;
  }

  take(maxMessages: number, maxBytes: number): Delivery[] {
    if (this.closed) return [];
    const records = this.partition.log.read(this.delivered, maxMessages, maxBytes);
    if (records.length > 0) this.delivered = records.at(-1)!.offset;
    return records.map((r) => ({ partition: this.index, offset: r.offset, payload: r.payload }));
  }

  waitForData(waitMs: number): Promise<void> {
    if (this.closed || this.partition.log.durableOffset > this.delivered) return Promise.resolve();
    return waitForWake(this.partition.waiters, waitMs);
  }

  async commit(offset: number): Promise<void> {
    if (offset <= this.committedOffset) return;
    if (offset > this.partition.log.durableOffset) throw new CraftError('CRAFT_BAD_REQUEST', `commit of offset ${offset} past the partition's last offset ${this.partition.log.durableOffset}`);
    this.file.write(offset);
    syncDir(this.dir);
    this.committedOffset = offset;
    if (this.delivered < offset) this.delivered = offset;
  }

  async rewind(): Promise<void> {
    this.delivered = this.committedOffset;
  }

  committed(): number {
    return this.committedOffset;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

class FileQueueLog implements QueueLog {
  private partitions: Partition[] = [];
  private readonly readers = new Map<string, FileReader>();
  private appended = 0;
  private readonly commitsDir: string;

  constructor(
    private readonly context: QueueLogContext,
    private readonly options: Options,
  ) {
    this.commitsDir = join(context.dataDir, 'commits');
  }

  async open(): Promise<void> {
    mkdirSync(this.commitsDir, { recursive: true });
    syncDir(this.context.dataDir);
    const opened: Partition[] = [];
    try {
      for (let p = 0; p < this.context.partitions; p++) opened.push(this.openPartition(p));
    } catch (error) {
      for (const partition of opened) await partition.log.close();
      throw error;
    }
    this.partitions = opened;
  }

  private openPartition(p: number): Partition {
    const dir = join(this.context.dataDir, `p${p}`);
    const log: PartitionLog = this.options.layout === 'segments' ? new SegmentLog(dir, { segmentBytesMax: this.options.segmentBytesMax, retentionBytes: this.options.retentionBytes, retentionMs: this.options.retentionMs, now: () => Date.now() }) : new FilePerMessageLog(dir);
    const cut = log.open();
    if (cut > 0) this.context.log.warn('file log: a torn tail was truncated (appends that were never acknowledged)', { partition: p, [this.options.layout === 'segments' ? 'bytes' : 'files']: cut });
    return new Partition(log);
  }

  private partition(index: number): Partition {
    const p = this.partitions[index];
    if (p === undefined) throw new CraftError('CRAFT_BAD_REQUEST', `partition ${index} does not exist (0–${this.partitions.length - 1})`);
    return p;
  }

  async append(partition: number, payload: Uint8Array): Promise<number> {
    const offset = await this.partition(partition).log.append(payload);
    this.appended += 1;
    return offset;
  }

  async appendBatch(partition: number, payloads: readonly Uint8Array[]): Promise<number> {
    const last = await this.partition(partition).log.appendMany(payloads);
    this.appended += payloads.length;
    return last;
  }

  lastOffset(partition: number): number {
    return this.partitions[partition]?.log.durableOffset ?? 0;
  }

  async reader(group: string, partition: number): Promise<PartitionReader> {
    const key = `${group}/${partition}`;
    let reader = this.readers.get(key);
    if (reader === undefined) {
      // One file per group and partition; the name escapes the group id one-to-one (two groups never share a file).
      const file = new CommitFile(join(this.commitsDir, `${encodeURIComponent(group).replace(/\./g, '%2E').replace(/\*/g, '%2A')}.p${partition}`));
      reader = new FileReader(this.partition(partition), partition, file.read(), file, this.commitsDir);
      this.readers.set(key, reader);
    }
    return reader;
  }

  async trim(partition: number, offset: number): Promise<void> {
    this.partitions[partition]?.log.trim(offset);
  }

  async info(): Promise<QueueLogInfo> {
    return { depth: this.partitions.map((p) => Math.max(0, p.log.retained)), appended: this.appended };
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    for (const reader of this.readers.values()) await reader.close();
    this.readers.clear();
    for (const p of this.partitions) {
      await p.log.close();
      for (const wake of p.waiters) wake();
    }
    if (options.destroy === true) rmSync(this.context.dataDir, { recursive: true, force: true });
  }
}

export default definePlugin({
  id: 'queue.file-log',
  craft: 2,
  phase: 1,
  slot: 'queue.log',
  version: '1.0.0',
  summary: 'File-based partitioned log: segments with offset index and CRC, group commit, torn-tail recovery; file-per-message baseline',
  durable: true,
  options: optionsSchema,
  create: (context, options) => new FileQueueLog(context, options),
});
