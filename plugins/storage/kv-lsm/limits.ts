/**
 * Every limit of the LSM engine in one place, with its unit. A limit exists so that no
 * queue, buffer or file grows without bound: a batch that breaks one is refused with a
 * `KvLimitError` naming it; a limit the engine itself reaches (too many immutable memtables,
 * too many tables) makes writers wait instead of growing memory or read cost further.
 */

/** Defaults of the plugin options (see the schema in kv-lsm.plugin.ts). */
export const MEMTABLE_BYTES_DEFAULT = 4 * 1024 * 1024;
export const BLOCK_BYTES_DEFAULT = 4 * 1024;
export const BLOOM_BITS_PER_KEY_DEFAULT = 10;
/** Tables of similar size that, side by side, trigger a size-tiered compaction. */
export const COMPACTION_TRIGGER_TABLES_DEFAULT = 4;

/** Bounds of the options: tiny values exist so that tests make flushes and compactions happen. */
export const MEMTABLE_BYTES_MIN = 1024;
export const MEMTABLE_BYTES_MAX = 256 * 1024 * 1024;
export const BLOCK_BYTES_MIN = 64;
export const BLOCK_BYTES_MAX = 1024 * 1024;
export const BLOOM_BITS_PER_KEY_MIN = 1;
export const BLOOM_BITS_PER_KEY_MAX = 32;
export const COMPACTION_TRIGGER_TABLES_MIN = 2;
export const COMPACTION_TRIGGER_TABLES_MAX = 16;

/** Largest key and value; they bound one memtable node and one block entry. */
export const KEY_BYTES_MAX = 64 * 1024;
export const VALUE_BYTES_MAX = 16 * 1024 * 1024;
/** Most operations in one batch (one WAL record). */
export const BATCH_OPS_MAX = 100_000;
/** Largest WAL record (one encoded batch); recovery treats a longer length prefix as corruption. */
export const WAL_RECORD_BYTES_MAX = 64 * 1024 * 1024;

/** Batches waiting for the log writer; a caller beyond this waits for room. */
export const WRITE_QUEUE_BATCHES_MAX = 10_000;
/** One group commit writes at most this many batches and bytes with one write and one fsync. */
export const GROUP_COMMIT_BATCHES_MAX = 1_000;
export const GROUP_COMMIT_BYTES_MAX = 8 * 1024 * 1024;

/** Full memtables waiting to be flushed; writers wait when this many are queued. */
export const IMMUTABLE_MEMTABLES_MAX = 2;
/** Memory a memtable node costs besides its key and value (node object, tower array), counted against memtableBytes. */
export const MEMTABLE_NODE_OVERHEAD_BYTES = 64;
/** Tower height of the skip list: 4^12 ≈ 16 M entries before search degrades. */
export const SKIPLIST_HEIGHT_MAX = 12;

/** Above this many tables, compaction merges the cheapest run even if sizes are not similar. */
export const TABLES_BEFORE_FORCED_COMPACTION = 24;
/** At this many tables, flushes wait for compaction (and so, through the memtables, do writers). */
export const TABLES_MAX = 48;
/** Most tables one compaction merges (open cursors, one per input). */
export const COMPACTION_INPUT_TABLES_MAX = 16;
/** Tables whose sizes are within this factor are "similar" for size-tiered compaction. */
export const COMPACTION_SIZE_RATIO_MAX = 2;
/** Compaction gives the event loop a turn after this many entries, so writes are not held up. */
export const COMPACTION_YIELD_ENTRIES = 2_048;

/** Decoded blocks kept for point reads, in bytes (block bytes plus per-entry overhead). */
export const BLOCK_CACHE_BYTES_MAX = 8 * 1024 * 1024;
/** Consecutive blocks a range read fetches with one read. */
export const ITERATOR_READAHEAD_BYTES = 64 * 1024;
/** Compaction reads its inputs in larger runs: it reads every block anyway. */
export const COMPACTION_READAHEAD_BYTES = 256 * 1024;
/** A table writer hands the file this much at once. */
export const TABLE_WRITE_BUFFER_BYTES = 256 * 1024;

/** Entries per yielded array by default, and the most a caller may ask for. */
export const ITERATE_CHUNK_ENTRIES_DEFAULT = 1_000;
export const ITERATE_CHUNK_ENTRIES_MAX = 100_000;
/** Open snapshots and iterations (each pins a memtable set and table files). */
export const OPEN_VIEWS_MAX = 10_000;
