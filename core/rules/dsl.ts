/**
 * The alert-rule DSL (grammars/rules.peggy): parses a `.rules` file into the same rule groups a
 * Prometheus rule file gives (core/rules/rule-file.ts), so both feed one evaluator. The grammar
 * gives the structure; this module checks the rest — durations, each expression as PromQL, a
 * clause given twice, a missing `when`/`as`, label names, templates — and every problem names
 * the file, line and column.
 */
import { basename } from 'node:path';
import { CraftError } from '../errors.js';
import { isLabelName } from '../model.js';
import { parseDurationMs, parsePromQL, PromQLParseError } from '../promql/parser.js';
import type { AlertingRule, RecordingRule, RuleGroup } from './rule-file.js';
import { parse as parseGenerated } from './generated/dsl-parser.js';
import { parseTemplate, TemplateError } from './template.js';
import { desugarAnomaly } from './anomaly.js';

export interface DslLocation {
  start: { offset: number; line: number; column: number };
  end: { offset: number; line: number; column: number };
}
interface Located {
  location: DslLocation;
}
export interface DslExpression extends Located {
  text: string;
}
export interface DslDuration extends Located {
  text: string;
}
export interface DslMap extends Located {
  entries: ({ name: string; value: string } & Located)[];
}
export type DslClause =
  | ({ clause: 'when'; expr: DslExpression } & Located)
  | ({ clause: 'as'; expr: DslExpression } & Located)
  | ({ clause: 'for'; value: DslDuration } & Located)
  | ({ clause: 'keep_firing_for'; value: DslDuration } & Located)
  | ({ clause: 'labels'; value: DslMap } & Located)
  | ({ clause: 'annotations'; value: DslMap } & Located);
export interface DslRule extends Located {
  kind: 'alert' | 'record';
  name: string;
  clauses: DslClause[];
}
export interface DslGroup extends Located {
  kind: 'group';
  name: string;
  interval?: DslDuration;
  rules: DslRule[];
}
export type DslItem = DslGroup | DslRule;

interface PeggyError {
  message: string;
  location?: DslLocation;
}

/** A problem at a place in the file: `file:line:column: message`. */
function problem(file: string, at: { line: number; column: number }, message: string): CraftError {
  return new CraftError('CRAFT_CONFIG_INVALID', `${file}:${at.line}:${at.column}: ${message}`, { details: { file, line: at.line, column: at.column } });
}

/** The line and column of `offset` characters into a node's text that starts at `start`. */
function within(text: string, start: { line: number; column: number }, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lines = before.split('\n');
  return lines.length === 1 ? { line: start.line, column: start.column + offset } : { line: start.line + lines.length - 1, column: lines.at(-1)!.length + 1 };
}

function duration(file: string, d: DslDuration): number {
  try {
    return parseDurationMs(d.text);
  } catch {
    throw problem(file, d.location.start, `not a duration: ${JSON.stringify(d.text)} (e.g. 30s, 5m, 1h30m)`);
  }
}

function expression(file: string, e: DslExpression): string {
  let text: string;
  try {
    text = desugarAnomaly(e.text.trim());
  } catch (error) {
    throw problem(file, e.location.start, (error as Error).message);
  }
  try {
    parsePromQL(text);
  } catch (error) {
    if (error instanceof PromQLParseError) {
      // Positions in a desugared expression are not the file's: name the expression's start then.
      const at = text === e.text.trim() ? within(e.text, e.location.start, error.offset) : e.location.start;
      throw problem(file, at, `invalid PromQL: ${error.detail}`);
    }
    throw error;
  }
  return text;
}

function labelMap(file: string, map: DslMap, templates: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of map.entries) {
    if (!isLabelName(entry.name)) throw problem(file, entry.location.start, `not a valid label name: ${JSON.stringify(entry.name)}`);
    if (entry.name in out) throw problem(file, entry.location.start, `${entry.name} is given twice`);
    if (templates) {
      try {
        parseTemplate(entry.value);
      } catch (error) {
        if (error instanceof TemplateError) throw problem(file, entry.location.start, `template of ${entry.name}: ${error.message} (at character ${error.offset + 1})`);
        throw error;
      }
    }
    out[entry.name] = entry.value;
  }
  return out;
}

