/**
 * The live tables, newest first: the list every flush and compaction changes, the manifest
 * that makes each change durable, and the lifetime of each table file.
 *
 * Changes go through one lock and are computed from the list as it is at that moment, then
 * the manifest is written (manifest.ts: temp file, fsync, rename, fsync of the directory).
 * So a flush and a compaction that finish together cannot lose each other's change, and a
 * crash leaves the old list or the new one.
 *
 * A table leaves the list when a compaction replaces it, but its file is deleted only when
 * no snapshot or iteration holds it any more (versions.ts counts the holders).
 */
import { unlink } from 'node:fs/promises';
import type { Logger } from '../../../core/log.js';
import { MANIFEST_FORMAT_VERSION, writeManifest } from './manifest.js';
import type { Table } from './table.js';
import { Holders } from './versions.js';
import { assert } from './errors.js';

export class TableSet {
  private tables: readonly Table[] = [];
  private lock: Promise<void> = Promise.resolve();
  private readonly deletions = new Set<Promise<void>>();
  /** Holders of each table: this set (while a table is live), and every open view. */
  readonly holders = new Holders((table) => this.delete(table));

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Live tables, newest first. */
  get list(): readonly Table[] {
    return this.tables;
  }

  get bytes(): number {
    return this.tables.reduce((sum, table) => sum + table.bytes, 0);
  }

  /** The tables recovery opened, as they are in the manifest already. */
  adopt(tables: readonly Table[]): void {
    assert(this.tables.length === 0, 'a table set adopts once');
    this.tables = tables;
    this.holders.hold(tables);
  }

  /**
   * Under the lock: runs `change` (which calls `prepend` or `replace`, and may change the
   * caller's own state), then writes the manifest with the list and `fields()` as they are then.
   */
  commit(change: () => void, fields: () => { nextFileNumber: number; logNumber: number }): Promise<void> {
    const run = this.lock.then(async () => {
      change();
      await writeManifest(this.dir, { formatVersion: MANIFEST_FORMAT_VERSION, ...fields(), tables: this.tables.map((table) => ({ number: table.number, bytes: table.bytes })) });
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** A flushed table: newer than every live one. Only inside `commit`. */
  prepend(table: Table): void {
    this.tables = [table, ...this.tables];
    this.holders.hold([table]);
  }

  /** A compaction's output in place of its inputs (adjacent, as flushes only add in front); only inside `commit`. */
  replace(inputs: readonly Table[], output: Table | undefined): void {
    const at = this.tables.indexOf(inputs[0]!);
    assert(at >= 0 && inputs.every((input, i) => this.tables[at + i] === input), 'compaction inputs are adjacent in the live tables');
    this.tables = [...this.tables.slice(0, at), ...(output === undefined ? [] : [output]), ...this.tables.slice(at + inputs.length)];
    if (output !== undefined) this.holders.hold([output]);
  }

  /** Once the manifest no longer names `tables`: their files go when their last holder lets go. */
  retire(tables: readonly Table[]): void {
    this.holders.retire(tables);
  }

  private delete(table: Table): void {
    const deletion = table
      .close()
      .then(() => unlink(table.path))
      .catch((error: unknown) => this.log.warn('kv.lsm could not delete an obsolete table', { file: table.path, error }))
      .finally(() => this.deletions.delete(deletion));
    this.deletions.add(deletion);
  }

  get deleting(): boolean {
    return this.deletions.size > 0;
  }

  /** Waits for manifest writes and file deletions under way. */
  async settled(): Promise<void> {
    await this.lock;
    while (this.deletions.size > 0) await Promise.all(this.deletions);
  }

  /** The engine is closing: ends every view, closes every live table, waits for deletions. */
  async close(): Promise<void> {
    await this.lock;
    this.holders.releaseAll();
    await Promise.all(this.tables.map((table) => table.close()));
    this.tables = [];
    await this.settled();
  }
}
