/**
 * The LSM engine: the write path, the background work and the lifecycle. The parts it wires
 * together each have their own file (group commit, memtable, WAL, tables, manifest,
 * compaction, versions, reads, recovery); this file decides when each runs.
 *
 * Write path: batch() encodes the ops as one WAL record and hands it to group commit
 *   (group-commit.ts), which writes and fsyncs rounds of records and then applies them here.
 *
 * Memtable switch: before a round, a memtable past `memtableBytes` is frozen (it joins the
 *   immutable memtables, newest first) and a new one starts with a new log file. Writers wait
 *   when IMMUTABLE_MEMTABLES_MAX frozen memtables are already queued for flushing.
 *
 * Background (one flush and one compaction at a time, both off the write path):
 *   flush:      oldest frozen memtable → table; manifest (table added, logNumber moved past
 *               its logs); its logs deleted.
 *   compaction: pick adjacent similar tables (compaction.ts), merge into one, manifest
 *               (inputs replaced); inputs deleted once no snapshot holds them.
 *   Every manifest change goes through one lock, computed from the state at that moment, so
 *   a flush and a compaction finishing together cannot lose each other's change.
 *
 * A failed log write, flush or compaction stops the engine taking writes (KvBackgroundError):
 * what is on disk is then unknown, and reopening recovers from the last durable state.
 */
import { mkdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KvContext, KvEngine, KvEntry, KvOp, KvRange, KvSnapshot } from '../../../core/slots/kv.js';
import { BlockCache } from './block-cache.js';
import { pickCompaction, writeSortedRun, MergeStoppedError } from './compaction.js';
import { syncDirectory, tableFileName, walFileName } from './files.js';
import { directoryBytes } from '../shared/disk-usage.js';
import { Memtable } from './memtable.js';
import { MergeCursor } from './merge.js';
import { LsmSnapshot, readKey, readKeys, scan } from './reads.js';
import { recover } from './recovery.js';
import { Table, type TableCounters } from './table.js';
import { TableWriter, type WrittenTable } from './table-writer.js';
import { Version, type Holders } from './versions.js';
import { TableSet } from './table-set.js';
import { GroupCommit } from './group-commit.js';
import type { LsmStats } from './stats.js';
import { decodeRecord, encodeRecord, WalWriter } from './wal.js';
import { BLOCK_CACHE_BYTES_MAX, COMPACTION_READAHEAD_BYTES, IMMUTABLE_MEMTABLES_MAX, TABLES_MAX } from './limits.js';
import { KvBackgroundError, KvClosedError, assert } from './errors.js';

export type { LsmStats } from './stats.js';

export interface LsmOptions {
  memtableBytes: number;
  blockBytes: number;
  bloomBitsPerKey: number;
  compactionTrigger: number;
}

type State = 'new' | 'open' | 'closing' | 'closed';

export class LsmEngine implements KvEngine {
  private state: State = 'new';
  private active = new Memtable([]);
  /** Frozen memtables waiting for their flush, newest first. */
  private immutables: Memtable[] = [];
  /** Live tables, newest first, with their manifest and holders (replaced at each open). */
  private set: TableSet;
  private current = new Version([], []);
  private wal: WalWriter | undefined;
  private nextFileNumber = 1;
  private lastSeq = 0;
  private visibleSeq = 0;
  private cache = new BlockCache(BLOCK_CACHE_BYTES_MAX);
  private readonly counters: TableCounters = { bloomNegatives: 0, blockReads: 0 };

  private readonly commits = new GroupCommit({
    prepare: () => this.makeRoomForWrite(),
    log: () => this.wal!,
    apply: (records) => this.apply(records),
    fail: (error) => this.fail(error),
    checkAccepting: () => this.checkWritable(),
  });
  private flushing: Promise<void> | undefined;
  private compacting: Promise<void> | undefined;
  private backgroundError: KvBackgroundError | undefined;
  /** Woken whenever a flush or compaction ends (or fails). */
  private waiters: (() => void)[] = [];
  private readonly counts = { flushes: 0, compactions: 0, forcedCompactions: 0, tombstonesDropped: 0, writeStalls: 0 };
  private recovery = { walRecordsReplayed: 0, walBytesTruncated: 0, orphansDeleted: 0 };

