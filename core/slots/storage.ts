/**
 * Slot `storage.engine`: the sample store of the storage actor (Craft #3's phases).
 */
import type { LabelMatcher, SeriesSamples, WireSample } from '../model.js';
import type { Logger } from '../log.js';

/**
 * Queue positions applied to a store: key `"<epoch>:<partition>"` → last applied offset.
 * Written atomically with the samples, so replayed deliveries are recognised and skipped.
 */
export type QueuePositions = Record<string, number>;

export const positionKey = (epoch: number, partition: number): string => `${epoch}:${partition}`;

export interface StoreStats {
  series: number;
  samples: number;
  bytes: number;
}

export interface SampleStore {
  open(): Promise<void>;
  /**
   * Writes samples and the positions they came from, atomically and durably. Writing a
   * sample whose series and timestamp exist replaces its value (it does not count twice).
   */
  write(samples: WireSample[], positions: QueuePositions): Promise<void>;
  /** Positions applied so far (read at open). */
  positions(): QueuePositions;
  /** Samples of every matching series with `startMs <= t <= endMs`, ascending. */
  select(matchers: LabelMatcher[], startMs: number, endMs: number): Promise<SeriesSamples[]>;
  /** Every sample, in chunks, for handing state to another store on a swap. */
  scan(): AsyncIterable<WireSample[]>;
  stats(): StoreStats;
  /** Closes; `destroy` also deletes the store's files. */
  close(options?: { destroy?: boolean }): Promise<void>;
}

export interface StorageContext {
  /** Private directory of this store. */
  dataDir: string;
  log: Logger;
}
