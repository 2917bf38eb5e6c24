/**
 * Slot `query.evaluator`: the query engine of the query actor (Craft #4's phases).
 */
import type { SeriesSamples } from '../model.js';
import type { Logger } from '../log.js';
import type { Queryable } from './storage.js';

/** Where an evaluator reads samples from: storage's `Queryable` (over the bus, `StorageClient`). */
export type SampleSource = Queryable;

export interface QueryRequest {
  expr: string;
  /** Range bounds, inclusive, ms. A query without them is evaluated at `timeMs` (default now). */
  startMs?: number;
  endMs?: number;
  stepMs?: number;
  timeMs?: number;
}

export type QueryResult =
  | { resultType: 'matrix'; result: SeriesSamples[] }
  | { resultType: 'vector'; result: { labels: Record<string, string>; timestampMs: number; value: number }[] }
  | { resultType: 'scalar'; result: { timestampMs: number; value: number } };

export interface QueryEvaluator {
  /** Parses and evaluates; a malformed expression is a `CraftError` with code CRAFT_BAD_REQUEST. */
  evaluate(request: QueryRequest, source: SampleSource): Promise<QueryResult>;
}

export interface QueryContext {
  log: Logger;
}
