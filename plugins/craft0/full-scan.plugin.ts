/**
 * Craft #0 query: a series selector evaluated by asking storage for every matching sample
 * in the range (the seed's full scan). A range query returns the raw samples (a matrix); an
 * instant query returns each series' latest sample within five minutes before the time.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { parseSelector } from '../../core/query/selector.js';
import type { QueryEvaluator, QueryRequest, QueryResult, SampleSource } from '../../core/slots/query.js';

/** Prometheus's default lookback for instant selectors. */
const LOOKBACK_MS = 5 * 60_000;

class FullScanQuery implements QueryEvaluator {
  async evaluate(request: QueryRequest, source: SampleSource): Promise<QueryResult> {
    const matchers = parseSelector(request.expr);
    if (request.startMs !== undefined || request.endMs !== undefined) {
      const series = await source.querier(request.startMs ?? 0, request.endMs ?? Number.MAX_SAFE_INTEGER).select(matchers);
      return { resultType: 'matrix', result: series };
    }
    const timeMs = request.timeMs ?? Date.now();
    const series = await source.querier(timeMs - LOOKBACK_MS, timeMs).select(matchers);
    return {
      resultType: 'vector',
      result: series
        .filter((s) => s.timestampsMs.length > 0)
        .map((s) => ({ labels: s.labels, timestampMs: s.timestampsMs.at(-1)!, value: s.values.at(-1)! })),
    };
  }
}

export default definePlugin({
  id: 'craft0.full-scan',
  craft: 0,
  phase: 0,
  slot: 'query.evaluator',
  version: '1.0.0',
  summary: 'Series selector only; every query asks storage for all matching raw samples',
  create: () => new FullScanQuery(),
});
