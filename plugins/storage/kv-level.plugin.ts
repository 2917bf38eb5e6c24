/**
 * `storage.kv` over LevelDB (the `level` package, classic-level underneath): the reference
 * engine the project's own LSM (`kv.lsm`) is measured and model-tested against.
 *
 * Every call maps onto one LevelDB call: batches are LevelDB write batches (atomic, `sync`
 * passed through), explicit snapshots are `db.snapshot()` tokens handed to reads as
 * `{ snapshot }`, and range reads are iterators drained with `nextv(chunk)` and always closed
 * (also when the consumer breaks out of the loop, through the generator's `finally`).
 */
import { mkdir, rm } from 'node:fs/promises';
import { directoryBytes } from './shared/disk-usage.js';
import { Level } from 'level';
import { definePlugin } from '../../core/plugins/define.js';
import type { KvContext, KvEngine, KvEntry, KvOp, KvRange, KvReader, KvSnapshot } from '../../core/slots/kv.js';

/** Entries per yielded array when the caller names no chunk size. */
const ITERATE_CHUNK_ENTRIES_DEFAULT = 1_000;
/** Largest chunk a caller may ask for: one chunk is held in memory at once. */
const ITERATE_CHUNK_ENTRIES_MAX = 100_000;

type Database = Level<Uint8Array, Uint8Array>;
type Snapshot = ReturnType<Database['snapshot']>;

/** LevelDB's iterator options for a range: only the bounds that are set (gte/lte take precedence, as in LevelDB). */
function iteratorOptions(range: KvRange, snapshot: Snapshot | undefined): Record<string, unknown> {
  const options: Record<string, unknown> = { reverse: range.reverse === true };
  if (range.gte !== undefined) options.gte = range.gte;
  else if (range.gt !== undefined) options.gt = range.gt;
  if (range.lte !== undefined) options.lte = range.lte;
  else if (range.lt !== undefined) options.lt = range.lt;
  if (range.limit !== undefined && Number.isFinite(range.limit) && range.limit >= 0) options.limit = Math.floor(range.limit);
  if (snapshot !== undefined) options.snapshot = snapshot;
  return options;
}

function checkChunk(chunkEntries: number): void {
  if (!Number.isInteger(chunkEntries) || chunkEntries < 1 || chunkEntries > ITERATE_CHUNK_ENTRIES_MAX) {
    throw new RangeError(`chunkEntries must be an integer 1–${ITERATE_CHUNK_ENTRIES_MAX}, got ${chunkEntries}`);
  }
}

/** Reads against the live database or, with `snapshot`, against that point in time. */
class LevelReader implements KvReader {
  constructor(
    protected readonly database: () => Database,
    private readonly token: () => Snapshot | undefined,
  ) {}

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const snapshot = this.token();
    return this.database().get(key, snapshot === undefined ? {} : { snapshot });
  }

  async getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const snapshot = this.token();
    return this.database().getMany(keys, snapshot === undefined ? {} : { snapshot });
  }

  async *iterate(range: KvRange = {}, chunkEntries = ITERATE_CHUNK_ENTRIES_DEFAULT): AsyncIterable<KvEntry[]> {
    checkChunk(chunkEntries);
    if (range.limit === 0) return;
    const iterator = this.database().iterator(iteratorOptions(range, this.token()));
    try {
      for (;;) {
        const entries = await iterator.nextv(chunkEntries);
        if (entries.length === 0) return;
        yield entries;
      }
    } finally {
      await iterator.close();
    }
  }
}

class LevelSnapshot extends LevelReader implements KvSnapshot {
  constructor(
    database: () => Database,
    private readonly snapshotToken: Snapshot,
  ) {
    super(database, () => snapshotToken);
  }

  async close(): Promise<void> {
    await this.snapshotToken.close();
  }
}

class LevelKvEngine extends LevelReader implements KvEngine {
  private db: Database | undefined;

  constructor(private readonly context: KvContext) {
    super(() => this.opened(), () => undefined);
  }

  private opened(): Database {
    if (this.db === undefined) throw new Error(`kv.level: not open (${this.context.dataDir})`);
    return this.db;
  }

  async open(): Promise<void> {
    await mkdir(this.context.dataDir, { recursive: true });
    this.db = new Level<Uint8Array, Uint8Array>(this.context.dataDir, { keyEncoding: 'view', valueEncoding: 'view' });
    await this.db.open();
  }

  async batch(ops: KvOp[], options: { sync?: boolean } = {}): Promise<void> {
    if (ops.length === 0) return;
    // No options object for an unsynced batch: abstract-level spreads the options into every
    // op, and when the first batches carried `{ sync: false }` every later batch ran several
    // times slower (V8 kept a slow path for the spread; seen with test/helpers/kv-bench.ts).
    if (options.sync === true) await this.opened().batch(ops, { sync: true });
    else await this.opened().batch(ops);
  }

  snapshot(): KvSnapshot {
    const database = this.opened();
    return new LevelSnapshot(() => database, database.snapshot());
  }

  async compactAll(): Promise<void> {
    // classic-level's CompactRange over the whole key space (the stores' keys start with a tag byte below 0xff).
    const db = this.opened() as unknown as { compactRange(start: Uint8Array, end: Uint8Array): Promise<void> };
    await db.compactRange(new Uint8Array(0), Uint8Array.of(0xff, 0xff, 0xff, 0xff));
  }

  async bytesOnDisk(): Promise<number> {
    return directoryBytes(this.context.dataDir);
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    // LevelDB closes open iterators and snapshots itself when the database closes.
    if (this.db !== undefined && this.db.status === 'open') await this.db.close();
    this.db = undefined;
    if (options.destroy === true) await rm(this.context.dataDir, { recursive: true, force: true });
  }
}

export default definePlugin({
  id: 'kv.level',
  craft: 3,
  phase: 1,
  slot: 'storage.kv',
  version: '1.0.0',
  summary: 'Ordered KV engine over LevelDB (classic-level): atomic synced batches, explicit snapshots, chunked iterators',
  durable: true,
  create: (context) => new LevelKvEngine(context),
});
