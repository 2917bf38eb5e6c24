/**
 * Craft #3, phase 3 — a label index. Phase 2 found series by metric name and then tested
 * every matcher against every candidate: a query without a metric name, or with a rare
 * label under a common name (`http_requests_total{pod="web-7"}` among 50,000 series), paid
 * for every series. This phase answers matchers from postings lists
 * (p3-label-index/postings.ts): the work follows the rarest matcher.
 *
 * Negative lookups in time: the store is cut into blocks of `blockMs` (2 h, like Prometheus's
 * head blocks). Each block has a bloom filter of the label pairs of the series that have
 * samples in it. A query over a range asks the blocks it covers about each `name="value"`
 * matcher first; when no block may hold the pair, the answer is empty without touching the
 * postings or a single chunk — the case of a label that exists, but not then (a pod that
 * was replaced yesterday). A "maybe" costs nothing more than phase 3 without blooms.
 *
 * Cardinality statistics — series per label name (with its number of values) and per label
 * pair — come from the postings lengths, so `craft.storage.cardinality` is cheap.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import type { LabelMatcher } from '../../core/model.js';
import type { CardinalityStats } from '../../core/slots/storage.js';
import { ChunkStore, chunkStoreOptions, type SeriesIndex } from './shared/chunk-store.js';
import type { SeriesState } from './shared/chunk-series.js';
import { StringBloom } from './shared/bloom.js';
import { Postings } from './p3-label-index/postings.js';

const options = chunkStoreOptions.extend({
  /** Span of one bloom-filtered block, ms. */
  blockMs: z.number().int().positive().default(2 * 3_600_000),
  /** Bits of each block's bloom filter (32 KiB by default: ~1 % false positives at 27,000 label pairs). */
  blockBloomBits: z.number().int().min(1_024).max(1 << 27).default(1 << 18),
  /** Queries over more blocks than this skip the bloom check (it would cost more than it saves). */
  blockBloomQueryBlocksMax: z.number().int().positive().default(1_000),
});
type Options = z.infer<typeof options>;

const BLOOM_PROBES = 7;
/** Blocks kept, at most: the oldest bloom is dropped beyond (a dropped block answers "maybe"). */
export const BLOCK_BLOOMS_MAX = 100_000;

const pairKey = (name: string, value: string): string => `${name}\u0000${value}`;

class LabelIndex implements SeriesIndex {
  private readonly postings = new Postings();
  private readonly byRef = new Map<number, SeriesState>();
  private readonly blooms = new Map<number, StringBloom>();
  /** The last block each series was noted in, so a sample in the same block costs one lookup. */
  private readonly lastBlock = new Map<SeriesState, number>();
  /** Once a bloom was dropped for the limit, a block without one may still hold data. */
  private bloomsDropped = false;

  constructor(private readonly options: Options) {}

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

export default definePlugin({
  id: 'storage.label-index',
  craft: 3,
  phase: 3,
  slot: 'storage.engine',
  version: '1.0.0',
  summary: 'Gorilla chunks found through postings lists (intersected smallest first) and per-block bloom filters of label pairs',
  durable: true,
  options,
  create: (context, chosen) => new ChunkStore(context, chosen, new LabelIndex(chosen)),
});
