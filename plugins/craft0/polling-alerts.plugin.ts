/**
 * Craft #0 alerting: the seed's rules `{metric, threshold, condition, window}` evaluated by
 * polling — each evaluation asks the query actor for the window's raw samples and compares
 * their average with the threshold. The defaults are the seed's three rules. There is no
 * lifecycle here (pending/firing/resolved with dedup is Craft #5): a rule that holds is
 * reported active at every evaluation, as the seed did.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import { alertRuleSchema, SEED_ALERT_RULES, type SeedAlertRule } from '../../core/config/schema.js';
import { METRIC_NAME_LABEL } from '../../core/model.js';
import type { AlertEvaluator, AlertRule, QueryClient, RuleEvaluation } from '../../core/slots/alerting.js';

class PollingAlerts implements AlertEvaluator {
  constructor(private readonly seedRules: readonly SeedAlertRule[]) {}

  rules(): AlertRule[] {
    return this.seedRules.map((r) => ({ name: r.name, expr: `avg(${r.metric}[${r.windowSeconds}s]) ${r.condition} ${r.threshold}`, labels: { metric: r.metric } }));
  }

  async evaluate(nowMs: number, query: QueryClient): Promise<RuleEvaluation[]> {
    const out: RuleEvaluation[] = [];
    for (const rule of this.seedRules) {
      const result = await query.query({ expr: rule.metric, startMs: nowMs - rule.windowSeconds * 1_000, endMs: nowMs });
      let sum = 0;
      let count = 0;
      if (result.resultType === 'matrix') {
        for (const series of result.result) {
          if (series.labels[METRIC_NAME_LABEL] !== rule.metric) continue;
          for (const value of series.values) {
            if (!Number.isFinite(value)) continue;
            sum += value;
            count += 1;
          }
        }
      }
      const average = count === 0 ? null : sum / count;
      const active = average !== null && (rule.condition === '>' ? average > rule.threshold : average < rule.threshold);
      out.push({
        rule: rule.name,
        active,
        value: average,
        labels: { metric: rule.metric },
        summary:
          average === null
            ? `no ${rule.metric} samples in the last ${rule.windowSeconds}s`
            : `average ${rule.metric} over ${rule.windowSeconds}s is ${average.toFixed(2)} (${rule.condition} ${rule.threshold}: ${active ? 'holds' : 'does not hold'})`,
      });
    }
    return out;
  }
}

const optionsSchema = z.object({ rules: z.array(alertRuleSchema).min(1).optional() }).passthrough();

export default definePlugin({
  id: 'craft0.polling-alerts',
  craft: 0,
  phase: 0,
  slot: 'alerting.evaluator',
  version: '1.0.0',
  summary: "Seed's rules (window average vs threshold) polled at a fixed interval; no lifecycle or dedup",
  options: optionsSchema,
  create: (_context, options) => new PollingAlerts(options.rules ?? SEED_ALERT_RULES),
});
