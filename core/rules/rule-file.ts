/**
 * Prometheus rule files — the YAML that Prometheus's `rule_files` load:
 *
 *   groups:
 *     - name: example
 *       interval: 1m                 # optional; the evaluator's default otherwise
 *       rules:
 *         - record: job:http_requests:rate5m
 *           expr: sum by (job) (rate(http_requests_total[5m]))
 *           labels: { team: web }
 *         - alert: HighErrorRate
 *           expr: job:http_errors:rate5m > 0.05
 *           for: 10m
 *           keep_firing_for: 5m
 *           labels: { severity: page }
 *           annotations: { summary: "errors high on {{ $labels.job }}" }
 *
 * The same groups can be written in the rule DSL (`.rules` files, core/rules/dsl.ts).
 *
 * Parsed and checked here for every craft that evaluates rules (recording rules in the query
 * engine's phase 4, alerting rules in the alerting craft): the shape, durations, names, unique
 * group names, and that every `expr` parses as PromQL — each problem with its file and line.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseYaml } from '../config/yaml-file.js';
import { parseDurationMs, parsePromQL, PromQLParseError } from '../promql/parser.js';
import { CraftError } from '../errors.js';
import { isLabelName } from '../model.js';
import { parseRulesDsl } from './dsl.js';
import { parseTemplate, TemplateError } from './template.js';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

const duration = z.string().transform((text, context) => {
  try {
    return parseDurationMs(text);
  } catch {
    context.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(text)} (e.g. 30s, 5m, 1h30m)` });
    return z.NEVER;
  }
});

const expr = z.string().min(1).superRefine((text, context) => {
  try {
    parsePromQL(text);
  } catch (error) {
    if (error instanceof PromQLParseError) context.addIssue({ code: 'custom', message: `invalid PromQL: ${error.message}` });
    else throw error;
  }
});

const labelMap = z.record(z.string().refine(isLabelName, 'not a valid label name'), z.string());

const recordingRule = z
  .object({
    record: z.string().regex(METRIC_NAME, 'a recorded name must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)'),
    expr,
    labels: labelMap.optional(),
  })
  .strict();

/** A label or annotation value of an alerting rule: a template (core/rules/template.ts), checked when the file loads. */
const template = z.string().superRefine((text, context) => {
  try {
    parseTemplate(text);
  } catch (error) {
    if (error instanceof TemplateError) context.addIssue({ code: 'custom', message: `bad template: ${error.message} (at character ${error.offset + 1})` });
    else throw error;
  }
});

const alertingRule = z
  .object({
    alert: z.string().min(1),
    expr,
    for: duration.optional(),
    keep_firing_for: duration.optional(),
    labels: z.record(z.string().refine(isLabelName, 'not a valid label name'), template).optional(),
    annotations: z.record(z.string(), template).optional(),
  })
  .strict();

/** One rule group, as a rule file lists it (and as the ruler API takes it). */
export const ruleGroupSchema = z
  .object({
    name: z.string().min(1),
    interval: duration.optional(),
    limit: z.number().int().min(0).optional(),
    rules: z.array(z.union([recordingRule, alertingRule])),
  })
  .strict();

export const ruleFileSchema = z
  .object({ groups: z.array(ruleGroupSchema) })
  .strict()
  .superRefine((file, context) => {
    const seen = new Set<string>();
    file.groups.forEach((g, i) => {
      if (seen.has(g.name)) context.addIssue({ code: 'custom', path: ['groups', i, 'name'], message: `group name ${JSON.stringify(g.name)} is used twice` });
      seen.add(g.name);
    });
  });

export type RuleFile = z.output<typeof ruleFileSchema>;
export type RuleGroup = RuleFile['groups'][number] & { file: string };
export type RecordingRule = z.output<typeof recordingRule>;
export type AlertingRule = z.output<typeof alertingRule>;

export const isRecordingRule = (rule: RecordingRule | AlertingRule): rule is RecordingRule => 'record' in rule;

/** Parses rule-file text; a problem is a CRAFT_CONFIG_INVALID error naming the file and line. */
export function parseRuleFile(text: string, file: string): RuleGroup[] {
  return parseYaml(text, file, ruleFileSchema, 'CRAFT_CONFIG_INVALID').groups.map((g) => ({ ...g, file }));
}

/** Parses one rule group's YAML (the ruler API's body); a problem is a CRAFT_BAD_REQUEST naming the line. */
export function parseRuleGroup(text: string, file: string): RuleGroup {
  return { ...parseYaml(text, file, ruleGroupSchema, 'CRAFT_BAD_REQUEST'), file };
}

/** Loads a rule file: the rule DSL when its name ends in `.rules` (core/rules/dsl.ts), Prometheus YAML otherwise. */
export function loadRuleFile(file: string): RuleGroup[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CraftError('CRAFT_CONFIG_INVALID', `${file}: cannot read the rule file: ${(error as Error).message}`, { cause: error });
  }
  return file.endsWith('.rules') ? parseRulesDsl(text, file) : parseRuleFile(text, file);
}
