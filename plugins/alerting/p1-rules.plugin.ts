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
 * Tenants' own rules (`tenants: {acme: {files, text}}`): each group evaluated as that tenant —
 * its queries see the tenant's series only (the query actor scopes them), every alert carries
 * `tenant="acme"` whatever the rule's labels say (so the alerting API shows it to that tenant
 * alone), and its groups are named `acme/<group>`.
 *
 * With no rule file (and no tenant rules) the seed's three rules run, written as PromQL: the average of every
 * sample of the metric in the window (`sum(sum_over_time(m[w])) / sum(count_over_time(m[w]))`),
 * compared with the threshold — what the seed computed, now with a lifecycle.
 */
import { z } from 'zod';
import { definePlugin } from '../../core/plugins/define.js';
import { alertRuleSchema, SEED_ALERT_RULES, type SeedAlertRule } from '../../core/config/schema.js';
import { METRIC_NAME_LABEL } from '../../core/model.js';
import { isRecordingRule, loadRuleFile, parseRuleGroup, type AlertingRule, type RuleGroup } from '../../core/rules/rule-file.js';
import { parseRulesDsl } from '../../core/rules/dsl.js';
import { parseTemplate, renderTemplate, formatNumber } from '../../core/rules/template.js';
import type { AlertEvaluator, AlertInstance, AlertRule, QueryClient, RuleEvaluation } from '../../core/slots/alerting.js';
import type { Logger } from '../../core/log.js';
import type { WireSample } from '../../core/model.js';
import { StreamedRule, thresholdOf } from './p1-rules/stream.js';

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
    /** Decide threshold rules (`selector > number`) on each sample as ingestion acknowledges it, too. */
    stream: z.boolean().default(true),
    /** How long a streamed sample stands for its series (PromQL's lookback), ms. */
    lookbackMs: z.number().int().positive().default(5 * 60_000),
    /** Each tenant's own rule files and inline rules, evaluated as that tenant. */
    tenants: z.record(z.string().min(1), z.object({ files: z.array(z.string().min(1)).default([]), text: z.string().optional() }).strict()).default({}),
    /**
     * Rule groups set through the ruler API (the alerting actor keeps them in a KV bucket and
     * passes them here): each as the API took it, evaluated as its tenant (none: the platform's).
     * A group is named `<namespace>/<group>` (`<tenant>/<namespace>/<group>` for a tenant's).
     */
    managed: z.array(z.object({ tenant: z.string().min(1).optional(), namespace: z.string().min(1), yaml: z.string().min(1) }).strict()).default([]),
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
  /** A threshold rule the sample stream decides too (p1-rules/stream.ts). */
  streamed: StreamedRule | undefined;
  group: CompiledGroup;
}

interface CompiledGroup {
  /** `<tenant>/<group>` for a tenant's group. */
  name: string;
  /** Whose rules these are (undefined: the platform's). */
  tenant: string | undefined;
  file: string;
  intervalMs: number;
  rules: CompiledRule[];
  /** The last aligned instant evaluated. */
  lastMs: number;
}

class RuleEvaluator implements AlertEvaluator {
  private readonly groups: CompiledGroup[];
  /** Streamed rules by metric name, then by one `label="value"` matcher each has (if any): a sample meets only the rules it can match. */
  private readonly streamedByMetric = new Map<string, { byLabel: Map<string, Map<string, CompiledRule[]>>; other: CompiledRule[] }>();
  private readonly streamedAnyMetric: CompiledRule[] = [];