  constructor(
    private readonly context: KvContext,
    private readonly options: LsmOptions,
  ) {
    this.set = new TableSet(context.dataDir, context.log);
  }

  private get dir(): string {
    return this.context.dataDir;
  }

  private get holders(): Holders {
    return this.set.holders;
  }

  async open(): Promise<void> {
    if (this.state === 'open' || this.state === 'closing') throw new Error(`kv.lsm: open() while ${this.state}`);
    await mkdir(this.dir, { recursive: true });
    this.cache = new BlockCache(BLOCK_CACHE_BYTES_MAX);
    this.set = new TableSet(this.dir, this.context.log);
    this.backgroundError = undefined;
    const recovered = await recover(this.dir, this.cache, this.counters, this.context.log);
    this.recovery = { walRecordsReplayed: recovered.walRecordsReplayed, walBytesTruncated: recovered.walBytesTruncated, orphansDeleted: recovered.orphansDeleted };
    this.set.adopt(recovered.tables);
    this.active = recovered.memtable;
    this.immutables = [];
    this.lastSeq = this.visibleSeq = recovered.lastSeq;
    this.nextFileNumber = recovered.nextFileNumber;
    if (recovered.reuseWal !== undefined) {
      this.wal = await WalWriter.open(join(this.dir, walFileName(recovered.reuseWal.number)), recovered.reuseWal.number, recovered.reuseWal.bytes);
    } else {
      this.wal = await this.createWal();
      this.active.walNumbers.push(this.wal.number);
    }
    this.install();
    this.state = 'open';
    this.context.log.debug('kv.lsm open', { dir: this.dir, tables: this.set.list.length, replayed: recovered.walRecordsReplayed });
    this.maybeCompact();
  }

  private async createWal(): Promise<WalWriter> {
    const number = this.nextFileNumber++;
    const wal = await WalWriter.open(join(this.dir, walFileName(number)), number, 0);
    await syncDirectory(this.dir);
    return wal;
  }

  /** Makes the current fields the version new reads see. */
  private install(): void {
    this.current = new Version([this.active, ...this.immutables], this.set.list);
  }

  private checkOpen(what = 'engine'): void {
    if (this.state !== 'open') throw new KvClosedError(what);
  }

  // ---- writes -------------------------------------------------------------------------------

