/**
 * Slot `alerting.evaluator`: rule evaluation of the alerting actor (Craft #5's phases).
 */
import type { Logger } from '../log.js';
import type { QueryRequest, QueryResult } from './query.js';

export interface AlertRule {
  name: string;
  /** Human-readable condition, e.g. `avg(cpu_usage[60s]) > 80`. */
  expr: string;
  labels?: Record<string, string>;
}

/** What evaluation found for one rule. */
export interface RuleEvaluation {
  rule: string;
  /** Whether the condition holds now. */
  active: boolean;
  value: number | null;
  labels: Record<string, string>;
  summary: string;
}

/** How an evaluator asks questions: the query actor, over the bus. */
export interface QueryClient {
  query(request: QueryRequest): Promise<QueryResult>;
}

export interface AlertEvaluator {
  rules(): AlertRule[];
  /** Evaluates every rule once at `nowMs`. */
  evaluate(nowMs: number, query: QueryClient): Promise<RuleEvaluation[]>;
}

export interface AlertingContext {
  log: Logger;
}
