/**
 * Slot `storage.kv`: the ordered key-value engine under a series store (Craft #3, phase 1's
 * lesson: an LSM tree). Keys and values are bytes; keys are ordered by unsigned byte-wise
 * comparison (memcmp, a shorter key that is a prefix of a longer one sorts first).
 *
 * Two engines fill it: LevelDB through the `level` package, and the project's own LSM in
 * TypeScript. Both pass the same model test (`test/kv.test.ts`).
 */
import type { Logger } from '../log.js';

export type KvOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

/** Bounds of a range read; any combination, all optional (no bounds = every key). */
export interface KvRange {
  gt?: Uint8Array;
  gte?: Uint8Array;
  lt?: Uint8Array;
  lte?: Uint8Array;
  /** Descending order when true. */
  reverse?: boolean;
  /** At most this many entries (default: no limit). */
  limit?: number;
}

export type KvEntry = [key: Uint8Array, value: Uint8Array];

/** What a consistent point-in-time view can do: reads that see no later write. */
export interface KvReader {
  /** The value of `key`, or `undefined` when absent. The returned bytes are the caller's. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Values in the order of `keys`, `undefined` where absent. */
  getMany(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /**
   * Entries in key order (or reverse), yielded in arrays of up to `chunkEntries` (default
   * 1,000). The iteration reads from a snapshot taken when it starts: writes made while it
   * runs are not seen. Breaking out of the loop releases it.
   */
  iterate(range?: KvRange, chunkEntries?: number): AsyncIterable<KvEntry[]>;
}

/** An explicit snapshot; MUST be closed. Reads through it never see writes made after it was taken. */
export interface KvSnapshot extends KvReader {
  close(): Promise<void>;
}

export interface KvEngine extends KvReader {
  /** Opens (creating the directory if needed) and recovers after a crash. */
  open(): Promise<void>;
  /**
   * Applies every op atomically: after a crash either all of them are visible or none.
   * With `sync: true` they are on stable storage (fsync) when the promise resolves; without
   * it they survive a process crash but maybe not a power loss.
   */
  batch(ops: KvOp[], options?: { sync?: boolean }): Promise<void>;
  snapshot(): KvSnapshot;
  /** Bytes the engine's files take on disk now. */
  bytesOnDisk(): Promise<number>;
  /**
   * Compacts everything now (deleted and overwritten entries dropped, files merged), for
   * benchmarks and explicit flushes; resolves when done. Normal operation never needs it.
   */
  compactAll(): Promise<void>;
  /** Closes; `destroy` also deletes the engine's files. Open snapshots and iterations end. */
  close(options?: { destroy?: boolean }): Promise<void>;
}

export interface KvContext {
  /** Private directory of this engine. */
  dataDir: string;
  log: Logger;
}
