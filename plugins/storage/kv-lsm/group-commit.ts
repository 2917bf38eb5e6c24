/**
 * Group commit: the single writer of the log. Batches queue here as encoded WAL records; a
 * loop takes every queued record (up to the group limits), writes them with one write,
 * fsyncs once if any of them asked for `sync`, applies them to the memtable in queue order
 * and resolves them. Batches that arrive while a write or fsync runs wait and go together in
 * the next round, so N concurrent synced batches cost about two fsyncs, not N.
 *
 * A batch becomes visible to readers only after its round is written (and fsynced, when a
 * batch of the round asked for it): a reader never sees a write a crash could still undo
 * (for synced batches) or a process crash could (for the others).
 *
 * Why one loop rather than a lock per batch: the order of the queue is the commit order, in
 * the log and in the memtable alike, and the loop is also the one place where the memtable
 * may be switched (`prepare`), so no batch is ever split across two logs.
 */
import type { WalWriter } from './wal.js';
import { GROUP_COMMIT_BATCHES_MAX, GROUP_COMMIT_BYTES_MAX, WRITE_QUEUE_BATCHES_MAX } from './limits.js';

interface PendingBatch {
  record: Buffer;
  sync: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface CommitHooks {
  /** Before each round: switch a full memtable, wait while flushes lag. Throwing fails the round and the queue. */
  prepare(): Promise<void>;
  /** The log this round writes to (read after `prepare`). */
  log(): WalWriter;
  /** Applies the round's records to the memtable, in order, and makes them visible. */
  apply(records: Buffer[]): void;
  /** A write failed: records it, returns the error every queued batch is rejected with. */
  fail(error: unknown): Error;
  /** Throws when batches are no longer accepted (engine closing or failed). */
  checkAccepting(): void;
}

export class GroupCommit {
  private readonly queue: PendingBatch[] = [];
  private loop: Promise<void> | undefined;
  private spaceWaiters: (() => void)[] = [];
  readonly counts = { groups: 0, syncs: 0, records: 0, syncedBatches: 0 };

  constructor(private readonly hooks: CommitHooks) {}

  /** Resolves once no round is running and nothing is queued. */
  async idle(): Promise<void> {
    while (this.loop !== undefined) await this.loop;
  }

  get busy(): boolean {
    return this.loop !== undefined;
  }

  /** Queues a record; resolves when its round is written (and fsynced, with `sync`) and applied. */
  async commit(record: Buffer, sync: boolean): Promise<void> {
    while (this.queue.length >= WRITE_QUEUE_BATCHES_MAX) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
      this.hooks.checkAccepting();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, sync, resolve, reject });
      this.loop ??= this.run();
    });
  }

  /** Wakes callers waiting for room, so they see that the engine closed. */
  wakeWaiters(): void {
    for (const waiter of this.spaceWaiters.splice(0)) waiter();
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        await this.hooks.prepare();
        const group = this.takeGroup();
        this.wakeWaiters();
        const log = this.hooks.log();
        const records = group.map((batch) => batch.record);
        try {
          await log.append(records);
          if (group.some((batch) => batch.sync)) {
            await log.sync();
            this.counts.syncs += 1;
          }
        } catch (error) {
          group.forEach((batch) => batch.reject(error));
          throw error;
        }
        this.hooks.apply(records);
        this.counts.groups += 1;
        this.counts.records += group.length;
        for (const batch of group) {
          if (batch.sync) this.counts.syncedBatches += 1;
          batch.resolve();
        }
      }
    } catch (error) {
      const failure = this.hooks.fail(error);
      for (const batch of this.queue.splice(0)) batch.reject(failure);
      this.wakeWaiters();
    } finally {
      // Runs in the same turn as the last empty-queue check: a batch queued after it starts a new loop.
      this.loop = undefined;
    }
  }

  private takeGroup(): PendingBatch[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < GROUP_COMMIT_BATCHES_MAX) {
      const next = this.queue[count]!.record.length;
      if (count > 0 && bytes + next > GROUP_COMMIT_BYTES_MAX) break;
      bytes += next;
      count += 1;
    }
    return this.queue.splice(0, count);
  }
}
