/**
 * Craft #3, phase 2 — Gorilla chunks.
 *
 * Phase 1 stored ~21 bytes of key and value per sample and compared keys on every read.
 * This phase keeps each series' samples in chunks of up to 120 samples or 2 hours, encoded
 * as the Gorilla paper (VLDB 2015) does: delta-of-delta timestamps and XOR'd float64 values
 * (bit layout: plugins/storage/shared/gorilla.ts, docs/storage/chunks.md). A scrape-like
 * series then costs one or two bytes a sample, and a read decodes whole chunks.
 *
 * The store itself — head chunks in memory, their write-ahead records in the KV engine's
 * own atomic batch with the queue positions, checkpoints, out-of-order pieces merged by
 * sequence — is plugins/storage/shared/chunk-store.ts, which later phases build on too.
 * What is this phase's own: finding series. Here it is the simplest index that works: a map
 * from metric name to its series, then every matcher tested against every candidate's labels.
 * A query without a metric name tests every series; phase 3 replaces this with postings.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { compileMatchers, pinnedMetricName, METRIC_NAME_LABEL, type LabelMatcher } from '../../core/model.js';
import { ChunkStore, chunkStoreOptions, type SeriesIndex } from './shared/chunk-store.js';
import type { SeriesState } from './shared/chunk-series.js';

/** Metric name → its series; every other matcher is a linear test. */
class MetricNameIndex implements SeriesIndex {
  private readonly all = new Set<SeriesState>();
  private readonly byName = new Map<string, Set<SeriesState>>();

  add(series: SeriesState): void {
    this.all.add(series);
    const name = series.labels[METRIC_NAME_LABEL] ?? '';
    let set = this.byName.get(name);
    if (set === undefined) this.byName.set(name, (set = new Set()));
    set.add(series);
  }

  remove(series: SeriesState): void {
    this.all.delete(series);
    const name = series.labels[METRIC_NAME_LABEL] ?? '';
    const set = this.byName.get(name);
    set?.delete(series);
    if (set?.size === 0) this.byName.delete(name);
  }

  match(matchers: LabelMatcher[]): SeriesState[] {
    const name = pinnedMetricName(matchers);
    const pool = name === undefined ? this.all : this.byName.get(name) ?? new Set<SeriesState>();
    const matches = compileMatchers(matchers);
    const out: SeriesState[] = [];
    for (const series of pool) if (matches(series.labels)) out.push(series);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

export default definePlugin({
  id: 'storage.gorilla',
  craft: 3,
  phase: 2,
  slot: 'storage.engine',
  version: '1.0.0',
  summary: 'Gorilla chunks (delta-of-delta times, XOR values) per series; head chunks made durable by records in the KV engine',
  durable: true,
  options: chunkStoreOptions,
  create: (context, options) => new ChunkStore(context, options, new MetricNameIndex()),
});
