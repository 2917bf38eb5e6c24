/**
 * Reading a version at a sequence number: point reads look in the memtables, newest first,
 * then in the tables, newest first, and stop at the first entry found (a tombstone means
 * "absent"); range reads merge a cursor per memtable and per overlapping table (merge.ts),
 * drop tombstones and copy out what they yield, in chunks.
 *
 * Everything returned is a fresh copy: the engine's buffers (log records, decoded blocks)
 * are shared and must not be changed by a caller.
 */
import type { KvEntry, KvRange, KvSnapshot } from '../../../core/slots/kv.js';
import { boundsOf, overlaps, type Cursor } from './cursor.js';
import { MergeCursor } from './merge.js';
import type { Holders, Version, View } from './versions.js';
import { ITERATE_CHUNK_ENTRIES_DEFAULT, ITERATE_CHUNK_ENTRIES_MAX, ITERATOR_READAHEAD_BYTES } from './limits.js';
import { KvClosedError } from './errors.js';

const copy = (bytes: Uint8Array): Uint8Array => Buffer.from(bytes);

export async function readKey(version: Version, seq: number, key: Uint8Array, holders: Holders): Promise<Uint8Array | undefined> {
  return (await readKeys(version, seq, [key], holders))[0];
}

/** Values of `keys` in `version` at `seq`; tables are held for the duration, so a compaction finishing meanwhile cannot delete them. */
export async function readKeys(version: Version, seq: number, keys: Uint8Array[], holders: Holders): Promise<(Uint8Array | undefined)[]> {
  const out = new Array<Uint8Array | undefined>(keys.length);
  const missing: number[] = [];
  keys.forEach((key, i) => {
    for (const memtable of version.memtables) {
      const found = memtable.get(key, seq);
      if (found !== undefined) {
        out[i] = found.value === null ? undefined : copy(found.value);
        return;
      }
    }
    missing.push(i);
  });
  if (missing.length === 0 || version.tables.length === 0) return out;
  holders.hold(version.tables);
  try {
    for (const i of missing) {
      for (const table of version.tables) {
        const found = await table.get(keys[i]!);
        if (found !== undefined) {
          out[i] = found.value === null ? undefined : copy(found.value);
          break;
        }
      }
    }
  } finally {
    holders.letGo(version.tables);
  }
  return out;
}

function checkChunk(chunkEntries: number): void {
  if (!Number.isInteger(chunkEntries) || chunkEntries < 1 || chunkEntries > ITERATE_CHUNK_ENTRIES_MAX) {
    throw new RangeError(`chunkEntries must be an integer 1–${ITERATE_CHUNK_ENTRIES_MAX}, got ${chunkEntries}`);
  }
}

/** The entry limit of a range: no limit when absent, negative or infinite (as LevelDB reads -1). */
const limitOf = (range: KvRange): number => (range.limit === undefined || !Number.isFinite(range.limit) || range.limit < 0 ? Infinity : Math.floor(range.limit));

/**
 * A range read. `openView` runs when iteration starts (the first `next()`), so the snapshot
 * is taken then; the view is released when the loop ends, breaks or throws.
 */
export async function* scan(openView: () => View, range: KvRange = {}, chunkEntries = ITERATE_CHUNK_ENTRIES_DEFAULT): AsyncGenerator<KvEntry[]> {
  checkChunk(chunkEntries);
  let remaining = limitOf(range);
  if (remaining === 0) return;
  const view = openView();
  const closed = (error: unknown): unknown => (view.open ? error : new KvClosedError('iteration'));
  try {
    const bounds = boundsOf(range);
    const reverse = range.reverse === true;
    const { memtables, tables } = view.version;
    const cursors: Cursor[] = memtables.map((memtable) => memtable.cursor(view.seq, bounds, reverse));
    try {
      for (const table of tables) if (overlaps(table.smallest, table.largest, bounds)) cursors.push(await table.cursor(bounds, reverse, ITERATOR_READAHEAD_BYTES));
    } catch (error) {
      throw closed(error);
    }
    const merged = cursors.length === 1 ? cursors[0]! : new MergeCursor(cursors, reverse);
    let chunk: KvEntry[] = [];
    while (merged.valid()) {
      const value = merged.value();
      if (value !== null) {
        chunk.push([copy(merged.key()), copy(value)]);
        remaining -= 1;
        if (remaining === 0) break;
        if (chunk.length === chunkEntries) {
          yield chunk;
          chunk = [];
          view.check('iteration');
        }
      }
      const wait = merged.next();
      if (wait) {
        try {
          await wait;
        } catch (error) {
          throw closed(error);
        }
        view.check('iteration');
      }
    }
    if (chunk.length > 0) yield chunk;
  } finally {
    view.release();
  }
}

/** An explicit snapshot: a view held until `close()` (or until the engine closes). */
export class LsmSnapshot implements KvSnapshot {
  constructor(
    private readonly view: View,
    private readonly holders: Holders,
  ) {}

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.view.check('snapshot');
    return readKey(this.view.version, this.view.seq, key, this.holders);
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    this.view.check('snapshot');
    return readKeys(this.view.version, this.view.seq, keys, this.holders);
  }

  iterate(range?: KvRange, chunkEntries?: number): AsyncIterable<KvEntry[]> {
    // The iteration holds its own view of the same version, so closing the snapshot mid-loop does not pull its tables away.
    return scan(
      () => {
        this.view.check('snapshot');
        return this.holders.open(this.view.seq, this.view.version);
      },
      range,
      chunkEntries,
    );
  }

  async close(): Promise<void> {
    this.view.release();
  }
}
