/**
 * Craft #5, phase 1 — rules and evaluation, as Prometheus's rule manager does it: alerting rules
 * from rule files (the rule DSL, `*.rules`, or Prometheus YAML), grouped, each group evaluated
 * on its own interval at aligned instants (t = k · interval, so a restart evaluates the same
 * instants). Each rule is a PromQL instant query through the query actor; every series of the
 * result is an alert of its own (`alertname` and the rule's labels added, annotations rendered
 * with `$labels` and `$value`), handed to the lifecycle with the rule's `for` and
 * `keep_firing_for`. Anomaly scores (`zscore`, `madscore`, `forecast_error`) are functions of
 * the rule language (core/rules/anomaly.ts).
 *
 * With no rule file the seed's three rules run, written as PromQL: the average of every
 * sample of the metric in the window (`sum(sum_over_time(m[w])) / sum(count_over_time(m[w]))`),
 * compared with the threshold — what the seed computed, now with a lifecycle.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import { alertRuleSchema, type SeedAlertRule } from '../../core/config/schema.js';
import { METRIC_NAME_LABEL } from '../../core/model.js';
import { isRecordingRule, loadRuleFile, type AlertingRule, type RuleGroup } from '../../core/rules/rule-file.js';
import { parseRulesDsl } from '../../core/rules/dsl.js';
import { parseTemplate, renderTemplate, formatNumber } from '../../core/rules/template.js';
import type { AlertEvaluator, AlertInstance, AlertRule, QueryClient, RuleEvaluation } from '../../core/slots/alerting.js';
import type { Logger } from '../../core/log.js';

/** The seed's rules (craft0.polling-alerts) when no rule file is given. */
const SEED_RULES: SeedAlertRule[] = [
  { name: 'HighCpuUsage', metric: 'cpu_usage', condition: '>', threshold: 80, windowSeconds: 60 },
  { name: 'HighMemoryUsage', metric: 'memory_usage', condition: '>', threshold: 90, windowSeconds: 60 },
  { name: 'HighErrorRate', metric: 'error_rate', condition: '>', threshold: 5, windowSeconds: 30 },
];

/** Alerts one rule may produce per evaluation; beyond it the evaluation fails for that rule (Prometheus's group `limit`). */
export const ALERTS_PER_RULE_MAX = 10_000;

const optionsSchema = z
  .object({
    /** Rule files: `*.rules` in the rule DSL, anything else Prometheus YAML. */
    files: z.array(z.string().min(1)).default([]),
    /** Rules in the DSL, inline (after the files). */
    text: z.string().optional(),
    /** A group's interval when it names none, ms (Prometheus's `evaluation_interval`). */
    intervalMs: z.number().int().positive().default(15_000),
    /** Labels every alert's templates see as `$externalLabels`. */
    externalLabels: z.record(z.string(), z.string()).default({}),
    /** Each rule's query deadline, ms. */
    queryTimeoutMs: z.number().int().positive().default(10_000),
    /** The seed's rules (the platform config's `alerting.rules`): used when no file or text is given. */
    rules: z.array(alertRuleSchema).min(1).optional(),
  })
  .strict();
type Options = z.infer<typeof optionsSchema>;

/** A seed rule as PromQL: the average of every sample in the window, as the seed computed it. */
export function seedRuleExpr(rule: SeedAlertRule): string {
  const window = `${rule.windowSeconds}s`;
  return `sum(sum_over_time(${rule.metric}[${window}])) / sum(count_over_time(${rule.metric}[${window}])) ${rule.condition} ${rule.threshold}`;
}

interface CompiledRule {
  rule: AlertingRule;
  labels: [string, ReturnType<typeof parseTemplate>][];
  annotations: [string, ReturnType<typeof parseTemplate>][];
}

interface CompiledGroup {
  name: string;
  file: string;
  intervalMs: number;
  rules: CompiledRule[];
  /** The last aligned instant evaluated. */
  lastMs: number;
}

class RuleEvaluator implements AlertEvaluator {
  private readonly groups: CompiledGroup[];

