/**
 * Craft #4, phase 1 — the AST interpreter. PromQL text is parsed by the peggy grammar
 * (grammars/promql.peggy) into a tree, and the tree is walked node by node over the query's
 * grid of evaluation times (plugins/query/shared/evaluator.ts): every selector asks storage for
 * its own range, every operator and function computes its whole output before its parent
 * starts. Nothing is planned, shared or cached — the baseline the later phases improve on.
 *
 * Semantics are Prometheus 2.x's (the tests compare with a real Prometheus 2.42): 5-minute
 * lookback, staleness markers, inclusive range windows, extrapolated rate/increase/delta,
 * vector matching with its errors, the metric name dropped where Prometheus drops it.
 */
import { definePlugin } from '../../core/plugins/define.js';
import { QueryEngine, engineOptions } from './shared/engine.js';

export default definePlugin({
  id: 'query.interpreter',
  craft: 4,
  phase: 1,
  slot: 'query.evaluator',
  version: '1.0.0',
  summary: 'PromQL parsed by a peggy grammar and interpreted node by node over the query’s steps, with Prometheus semantics',
  options: engineOptions,
  create: (context, options) => new QueryEngine(context, options),
});