  constructor(private readonly options: Options, private readonly log: Logger) {
    const load = (files: string[], text: string | undefined): RuleGroup[] => [...files.flatMap((file) => loadRuleFile(file)), ...(text === undefined ? [] : parseRulesDsl(text, 'inline'))];
    const groups: { group: RuleGroup; tenant: string | undefined }[] = load(options.files, options.text).map((group) => ({ group, tenant: undefined }));
    if (groups.length === 0 && Object.keys(options.tenants).length === 0 && options.managed.length === 0) {
      const seed = options.rules ?? SEED_ALERT_RULES;
      groups.push({ group: { name: 'seed', file: 'seed', rules: seed.map((r) => ({ alert: r.name, expr: seedRuleExpr(r), labels: { metric: r.metric } })) }, tenant: undefined });
    }
    for (const [tenant, own] of Object.entries(options.tenants)) groups.push(...load(own.files, own.text).map((group) => ({ group, tenant })));
    for (const m of options.managed) {
      const group = parseRuleGroup(m.yaml, m.namespace);
      groups.push({ group: { ...group, name: `${m.namespace}/${group.name}` }, tenant: m.tenant });
    }
    const names = new Set<string>();
    this.groups = groups.map(({ group: g, tenant }) => {
      const name = tenant === undefined ? g.name : `${tenant}/${g.name}`;
      if (names.has(name)) throw new Error(`rule group ${JSON.stringify(name)} is defined twice (${g.file})`);
      names.add(name);
      const group: CompiledGroup = { name, tenant, file: g.file, intervalMs: g.interval ?? options.intervalMs, lastMs: -Infinity, rules: [] };
      group.rules = g.rules
        .filter((r): r is AlertingRule => !isRecordingRule(r))
        .map((rule) => {
          const found = options.stream ? thresholdOf(rule.expr) : undefined;
          // A tenant's streamed rule follows that tenant's series only (ingestion labels every series with its tenant).
          const threshold = found === undefined || tenant === undefined ? found : { ...found, matchers: [...found.matchers, { name: 'tenant', op: '=' as const, value: tenant }] };
          return {
            rule,
            group,
            labels: Object.entries(rule.labels ?? {}).map(([k, v]) => [k, parseTemplate(v)] as [string, ReturnType<typeof parseTemplate>]),
            annotations: Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, parseTemplate(v)] as [string, ReturnType<typeof parseTemplate>]),
            streamed: threshold === undefined ? undefined : new StreamedRule(threshold, options.lookbackMs),
          };
        });
      return group;
    });
    for (const compiled of this.groups.flatMap((g) => g.rules)) {
      if (compiled.streamed === undefined) continue;
      const metric = compiled.streamed.threshold.metric;
      if (metric === undefined) {
        this.streamedAnyMetric.push(compiled);
        continue;
      }
      let entry = this.streamedByMetric.get(metric);
      if (entry === undefined) this.streamedByMetric.set(metric, (entry = { byLabel: new Map(), other: [] }));
      const equal = compiled.streamed.threshold.matchers.find((m) => m.op === '=' && m.name !== METRIC_NAME_LABEL && m.value !== '');
      if (equal === undefined) {
        entry.other.push(compiled);
        continue;
      }
      let values = entry.byLabel.get(equal.name);
      if (values === undefined) entry.byLabel.set(equal.name, (values = new Map()));
      values.set(equal.value, [...(values.get(equal.value) ?? []), compiled]);
    }
  }

  streamMetrics(): string[] | null {
    return this.streamedAnyMetric.length > 0 ? null : [...this.streamedByMetric.keys()];
  }

  stream(samples: WireSample[], nowMs: number): RuleEvaluation[] {
    const changed = new Set<CompiledRule>();
    for (const [labels, timestampMs, value] of samples) {
      const byName = this.streamedByMetric.get(labels[METRIC_NAME_LABEL] ?? '');
      if (byName !== undefined) {
        for (const compiled of byName.other) if (compiled.streamed!.offer(labels, timestampMs, value, nowMs)) changed.add(compiled);
        for (const [name, values] of byName.byLabel) {
          const candidates = values.get(labels[name] ?? '');
          if (candidates !== undefined) for (const compiled of candidates) if (compiled.streamed!.offer(labels, timestampMs, value, nowMs)) changed.add(compiled);
        }
      }
      for (const compiled of this.streamedAnyMetric) if (compiled.streamed!.offer(labels, timestampMs, value, nowMs)) changed.add(compiled);
    }
    return [...changed].map((compiled) => this.toEvaluation(compiled, nowMs, () => compiled.streamed!.holding(nowMs)));
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
        ...(g.tenant === undefined ? {} : { tenant: g.tenant }),
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
      for (const compiled of group.rules) out.push(await this.evaluateRule(compiled, atMs, nowMs, query));
    }
    return out;
  }

  /** One rule at `atMs`, with how long it took (Prometheus's `evaluationTime`). */
  private async evaluateRule(compiled: CompiledRule, atMs: number, nowMs: number, query: QueryClient): Promise<RuleEvaluation> {
    const started = performance.now();
    const evaluation = await this.queryRule(compiled, atMs, nowMs, query);
    evaluation.evaluationMs = performance.now() - started;
    return evaluation;
  }

  private async queryRule(compiled: CompiledRule, atMs: number, nowMs: number, query: QueryClient): Promise<RuleEvaluation> {
    const { rule } = compiled;
    let result;
    try {
      const tenant = compiled.group.tenant;
      result = await query.query({ expr: rule.expr, timeMs: atMs, timeoutMs: this.options.queryTimeoutMs, ...(tenant === undefined ? {} : { tenant }) });
      if (result.resultType !== 'vector') throw new Error(`an alerting rule must give an instant vector, not a ${result.resultType}`);
    } catch (error) {
      return this.failed(compiled, atMs, error);
    }
    const vector = result.result;
    const partial = result.warnings !== undefined && result.warnings.length > 0;
    let evaluation: RuleEvaluation;
    if (compiled.streamed === undefined) evaluation = this.toEvaluation(compiled, atMs, () => vector);
    else {
      // A streamed rule: the stream's verdict where it saw a fresh sample, this result elsewhere.
      compiled.streamed.setPeriodic(vector, nowMs, partial);
      evaluation = this.toEvaluation(compiled, atMs, () => compiled.streamed!.holding(nowMs));
    }
    if (partial) evaluation.warnings = result.warnings;
    return evaluation;
  }

  private failed(compiled: CompiledRule, atMs: number, error: unknown): RuleEvaluation {
    const message = (error as Error).message;
    this.log.warn('alerting rule evaluation failed', { rule: compiled.rule.alert, group: compiled.group.name, error: message });
    return { ...this.base(compiled, atMs), active: false, value: null, summary: `evaluation failed: ${message}`, alerts: [], error: message };
  }

  private base({ rule, group }: CompiledRule, atMs: number): Omit<RuleEvaluation, 'active' | 'value' | 'summary'> {
    return { rule: rule.alert, labels: rule.labels ?? {}, forMs: rule.for ?? 0, keepFiringForMs: rule.keep_firing_for ?? 0, group: group.name, evaluatedAtMs: atMs };
  }

  /** The rule's alerts from the series that hold: labels and annotations rendered per series. */
  private toEvaluation(compiled: CompiledRule, atMs: number, holding: () => { labels: Record<string, string>; value: number }[]): RuleEvaluation {
    const { rule, labels, annotations } = compiled;
    try {
      const series = holding();
      if (series.length > ALERTS_PER_RULE_MAX) throw new Error(`the rule gave ${series.length} alerts, more than the limit of ${ALERTS_PER_RULE_MAX}`);
      const alerts: AlertInstance[] = [];
      const seen = new Set<string>();
      for (const sample of series) {
        const seriesLabels = { ...sample.labels };
        delete seriesLabels[METRIC_NAME_LABEL];
        const data = { labels: seriesLabels, value: sample.value, externalLabels: this.options.externalLabels };
        const alertLabels: Record<string, string> = { ...seriesLabels };
        for (const [name, template] of labels) alertLabels[name] = renderTemplate(template, data);
        alertLabels.alertname = rule.alert;
        if (compiled.group.tenant !== undefined) alertLabels.tenant = compiled.group.tenant;
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
        ...this.base(compiled, atMs),
        active: alerts.length > 0,
        value: first?.value ?? null,
        summary: first === undefined ? `${rule.expr}: no series` : (first.annotations.summary ?? `${rule.expr} = ${formatNumber(first.value)}${alerts.length > 1 ? ` (+${alerts.length - 1} more)` : ''}`),
        alerts,
      };
    } catch (error) {
      return this.failed(compiled, atMs, error);
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