  constructor(private readonly options: Options, private readonly log: Logger) {
    const groups: RuleGroup[] = options.files.flatMap((file) => loadRuleFile(file));
    if (options.text !== undefined) groups.push(...parseRulesDsl(options.text, 'inline'));
    if (groups.length === 0) {
      const seed = options.rules ?? SEED_RULES;
      groups.push({ name: 'seed', file: 'seed', rules: seed.map((r) => ({ alert: r.name, expr: seedRuleExpr(r), labels: { metric: r.metric } })) });
    }
    const names = new Set<string>();
    this.groups = groups.map((g) => {
      if (names.has(g.name)) throw new Error(`rule group ${JSON.stringify(g.name)} is defined twice (${g.file})`);
      names.add(g.name);
      return {
        name: g.name,
        file: g.file,
        intervalMs: g.interval ?? options.intervalMs,
        lastMs: -Infinity,
        rules: g.rules
          .filter((r): r is AlertingRule => !isRecordingRule(r))
          .map((rule) => ({
            rule,
            labels: Object.entries(rule.labels ?? {}).map(([k, v]) => [k, parseTemplate(v)] as [string, ReturnType<typeof parseTemplate>]),
            annotations: Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, parseTemplate(v)] as [string, ReturnType<typeof parseTemplate>]),
          })),
      };
    });
  }

  rules(): AlertRule[] {
    return this.groups.flatMap((g) =>
      g.rules.map(({ rule }) => ({
        name: rule.alert,
        expr: rule.expr,
        labels: rule.labels ?? {},
        annotations: rule.annotations ?? {},
        forMs: rule.for ?? 0,
        keepFiringForMs: rule.keep_firing_for ?? 0,
        group: g.name,
        file: g.file,
        intervalMs: g.intervalMs,
      })),
    );
  }

  /** How often the actor should call `evaluate`: the shortest group interval. */
  tickMs(): number {
    return Math.min(...this.groups.map((g) => g.intervalMs));
  }

  async evaluate(nowMs: number, query: QueryClient): Promise<RuleEvaluation[]> {
    const out: RuleEvaluation[] = [];
    for (const group of this.groups) {
      const atMs = Math.floor(nowMs / group.intervalMs) * group.intervalMs;
      if (atMs <= group.lastMs) continue;
      group.lastMs = atMs;
      for (const compiled of group.rules) out.push(await this.evaluateRule(group, compiled, atMs, query));
    }
    return out;
  }

  private async evaluateRule(group: CompiledGroup, { rule, labels, annotations }: CompiledRule, atMs: number, query: QueryClient): Promise<RuleEvaluation> {
    const base = {
      rule: rule.alert,
      labels: rule.labels ?? {},
      forMs: rule.for ?? 0,
      keepFiringForMs: rule.keep_firing_for ?? 0,
      group: group.name,
      evaluatedAtMs: atMs,
    };
    try {
      const result = await query.query({ expr: rule.expr, timeMs: atMs, timeoutMs: this.options.queryTimeoutMs });
      if (result.resultType !== 'vector') throw new Error(`an alerting rule must give an instant vector, not a ${result.resultType}`);
      if (result.result.length > ALERTS_PER_RULE_MAX) throw new Error(`the rule gave ${result.result.length} alerts, more than the limit of ${ALERTS_PER_RULE_MAX}`);
      const alerts: AlertInstance[] = [];
      const seen = new Set<string>();
      for (const sample of result.result) {
        const seriesLabels = { ...sample.labels };
        delete seriesLabels[METRIC_NAME_LABEL];
        const data = { labels: seriesLabels, value: sample.value, externalLabels: this.options.externalLabels };
        const alertLabels: Record<string, string> = { ...seriesLabels };
        for (const [name, template] of labels) alertLabels[name] = renderTemplate(template, data);
        alertLabels.alertname = rule.alert;
        for (const [name, value] of Object.entries(alertLabels)) if (value === '') delete alertLabels[name];
        // Two series that become one alert once the rule's labels are set: Prometheus refuses the evaluation.
        const key = JSON.stringify(Object.entries(alertLabels).sort(([a], [b]) => (a < b ? -1 : 1)));
        if (seen.has(key)) throw new Error('vector contains metrics with the same labelset after applying alert labels');
        seen.add(key);
        const rendered: Record<string, string> = {};
        for (const [name, template] of annotations) rendered[name] = renderTemplate(template, data);
        alerts.push({ labels: alertLabels, value: sample.value, annotations: rendered });
      }
      const first = alerts[0];
      return {
        ...base,
        active: alerts.length > 0,
        value: first?.value ?? null,
        summary: first === undefined ? `${rule.expr}: no series` : (first.annotations.summary ?? `${rule.expr} = ${formatNumber(first.value)}${alerts.length > 1 ? ` (+${alerts.length - 1} more)` : ''}`),
        alerts,
      };
    } catch (error) {
      const message = (error as Error).message;
      this.log.warn('alerting rule evaluation failed', { rule: rule.alert, group: group.name, error: message });
      return { ...base, active: false, value: null, summary: `evaluation failed: ${message}`, alerts: [], error: message };
    }
  }
}

export default definePlugin({
  id: 'alerting.rules',
  craft: 5,
  phase: 1,
  slot: 'alerting.evaluator',
  version: '1.0.0',
  summary: 'Rule files (rule DSL or Prometheus YAML) as PromQL instant queries per group; an alert per series, templates, anomaly scores',
  options: optionsSchema,
  create: (context, options) => new RuleEvaluator(options, context.log),
});
