/**
 * Snapshots: what a reader sees, and what keeps it readable.
 *
 * A `Version` is an immutable pair (memtables, tables), both newest first. Every flush,
 * memtable switch and compaction installs a new version; none changes an old one.
 *
 * A `View` is a version plus a sequence number. Reads through it consult exactly the
 * version's memtables and tables and, in the memtables, only versions of keys with a
 * sequence number ≤ the view's. So:
 *   - later writes are invisible: they carry higher sequence numbers (the active memtable
 *     keeps taking writes while views read it);
 *   - a later flush is invisible: the view still holds the memtable object it read, frozen;
 *   - a later compaction is invisible: the view holds references to its tables, and a table
 *     compaction replaced is deleted from disk only when its last reference goes.
 *
 * This is the "reference-counted table sets plus sequence-numbered memtables" design. Its
 * price: an open snapshot keeps its memtables in memory and its tables on disk. Its gain:
 * tables need no sequence numbers and compaction keeps only each key's newest entry,
 * whatever snapshots are open. (LevelDB tags every entry in every table with a sequence
 * number, and its compactions keep old versions that open snapshots may still need.)
 */
import type { Memtable } from './memtable.js';
import type { Table } from './table.js';
import { OPEN_VIEWS_MAX } from './limits.js';
import { KvClosedError, KvLimitError, assert } from './errors.js';

export class Version {
  constructor(
    readonly memtables: readonly Memtable[],
    readonly tables: readonly Table[],
  ) {}
}

export class View {
  private released = false;

  constructor(
    readonly seq: number,
    readonly version: Version,
    private readonly onRelease: (view: View) => void,
  ) {}

  get open(): boolean {
    return !this.released;
  }

  /** Throws `KvClosedError` once released (explicitly, or by the engine closing). */
  check(what: string): void {
    if (this.released) throw new KvClosedError(what);
  }

  /** Lets go of the view's tables; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease(this);
  }
}

/**
 * Counts the holders of each table and of each view. The current version is one holder of
 * each of its tables; each open view is one holder of each table in its version.
 */
export class Holders {
  private readonly views = new Set<View>();

  /** @param onUnreferenced called once for a table that is obsolete and has no holder left (delete its file). */
  constructor(private readonly onUnreferenced: (table: Table) => void) {}

  get openViews(): number {
    return this.views.size;
  }

  hold(tables: readonly Table[]): void {
    for (const table of tables) table.refs += 1;
  }

  letGo(tables: readonly Table[]): void {
    for (const table of tables) {
      table.refs -= 1;
      assert(table.refs >= 0, `table ${table.number} released more often than held`);
      if (table.refs === 0 && table.obsolete) this.onUnreferenced(table);
    }
  }

  /** A table the current version no longer lists: deleted once nobody holds it. */
  retire(tables: readonly Table[]): void {
    for (const table of tables) table.obsolete = true;
    this.letGo(tables);
  }

  /** A new view of `version` at `seq`; refused beyond OPEN_VIEWS_MAX (a leak of unclosed snapshots, most likely). */
  open(seq: number, version: Version): View {
    if (this.views.size >= OPEN_VIEWS_MAX) throw new KvLimitError('OPEN_VIEWS_MAX', `${this.views.size} snapshots and iterations are open; close some`);
    this.hold(version.tables);
    const view = new View(seq, version, (released) => {
      this.views.delete(released);
      this.letGo(released.version.tables);
    });
    this.views.add(view);
    return view;
  }

  /** Releases every open view (the engine is closing). */
  releaseAll(): void {
    for (const view of [...this.views]) view.release();
  }
}
