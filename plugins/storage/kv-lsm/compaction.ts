/**
 * Compaction: which tables to merge, and the merge itself (shared with flushes).
 *
 * Policy: size-tiered. The tables form one list, newest first; each table is one sorted run.
 * When `trigger` or more adjacent tables have similar sizes (within COMPACTION_SIZE_RATIO_MAX,
 * sizes below the memtable size counting as the memtable size), they are merged into one
 * table that takes their place in the list. Merged tables are ~trigger× larger, so they in
 * turn gather into the next tier: with N bytes of data there are about
 * trigger · log_trigger(N / memtable) tables, and each byte is rewritten about
 * log_trigger(N / memtable) times.
 *
 * Why size-tiered rather than leveled: a monitoring store is write-heavy (samples arrive
 * all the time, are read in ranges, rarely point-read), and tiering rewrites each byte far
 * fewer times than leveling (≈ log_T versus ≈ T · levels). What it costs: a read may visit
 * every table (bloom filters keep point reads cheap, range reads merge them all), and a merge
 * of the largest tier needs room for a second copy of it. It is also simpler: one output
 * table per compaction, no per-level key ranges. Only adjacent tables are merged, so "newer
 * table wins" stays true of the list order without sequence numbers in the tables.
 *
 * A tombstone is dropped only when no table older than the merge's inputs can hold its key
 * (key range plus bloom filter, a conservative "maybe"): otherwise it must stay to hide the
 * older value. Only the newest entry of each key is kept; open snapshots do not need older
 * ones because they keep reading the tables they started with (versions.ts).
 *
 * Merges run in the background, one at a time, and give the event loop a turn every
 * COMPACTION_YIELD_ENTRIES entries so that writes go on meanwhile.
 */
import type { Cursor } from './cursor.js';
import type { TableWriter, WrittenTable } from './table-writer.js';
import { COMPACTION_INPUT_TABLES_MAX, COMPACTION_SIZE_RATIO_MAX, COMPACTION_YIELD_ENTRIES, TABLES_BEFORE_FORCED_COMPACTION } from './limits.js';

/** Tables [start, end) of the newest-first list. */
export interface CompactionPick {
  start: number;
  end: number;
  /** True when chosen only because there were too many tables, not because sizes matched. */
  forced: boolean;
}

/**
 * The newest run of `trigger` or more adjacent tables of similar size; failing that, when
 * there are more than TABLES_BEFORE_FORCED_COMPACTION tables, the adjacent `trigger` tables
 * of least total size (so the table count stays bounded whatever the sizes).
 */
export function pickCompaction(sizes: readonly number[], trigger: number, floorBytes: number): CompactionPick | undefined {
  const size = (i: number): number => Math.max(sizes[i]!, floorBytes);
  for (let start = 0; start + trigger <= sizes.length; start++) {
    let smallest = size(start);
    let largest = smallest;
    let end = start + 1;
    while (end < sizes.length && end - start < COMPACTION_INPUT_TABLES_MAX) {
      const nextSmallest = Math.min(smallest, size(end));
      const nextLargest = Math.max(largest, size(end));
      if (nextLargest > nextSmallest * COMPACTION_SIZE_RATIO_MAX) break;
      smallest = nextSmallest;
      largest = nextLargest;
      end += 1;
    }
    if (end - start >= trigger) return { start, end, forced: false };
  }
  if (sizes.length <= TABLES_BEFORE_FORCED_COMPACTION) return undefined;
  let best = 0;
  let bestBytes = Infinity;
  for (let start = 0; start + trigger <= sizes.length; start++) {
    let bytes = 0;
    for (let i = start; i < start + trigger; i++) bytes += sizes[i]!;
    if (bytes < bestBytes) {
      best = start;
      bestBytes = bytes;
    }
  }
  return { start: best, end: best + trigger, forced: true };
}

/** Raised inside a merge when the engine is closing: the partial output is discarded. */
export class MergeStoppedError extends Error {
  override readonly name = 'MergeStoppedError';
}

export interface RunOutcome {
  /** The table written, or undefined when nothing was left to write (every entry a droppable tombstone). */
  written: WrittenTable | undefined;
  entriesRead: number;
  tombstonesDropped: number;
}

/** What a tombstone's fate depends on: whether some older table may hold its key. */
export interface OlderData {
  mayContain(key: Uint8Array): boolean;
}

/**
 * Writes a cursor's entries (ascending, one per key) into a new table, dropping tombstones
 * that nothing older can hold. The writer is created only if there is something to write.
 */
export async function writeSortedRun(cursor: Cursor, older: readonly OlderData[], openWriter: () => Promise<TableWriter>, stopped: () => boolean): Promise<RunOutcome> {
  let writer: TableWriter | undefined;
  let entriesRead = 0;
  let tombstonesDropped = 0;
  try {
    while (cursor.valid()) {
      if (stopped()) throw new MergeStoppedError('engine closing');
      const key = cursor.key();
      const value = cursor.value();
      entriesRead += 1;
      if (value === null && !older.some((table) => table.mayContain(key))) {
        tombstonesDropped += 1;
      } else {
        writer ??= await openWriter();
        const written = writer.add(key, value);
        if (written) await written;
      }
      const wait = cursor.next();
      if (wait) await wait;
      if (entriesRead % COMPACTION_YIELD_ENTRIES === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { written: writer === undefined ? undefined : await writer.finish(), entriesRead, tombstonesDropped };
  } catch (error) {
    await writer?.abort();
    throw error;
  }
}