  async batch(ops: KvOp[], options: { sync?: boolean } = {}): Promise<void> {
    this.checkWritable();
    if (ops.length === 0) return;
    await this.commits.commit(encodeRecord(ops), options.sync === true);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.backgroundError !== undefined) throw this.backgroundError;
  }

  /** A committed round: into the memtable, each op with the next sequence number, then visible at once. */
  private apply(records: Buffer[]): void {
    for (const record of records) {
      const ops = decodeRecord(record);
      assert(ops !== undefined, 'an encoded record decodes');
      for (const op of ops) this.active.put(op.key, ++this.lastSeq, op.value);
    }
    this.visibleSeq = this.lastSeq;
  }

  /** Freezes a full memtable and starts a new one with a new log; waits while too many are frozen. */
  private async makeRoomForWrite(): Promise<void> {
    for (;;) {
      if (this.backgroundError !== undefined) throw this.backgroundError;
      if (this.active.bytes < this.options.memtableBytes) return;
      if (this.immutables.length >= IMMUTABLE_MEMTABLES_MAX) {
        this.counts.writeStalls += 1;
        await this.nextProgress();
        continue;
      }
      const previous = this.wal!;
      const wal = await this.createWal();
      // The frozen memtable's log is complete: make it durable before anything depends on the newer one.
      await previous.close();
      this.wal = wal;
      this.immutables.unshift(this.active);
      this.active = new Memtable([wal.number]);
      this.install();
      this.flushing ??= this.flushLoop();
    }
  }

  /** The smallest log number still needed: the first log of the oldest memtable not yet in a table. */
  private logNumber(): number {
    return (this.immutables.at(-1) ?? this.active).walNumbers[0]!;
  }

  private newTableWriter(): Promise<TableWriter> {
    const number = this.nextFileNumber++;
    return TableWriter.create(join(this.dir, tableFileName(number)), number, this.options.blockBytes, this.options.bloomBitsPerKey);
  }

  /** Applies `change` to the live tables (and memtables) and makes it durable in the manifest. */
  private commitManifest(change: () => void): Promise<void> {
    return this.set.commit(
      () => {
        change();
        this.install();
      },
      () => ({ nextFileNumber: this.nextFileNumber, logNumber: this.logNumber() }),
    );
  }

  // ---- background: flush and compaction ----------------------------------------------------

  private async flushLoop(): Promise<void> {
    try {
      while (this.immutables.length > 0 && this.backgroundError === undefined) {
        await this.flushOldest();
        this.wake();
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.flushing = undefined;
      this.wake();
    }
  }

  private async flushOldest(): Promise<void> {
    const memtable = this.immutables.at(-1)!;
    while (this.set.list.length >= TABLES_MAX && this.state === 'open') {
      this.counts.writeStalls += 1;
      this.maybeCompact();
      await this.nextProgress();
      if (this.backgroundError !== undefined) return;
    }
    // Every table is older than every memtable: a tombstone no table can hold has nothing to hide.
    const older = this.set.list;
    this.holders.hold(older);
    let written: WrittenTable | undefined;
    try {
      const outcome = await writeSortedRun(memtable.cursor(Infinity, {}, false), older, () => this.newTableWriter(), () => false);
      written = outcome.written;
      this.counts.tombstonesDropped += outcome.tombstonesDropped;
    } finally {
      this.holders.letGo(older);
    }
    const table = written === undefined ? undefined : await Table.open(written.path, written.number, this.cache, this.counters);
    await this.commitManifest(() => {
      if (table !== undefined) this.set.prepend(table);
      this.immutables = this.immutables.filter((frozen) => frozen !== memtable);
    });
    for (const number of memtable.walNumbers) await unlink(join(this.dir, walFileName(number))).catch(() => undefined);
    this.counts.flushes += 1;
    this.maybeCompact();
  }

  private maybeCompact(): void {
    if (this.compacting !== undefined || this.state !== 'open' || this.backgroundError !== undefined) return;
    const pick = pickCompaction(
      this.set.list.map((table) => table.bytes),
      this.options.compactionTrigger,
      this.options.memtableBytes,
    );
    if (pick === undefined) return;
    this.compacting = this.runCompaction(this.set.list.slice(pick.start, pick.end), this.set.list.slice(pick.end), pick.forced);
  }

  /** Runs one compaction as the running one; afterwards looks for the next. */
  private runCompaction(inputs: Table[], older: Table[], forced: boolean): Promise<void> {
    return this.compact(inputs, older, forced)
      .catch((error: unknown) => {
        if (!(error instanceof MergeStoppedError)) this.fail(error);
      })
      .finally(() => {
        this.compacting = undefined;
        this.wake();
        this.maybeCompact();
      });
  }

  private async compact(inputs: Table[], older: Table[], forced: boolean): Promise<void> {
    this.holders.hold(inputs);
    this.holders.hold(older);
    try {
      const cursors = await Promise.all(inputs.map((table) => table.cursor({}, false, COMPACTION_READAHEAD_BYTES)));
      const outcome = await writeSortedRun(new MergeCursor(cursors, false), older, () => this.newTableWriter(), () => this.state !== 'open');
      const table = outcome.written === undefined ? undefined : await Table.open(outcome.written.path, outcome.written.number, this.cache, this.counters);
      await this.commitManifest(() => this.set.replace(inputs, table));
      this.set.retire(inputs);
      this.counts.compactions += 1;
      if (forced) this.counts.forcedCompactions += 1;
      this.counts.tombstonesDropped += outcome.tombstonesDropped;
    } finally {
      this.holders.letGo(inputs);
      this.holders.letGo(older);
    }
  }

  private fail(error: unknown): KvBackgroundError {
    if (this.backgroundError === undefined) {
      this.backgroundError = new KvBackgroundError(error);
      this.context.log.error('kv.lsm background write failed; writes refused until reopened', { dir: this.dir, error });
    }
    this.wake();
    return this.backgroundError;
  }

  private nextProgress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  // ---- reads --------------------------------------------------------------------------------

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.checkOpen();
    return this.whileOpen(readKey(this.current, this.visibleSeq, key, this.holders));
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.checkOpen();
    return this.whileOpen(readKeys(this.current, this.visibleSeq, keys, this.holders));
  }

  /** A read that fails because the engine closed under it reports that, not the file error it ran into. */
  private async whileOpen<T>(read: Promise<T>): Promise<T> {
    try {
      return await read;
    } catch (error) {
      if (this.state !== 'open') throw new KvClosedError('engine');
      throw error;
    }
  }

  iterate(range?: KvRange, chunkEntries?: number): AsyncIterable<KvEntry[]> {
    return scan(
      () => {
        this.checkOpen();
        return this.holders.open(this.visibleSeq, this.current);
      },
      range,
      chunkEntries,
    );
  }

  snapshot(): KvSnapshot {
    this.checkOpen();
    return new LsmSnapshot(this.holders.open(this.visibleSeq, this.current), this.holders);
  }

  async bytesOnDisk(): Promise<number> {
    return directoryBytes(this.dir);
  }

  stats(): LsmStats {
    return {
      ...this.counts,
      ...this.recovery,
      walRecords: this.commits.counts.records,
      walGroups: this.commits.counts.groups,
      walSyncs: this.commits.counts.syncs,
      syncedBatches: this.commits.counts.syncedBatches,
      tables: this.set.list.length,
      tableBytes: this.set.bytes,
      immutableMemtables: this.immutables.length,
      memtableBytes: this.active.bytes,
      bloomNegatives: this.counters.bloomNegatives,
      blockReads: this.counters.blockReads,
      openViews: this.holders.openViews,
    };
  }

  /** Waits until no commit, flush, compaction or file deletion is running or due (for tests and benchmarks). */
  async settle(): Promise<void> {
    while (this.flushing !== undefined || this.compacting !== undefined || this.commits.busy || this.set.deleting) {
      await Promise.all([this.flushing, this.compacting, this.commits.idle(), this.set.settled()]);
    }
  }

  /**
   * Merges every table into one (LevelDB's CompactRange over all keys): no table is older, so
   * every tombstone in the tables goes. The memtables are left as they are. For tests and
   * benchmarks, and for an operator who wants the space back now.
   */
  async compactAll(): Promise<void> {
    this.checkWritable();
    await this.settle();
    while (this.compacting !== undefined) await this.compacting;
    this.checkWritable();
    if (this.set.list.length === 0) return;
    const inputs = [...this.set.list];
    this.compacting = this.runCompaction(inputs, [], false);
    await this.compacting;
    if (this.backgroundError !== undefined) throw this.backgroundError;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    if (this.state === 'open') {
      this.state = 'closing';
      this.wake();
      this.commits.wakeWaiters();
      // Queued batches were accepted: they are written. Then the flushes they may have queued
      // finish (at most IMMUTABLE_MEMTABLES_MAX), and a running compaction stops at its next step.
      while (this.commits.busy || this.flushing !== undefined || this.compacting !== undefined) {
        await Promise.all([this.commits.idle(), this.flushing, this.compacting]);
      }
      await this.wal?.close().catch((error: unknown) => this.context.log.warn('kv.lsm log close failed', { error }));
      this.wal = undefined;
      await this.set.close();
      this.immutables = [];
      this.active = new Memtable([]);
      this.install();
      this.state = 'closed';
    }
    if (options.destroy === true) await rm(this.dir, { recursive: true, force: true });
  }
}
