/**
 * Slot `query.evaluator`: the query engine of the query actor (Craft #4's phases).
 */
import type { SeriesSamples } from '../model.js';
import type { Logger } from '../log.js';
import type { Clock } from '../clock.js';
import type { Queryable } from './storage.js';
import type { RuleGroup } from '../rules/rule-file.js';

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
  /**
   * The tenant the query is for (auth on): the query actor hands the evaluator a source that sees
   * only that tenant's series (core/query/tenant.ts); evaluators that keep results (the cache)
   * keep them per tenant.
   */
  tenant?: string;
}

export type QueryResult =
  | { resultType: 'matrix'; result: SeriesSamples[] }
  | { resultType: 'vector'; result: { labels: Record<string, string>; timestampMs: number; value: number }[] }
  | { resultType: 'scalar'; result: { timestampMs: number; value: number } }
  | { resultType: 'string'; result: { timestampMs: number; value: string } };

/** What EXPLAIN answers: how an evaluator would run a query, without running it. */
export interface QueryPlan {
  /** The evaluator that made the plan. */
  evaluator: string;
  /** The expression as it would be evaluated (after the evaluator's rewrites), canonical text. */
  expr: string;
  /** `instant at …`, `range … step …` or `raw …`. */
  mode: string;
  /** Storage selects, in evaluation order: matchers, time range (ms, inclusive), hints, selector nodes served. */
  selects: { matchers: string; minTimeMs: number; maxTimeMs: number; hints: Record<string, unknown>; nodes: number }[];
  /** What the evaluator changed or shared, one line each. */
  rewrites: string[];
  /** Everything above as indented text. */
  text: string;
}

export interface QueryEvaluator {
  /**
   * Parses and evaluates. Errors are `CraftError`s: CRAFT_QUERY_PARSE (malformed expression),
   * CRAFT_BAD_REQUEST (bad parameters), CRAFT_QUERY_EXECUTION, CRAFT_QUERY_LIMIT, CRAFT_QUERY_TIMEOUT.
   */
  evaluate(request: QueryRequest, source: SampleSource): Promise<QueryResult>;
  /** How `evaluate` would run the request (parse errors as in `evaluate`). */
  explain?(request: QueryRequest): Promise<QueryPlan>;
  /** Releases what the evaluator holds (worker threads, caches); called when it is swapped out or its actor stops. */
  close?(): Promise<void>;
  /** Storage applied samples with timestamps in `[minTimeMs, maxTimeMs]` (a cache forgets what they change). */
  dataChanged?(minTimeMs: number, maxTimeMs: number): void;
  /** Recording-rule groups the evaluator wants evaluated on their interval (the query actor runs them). */
  recordingRules?(): RuleGroup[];
}

export interface QueryContext {
  log: Logger;
  /** Time source for "now" and deadlines; injected so tests can drive it. */
  clock: Clock;
}
