/**
 * Opening after a clean close or a crash — the same path, because a clean close leaves
 * nothing recovery would not also handle:
 *
 *   1. Read the manifest (none: a new database). It names the live tables and `logNumber`.
 *   2. Open the live tables (footer, index and bloom filter checked). A missing or corrupt
 *      live table is `KvCorruptionError`: the data is not all there and nothing can be cut off.
 *   3. Delete what a crash left behind: tables the manifest does not name (a flush or
 *      compaction that had not committed), logs below `logNumber` (already in tables), and
 *      MANIFEST.tmp.
 *   4. Replay the remaining logs, oldest first, into one memtable. A log whose tail is torn
 *      or corrupt is truncated after its last good record, and the cut is fsynced.
 *
 * The newest log is then reused for appends (LevelDB's `reuse_logs`), so opening and closing
 * without writing does not add a file each time; the memtable remembers every replayed log,
 * to be deleted once it is flushed.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../core/log.js';
import type { BlockCache } from './block-cache.js';
import { listNumberedFiles, MANIFEST_TEMP_FILE, tableFileName, walFileName } from './files.js';
import { emptyManifest, readManifest } from './manifest.js';
import { Memtable } from './memtable.js';
import { Table, type TableCounters } from './table.js';
import { decodeRecord, readWal, truncateWal } from './wal.js';
import { KvCorruptionError, assert } from './errors.js';

export interface Recovered {
  /** Live tables, newest first. */
  tables: Table[];
  memtable: Memtable;
  /** The last sequence number used in the memtable. */
  lastSeq: number;
  /** The next unused file number. */
  nextFileNumber: number;
  /** The newest replayed log and its length after truncation, to append to; undefined when there was none. */
  reuseWal: { number: number; bytes: number } | undefined;
  walRecordsReplayed: number;
  walBytesTruncated: number;
  orphansDeleted: number;
}

async function removeIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export async function recover(dir: string, cache: BlockCache, counters: TableCounters, log: Logger): Promise<Recovered> {
  const manifest = (await readManifest(dir)) ?? emptyManifest();
  const files = await listNumberedFiles(dir);
  const present = new Set(files.map((file) => file.name));
  const tables: Table[] = [];
  try {
    for (const entry of manifest.tables) {
      const name = tableFileName(entry.number);
      if (!present.has(name)) throw new KvCorruptionError(join(dir, name), 'named in the manifest but missing');
      const table = await Table.open(join(dir, name), entry.number, cache, counters);
      tables.push(table);
      if (table.bytes !== entry.bytes) throw new KvCorruptionError(table.path, `${table.bytes} bytes, the manifest says ${entry.bytes}`);
    }
  } catch (error) {
    await Promise.all(tables.map((table) => table.close()));
    throw error;
  }

  const live = new Set(manifest.tables.map((table) => table.number));
  let orphansDeleted = 0;
  for (const file of files) {
    const orphan = file.kind === 'sst' ? !live.has(file.number) : file.number < manifest.logNumber;
    if (orphan && (await removeIfPresent(join(dir, file.name)))) orphansDeleted += 1;
  }
  await removeIfPresent(join(dir, MANIFEST_TEMP_FILE));

  const memtable = new Memtable([]);
  let lastSeq = 0;
  let walRecordsReplayed = 0;
  let walBytesTruncated = 0;
  let reuseWal: Recovered['reuseWal'];
  for (const file of files) {
    if (file.kind !== 'wal' || file.number < manifest.logNumber) continue;
    const path = join(dir, walFileName(file.number));
    const contents = await readWal(path);
    if (contents.validBytes < contents.fileBytes) {
      log.warn('write-ahead log tail torn or corrupt: truncated after the last good record', { file: path, keptBytes: contents.validBytes, cutBytes: contents.fileBytes - contents.validBytes });
      await truncateWal(path, contents.validBytes);
      walBytesTruncated += contents.fileBytes - contents.validBytes;
    }
    for (const record of contents.records) {
      const ops = decodeRecord(record);
      assert(ops !== undefined, 'readWal returns only records that decode');
      for (const op of ops) memtable.put(op.key, ++lastSeq, op.value);
      walRecordsReplayed += 1;
    }
    memtable.walNumbers.push(file.number);
    reuseWal = { number: file.number, bytes: contents.validBytes };
  }

  const highest = files.reduce((max, file) => Math.max(max, file.number), 0);
  const nextFileNumber = Math.max(manifest.nextFileNumber, highest + 1);
  return { tables, memtable, lastSeq, nextFileNumber, reuseWal, walRecordsReplayed, walBytesTruncated, orphansDeleted };
}