function convertRule(file: string, rule: DslRule): AlertingRule | RecordingRule {
  const seen = new Map<string, DslClause>();
  for (const clause of rule.clauses) {
    if (seen.has(clause.clause)) throw problem(file, clause.location.start, `${clause.clause} is given twice in ${rule.kind} ${rule.name}`);
    seen.set(clause.clause, clause);
  }
  const get = <K extends DslClause['clause']>(name: K): Extract<DslClause, { clause: K }> | undefined => seen.get(name) as Extract<DslClause, { clause: K }> | undefined;
  if (rule.kind === 'record') {
    const as = get('as');
    if (as === undefined) throw problem(file, rule.location.start, `record ${rule.name} has no "as <expression>"`);
    const labels = get('labels');
    return { record: rule.name, expr: expression(file, as.expr), ...(labels === undefined ? {} : { labels: labelMap(file, labels.value, false) }) };
  }
  const when = get('when');
  if (when === undefined) throw problem(file, rule.location.start, `alert ${rule.name} has no "when <expression>"`);
  const out: AlertingRule = { alert: rule.name, expr: expression(file, when.expr) };
  const forClause = get('for');
  if (forClause !== undefined) out.for = duration(file, forClause.value);
  const keep = get('keep_firing_for');
  if (keep !== undefined) out.keep_firing_for = duration(file, keep.value);
  const labels = get('labels');
  if (labels !== undefined) out.labels = labelMap(file, labels.value, true);
  const annotations = get('annotations');
  if (annotations !== undefined) out.annotations = labelMap(file, annotations.value, true);
  return out;
}

/** Parses DSL text into rule groups; rules outside a `group` form one group named after the file. */
export function parseRulesDsl(text: string, file: string): RuleGroup[] {
  let items: DslItem[];
  try {
    items = parseGenerated(text, { grammarSource: file });
  } catch (error) {
    const e = error as PeggyError;
    if (e.location === undefined) throw error;
    throw problem(file, e.location.start, e.message);
  }
  const groups: RuleGroup[] = [];
  const loose: (AlertingRule | RecordingRule)[] = [];
  const names = new Map<string, DslGroup>();
  for (const item of items) {
    if (item.kind !== 'group') {
      loose.push(convertRule(file, item));
      continue;
    }
    if (names.has(item.name)) throw problem(file, item.location.start, `group name ${JSON.stringify(item.name)} is used twice`);
    names.set(item.name, item);
    groups.push({ name: item.name, file, ...(item.interval === undefined ? {} : { interval: duration(file, item.interval) }), rules: item.rules.map((r) => convertRule(file, r)) });
  }
  if (loose.length > 0) {
    const name = basename(file).replace(/\.[^.]*$/, '') || 'default';
    if (names.has(name)) throw problem(file, { line: 1, column: 1 }, `rules outside a group form the group ${JSON.stringify(name)}, which a group here names too`);
    groups.unshift({ name, file, rules: loose });
  }
  return groups;
}

const quote = (text: string): string => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const KEYWORDS = new Set(['when', 'as', 'for', 'keep_firing_for', 'labels', 'annotations', 'alert', 'record', 'group', 'interval']);

function formatDuration(ms: number): string {
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]];
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

function formatMap(keyword: string, map: Record<string, string>): string {
  const entries = Object.entries(map);
  return `  ${keyword} { ${entries.map(([k, v]) => `${k} = ${quote(v)}`).join(', ')} }`;
}

/** Writes rule groups in the DSL (what `parseRulesDsl` reads back to the same groups); expressions go on one line each. */
export function formatRulesDsl(groups: RuleGroup[]): string {
  const out: string[] = [];
  for (const group of groups) {
    const name = IDENTIFIER.test(group.name) && !KEYWORDS.has(group.name) ? group.name : quote(group.name);
    out.push(`group ${name}${group.interval === undefined ? '' : ` interval ${formatDuration(group.interval)}`} {`);
    for (const rule of group.rules) {
      const oneLine = (expr: string): string => expr.replace(/\s*\n\s*/g, ' ');
      if ('record' in rule) {
        out.push(`record ${rule.record}`, `  as ${oneLine(rule.expr)}`);
        if (rule.labels !== undefined) out.push(formatMap('labels', rule.labels));
        continue;
      }
      out.push(`alert ${IDENTIFIER.test(rule.alert) && !KEYWORDS.has(rule.alert) ? rule.alert : quote(rule.alert)}`, `  when ${oneLine(rule.expr)}`);
      if (rule.for !== undefined) out.push(`  for ${formatDuration(rule.for)}`);
      if (rule.keep_firing_for !== undefined) out.push(`  keep_firing_for ${formatDuration(rule.keep_firing_for)}`);
      if (rule.labels !== undefined) out.push(formatMap('labels', rule.labels));
      if (rule.annotations !== undefined) out.push(formatMap('annotations', rule.annotations));
    }
    out.push('}', '');
  }
  return out.join('\n');
}
