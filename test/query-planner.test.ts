/**
 * Phase 2, the planner: its rewrites (constant folding, matcher pushdown and where pushdown must
 * not happen), one storage select per matcher set, shared subexpressions — seen through EXPLAIN
 * and through the selects a real store receives — and answers equal to phase 1's.
 */
import t from 'tap';
import { PluginRegistry } from '../core/plugins/registry.js';
import type { QueryEvaluator, SampleSource } from '../core/slots/query.js';
import { loadStore, makeEvaluator } from './helpers/promql-engine.js';

const { registry } = await PluginRegistry.load();
const interpreter = makeEvaluator({ registry, evaluator: 'query.interpreter' });
const planner = makeEvaluator({ registry, evaluator: 'query.planner' });
const explain = (evaluator: QueryEvaluator, expr: string) => evaluator.explain!({ expr, timeMs: 600_000 });

t.test('EXPLAIN: one select per selector in phase 1, one per matcher set in phase 2', async (t) => {
  const expr = 'rate(x[5m]) / rate(x[1h])';
  const naive = await explain(interpreter, expr);
  t.equal(naive.selects.length, 2);
  t.same(naive.rewrites, []);
  const planned = await explain(planner, expr);
  t.equal(planned.selects.length, 1);
  t.match(planned.selects[0], { minTimeMs: 600_000 - 3_600_000, maxTimeMs: 600_000, nodes: 2 });
  t.match(planned.text, /serves 2 selectors/);
  t.match(planned.text, /select #1/);
});

t.test('constant folding', async (t) => {
  const plan = await explain(planner, 'x * (60 * 60) + 2 ^ 3 - -(1)');
  t.equal(plan.expr, 'x * 3600 + 8 - -1');
  t.ok(plan.rewrites.some((r) => r.startsWith('constant folded: 60 * 60 → 3600')));
});

t.test('matcher pushdown where it is exact, and only there', async (t) => {
  t.equal((await explain(planner, 'a{job="x"} / on(job) b')).expr, 'a{job="x"} / on (job) b', 'not into the one side of one-to-one');
  t.equal((await explain(planner, 'a / on(job) b{job="x"}')).expr, 'a{job="x"} / on (job) b{job="x"}', 'into the many side');
  t.equal((await explain(planner, 'a{job="x"} and on(job) b')).expr, 'a{job="x"} and on (job) b{job="x"}');
  t.equal((await explain(planner, 'a{job="x"} and b{env="p"}')).expr, 'a{job="x", env="p"} and b{env="p", job="x"}', 'both ways for and');
  t.equal((await explain(planner, 'a{job="x"} or on(job) b')).expr, 'a{job="x"} or on (job) b', 'never across or');
  t.equal((await explain(planner, 'a unless on(job) b{job="x"}')).expr, 'a unless on (job) b{job="x"}', 'not into the left of unless');
  t.equal((await explain(planner, 'a{job="x"} unless on(job) b')).expr, 'a{job="x"} unless on (job) b{job="x"}', 'into the right of unless');
  t.equal((await explain(planner, 'a{job="x"} and on(env) b')).expr, 'a{job="x"} and on (env) b', 'only labels the matching compares');
  t.equal((await explain(planner, 'rate(a{job="x"}[5m]) * on(job) group_right rate(b[5m])')).expr, 'rate(a{job="x"}[5m]) * on (job) group_right () rate(b{job="x"}[5m])', 'through label-keeping functions, into the many side of group_right');
  t.equal((await explain(planner, 'sum by (job) (a{job="x"}) and on(job) b')).expr, 'sum by (job) (a{job="x"}) and on (job) b', 'not out of an aggregation');
});

t.test('shared selects and subexpressions reach storage once; answers equal phase 1', async (t) => {
  const series = ['a', 'b'].map((instance) => ({ labels: { __name__: 'x', instance }, samples: Array.from({ length: 100 }, (_, i) => ({ t: i * 15_000, v: i * (instance === 'a' ? 1 : 2) })) }));
  const local = await loadStore(registry, 'storage.time-index', series);
  t.teardown(() => local.dispose());
  let selects = 0;
  const counting: SampleSource = {
    querier: (min, max) => {
      const querier = local.store.querier(min, max);
      return { ...querier, select: (matchers, hints) => ((selects += 1), querier.select(matchers, hints)) };
    },
  };
  const request = { expr: 'sum(rate(x[5m])) / sum(rate(x[5m])) + rate(x[1m])', startMs: 600_000, endMs: 1_200_000, stepMs: 60_000 };
  const naive = await interpreter.evaluate(request, counting);
  const naiveSelects = selects;
  selects = 0;
  const planned = await planner.evaluate(request, counting);
  t.equal(naiveSelects, 3, 'phase 1: one select per selector');
  t.equal(selects, 1, 'phase 2: one select for all three');
  t.same(planned, naive, 'the same answer');
});
