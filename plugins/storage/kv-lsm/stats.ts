/**
 * What the LSM engine reports about itself (`LsmEngine.stats()`): counters since it was
 * opened, and the shape it is in now. Tests use them to check that flushes, compactions and
 * group commits really happened; benchmarks to explain their figures.
 */
/** What the engine has done since it was opened; for tests, benchmarks and the curious. */
export interface LsmStats {
  flushes: number;
  compactions: number;
  /** Compactions chosen because there were too many tables, not because sizes matched. */
  forcedCompactions: number;
  tombstonesDropped: number;
  tables: number;
  tableBytes: number;
  immutableMemtables: number;
  memtableBytes: number;
  walRecords: number;
  /** Write rounds of the commit loop, and the fsyncs among them (group commit: fewer than synced batches). */
  walGroups: number;
  walSyncs: number;
  syncedBatches: number;
  /** Recovery at the last open. */
  walRecordsReplayed: number;
  walBytesTruncated: number;
  orphansDeleted: number;
  /** Times a writer waited for a flush, and a flush for a compaction. */
  writeStalls: number;
  bloomNegatives: number;
  blockReads: number;
  openViews: number;
}
