/**
 * `storage.kv` filled by the project's own LSM tree, in TypeScript: the teaching engine of
 * Craft #3 phase 1, real enough to pass the same model and crash tests as LevelDB.
 *
 *   writes  → WAL (one CRC'd record per batch, group commit) → skip-list memtable
 *   flushes → immutable SSTables (4 KiB blocks, sparse index, bloom filter, footer)
 *   merges  → size-tiered compaction in the background; a manifest swapped atomically
 *   reads   → memtables + tables, newest wins; snapshots by sequence number + held table sets
 *
 * The design, file by file, is in plugins/storage/kv-lsm/ (each file opens with why it is
 * built that way); the on-disk formats and what is left out compared with LevelDB are in
 * docs/storage/lsm.md.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import { LsmEngine } from './kv-lsm/engine.js';
import {
  BLOCK_BYTES_DEFAULT,
  BLOCK_BYTES_MAX,
  BLOCK_BYTES_MIN,
  BLOOM_BITS_PER_KEY_DEFAULT,
  BLOOM_BITS_PER_KEY_MAX,
  BLOOM_BITS_PER_KEY_MIN,
  COMPACTION_TRIGGER_TABLES_DEFAULT,
  COMPACTION_TRIGGER_TABLES_MAX,
  COMPACTION_TRIGGER_TABLES_MIN,
  MEMTABLE_BYTES_DEFAULT,
  MEMTABLE_BYTES_MAX,
  MEMTABLE_BYTES_MIN,
} from './kv-lsm/limits.js';

const options = z
  .object({
    /** A memtable past this many bytes (keys, values, per-entry overhead) is frozen and flushed to a table. */
    memtableBytes: z.number().int().min(MEMTABLE_BYTES_MIN).max(MEMTABLE_BYTES_MAX).default(MEMTABLE_BYTES_DEFAULT),
    /** Target size of a table's data blocks, the unit of a read. */
    blockBytes: z.number().int().min(BLOCK_BYTES_MIN).max(BLOCK_BYTES_MAX).default(BLOCK_BYTES_DEFAULT),
    /** Bloom filter bits per key: 10 gives about 1 % false positives. */
    bloomBitsPerKey: z.number().int().min(BLOOM_BITS_PER_KEY_MIN).max(BLOOM_BITS_PER_KEY_MAX).default(BLOOM_BITS_PER_KEY_DEFAULT),
    /** Adjacent tables of similar size that trigger a size-tiered compaction. */
    compactionTrigger: z.number().int().min(COMPACTION_TRIGGER_TABLES_MIN).max(COMPACTION_TRIGGER_TABLES_MAX).default(COMPACTION_TRIGGER_TABLES_DEFAULT),
  })
  .strict();

export default definePlugin({
  id: 'kv.lsm',
  craft: 3,
  phase: 1,
  slot: 'storage.kv',
  version: '1.0.0',
  summary: "The project's own LSM tree: WAL with group commit, skip-list memtable, bloom-filtered SSTables, size-tiered compaction",
  durable: true,
  options,
  create: (context, parsed) => new LsmEngine(context, parsed),
});
