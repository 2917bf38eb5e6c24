/**
 * Craft #3, phase 3 — a label index. Phase 2 found series by metric name and then tested
 * every matcher against every candidate: a query without a metric name, or with a rare
 * label under a common name (`http_requests_total{pod="web-7"}` among 50,000 series), paid
 * for every series. This phase answers matchers from postings lists
 * (shared/postings.ts; the index is shared/label-index.ts, which phase 4 reuses): the work follows the rarest matcher.
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
import { definePlugin } from '../../core/plugins/define.js';
import { ChunkStore, chunkStoreOptions } from './shared/chunk-store.js';
import { LabelIndex, labelIndexOptions } from './shared/label-index.js';

const options = chunkStoreOptions.extend(labelIndexOptions.shape);

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
