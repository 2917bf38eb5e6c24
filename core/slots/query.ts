/**
 * Slot `query.evaluator`: the query engine of the query actor (Craft #4's phases).
 */
import type { SeriesSamples } from '../model.js';
import type { Logger } from '../log.js';
import type { Clock } from '../clock.js';
import type { Queryable } from './storage.js';

/** Where an evaluator reads samples from: storage's `Queryable` (over the bus, `StorageClient`). */
export type SampleSource = Queryable;

/**
 * One query. Three forms:
 * - range: `startMs`, `endMs` and `stepMs` — evaluated at start, start + step, … ≤ end;
 * - instant: `timeMs` (default: now) — evaluated once;
 * - raw: `startMs`/`endMs` without a step, for a plain series selector only — every stored
 *   sample in the range, as the seed's `GET /query` returned them.
 */
export interface QueryRequest {
  expr: string;
  /** Range bounds, inclusive, ms. */
  startMs?: number;
  endMs?: number;
  stepMs?: number;
  timeMs?: number;
  /** Evaluation deadline for this query, ms (capped by the evaluator's own limit). */
  timeoutMs?: number;
  /** Instant-selector lookback for this query, ms (Prometheus's `lookback_delta` parameter). */
  lookbackDeltaMs?: number;
}

export type QueryResult =
  | { resultType: 'matrix'; result: SeriesSamples[] }
  | { resultType: 'vector'; result: { labels: Record<string, string>; timestampMs: number; value: number }[] }
  | { resultType: 'scalar'; result: { timestampMs: number; value: number } }
  | { resultType: 'string'; result: { timestampMs: number; value: string } };

export interface QueryEvaluator {
  /**
   * Parses and evaluates. Errors are `CraftError`s: CRAFT_QUERY_PARSE (malformed expression),
   * CRAFT_BAD_REQUEST (bad parameters), CRAFT_QUERY_EXECUTION, CRAFT_QUERY_LIMIT, CRAFT_QUERY_TIMEOUT.
   */
  evaluate(request: QueryRequest, source: SampleSource): Promise<QueryResult>;
}

export interface QueryContext {
  log: Logger;
  /** Time source for "now" and deadlines; injected so tests can drive it. */
  clock: Clock;
}
