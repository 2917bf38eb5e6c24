/**
 * The label index of storage phases 3 and up (phase 3 introduced it; its design notes are in
 * plugins/storage/p3-label-index.plugin.ts): postings lists for matchers, per-block bloom
 * filters of label pairs for time-range negative lookups, cardinality from postings lengths.
 */
import { z } from 'zod';
import type { LabelMatcher } from '../../../core/model.js';
import type { CardinalityStats } from '../../../core/slots/storage.js';
import type { SeriesIndex } from './chunk-store.js';
import type { SeriesState } from './chunk-series.js';
import { StringBloom } from './bloom.js';
import { Postings } from './postings.js';

export const labelIndexOptions = z.object({
  /** Span of one bloom-filtered block, ms. */
  blockMs: z.number().int().positive().default(2 * 3_600_000),
  /** Bits of each block's bloom filter (32 KiB by default: ~1 % false positives at 27,000 label pairs). */
  blockBloomBits: z.number().int().min(1_024).max(1 << 27).default(1 << 18),
  /** Queries over more blocks than this skip the bloom check (it would cost more than it saves). */
  blockBloomQueryBlocksMax: z.number().int().positive().default(1_000),
});
export type LabelIndexOptions = z.infer<typeof labelIndexOptions>;

const BLOOM_PROBES = 7;
/** Blocks kept, at most: the oldest bloom is dropped beyond (a dropped block answers "maybe"). */
export const BLOCK_BLOOMS_MAX = 100_000;

const pairKey = (name: string, value: string): string => `${name}\u0000${value}`;

export class LabelIndex implements SeriesIndex {
  private readonly postings = new Postings();
  private readonly byRef = new Map<number, SeriesState>();
  private readonly blooms = new Map<number, StringBloom>();
  /** The last block each series was noted in, so a sample in the same block costs one lookup. */
  private readonly lastBlock = new Map<SeriesState, number>();
  /** Once a bloom was dropped for the limit, a block without one may still hold data. */
  private bloomsDropped = false;

  constructor(private readonly options: LabelIndexOptions) {}

  add(series: SeriesState): void {
    this.byRef.set(series.ref, series);
    this.postings.add(series.ref, series.labels);
  }

  remove(series: SeriesState): void {
    this.byRef.delete(series.ref);
    this.lastBlock.delete(series);
    this.postings.remove(series.ref, series.labels);
  }

  noteTime(series: SeriesState, minTimeMs: number, maxTimeMs: number): void {
    const first = Math.floor(minTimeMs / this.options.blockMs);
    const last = Math.floor(maxTimeMs / this.options.blockMs);
    if (first === last && this.lastBlock.get(series) === first) return;
    for (let block = first; block <= last; block++) {
      let bloom = this.blooms.get(block);
      if (bloom === undefined) {
        if (this.blooms.size >= BLOCK_BLOOMS_MAX) {
          this.blooms.delete(this.blooms.keys().next().value!);
          this.bloomsDropped = true;
        }
        this.blooms.set(block, (bloom = new StringBloom(this.options.blockBloomBits, BLOOM_PROBES)));
      }
      for (const name in series.labels) bloom.add(pairKey(name, series.labels[name]!));
    }
    this.lastBlock.set(series, last);
  }

  /** Whether some block in range may hold a series with every `name="value"` pair of the matchers. */
  private mayHaveData(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): boolean {
    const pairs = matchers.filter((m) => m.op === '=' && m.value !== '').map((m) => pairKey(m.name, m.value));
    if (pairs.length === 0) return true;
    const first = Math.floor(minTimeMs / this.options.blockMs);
    const last = Math.floor(maxTimeMs / this.options.blockMs);
    if (last - first + 1 > this.options.blockBloomQueryBlocksMax) return true;
    for (let block = first; block <= last; block++) {
      const bloom = this.blooms.get(block);
      if (bloom === undefined ? this.bloomsDropped : pairs.every((pair) => bloom.mayContain(pair))) return true;
    }
    return false;
  }

  match(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): SeriesState[] {
    if (!this.mayHaveData(matchers, minTimeMs, maxTimeMs)) return [];
    const out: SeriesState[] = [];
    for (const ref of this.postings.match(matchers)) out.push(this.byRef.get(ref)!);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  cardinality(limit: number): CardinalityStats {
    const labelNames: CardinalityStats['labelNames'] = [];
    const labelPairs: CardinalityStats['labelPairs'] = [];
    for (const name of this.postings.names()) {
      let series = 0;
      const values = this.postings.valuesOf(name);
      for (const [value, list] of values) {
        series += list.length;
        labelPairs.push({ name, value, series: list.length });
      }
      labelNames.push({ name, series, values: values.size });
    }
    const bySeries = <T extends { series: number; name: string }>(a: T, b: T): number => b.series - a.series || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    return { series: this.postings.size, labelNames: labelNames.sort(bySeries).slice(0, limit), labelPairs: labelPairs.sort(bySeries).slice(0, limit) };
  }
}

