/**
 * Silences and inhibition: what mutes an alert (Alertmanager's semantics).
 *
 * - A silence is active from `startsAtMs` (inclusive) to `endsAtMs` (exclusive) and mutes every
 *   alert whose labels match all its matchers (`=`, `!=`, `=~`, `!~`, regexes fully anchored, a
 *   missing label equal to "").
 * - An inhibition rule mutes a *target* alert while a firing *source* alert exists whose labels
 *   named in `equal` have the same values as the target's (both missing counts as equal); an
 *   alert never inhibits itself.
 */
import { z } from 'zod';
import { compileMatchers, type LabelMatcher } from '../../../core/model.js';
import { parseSelector } from '../../../core/query/selector.js';
import type { AlertRecord, Silence } from '../../../core/slots/alerting.js';

const selector = z.string().refine((text) => {
  try {
    parseSelector(text, { matchersOnly: true });
    return true;
  } catch {
    return false;
  }
}, 'not a series selector such as {severity="critical"}');

export const inhibitRuleSchema = z
  .object({
    /** Alerts that inhibit: a selector, e.g. `{severity="critical"}`. */
    sourceMatchers: selector,
    /** Alerts that are inhibited, e.g. `{severity="warning"}`. */
    targetMatchers: selector,
    /** Labels whose values must be equal in source and target. */
    equal: z.array(z.string()).default([]),
  })
  .strict();
export type InhibitRule = z.infer<typeof inhibitRuleSchema>;

interface CompiledInhibition {
  source: (labels: Record<string, string>) => boolean;
  target: (labels: Record<string, string>) => boolean;
  equal: string[];
}

export function compileInhibitions(rules: InhibitRule[]): CompiledInhibition[] {
  return rules.map((rule) => ({ source: compileMatchers(parseSelector(rule.sourceMatchers, { matchersOnly: true })), target: compileMatchers(parseSelector(rule.targetMatchers, { matchersOnly: true })), equal: rule.equal }));
}

const silenceMatchers = new WeakMap<Silence, (labels: Record<string, string>) => boolean>();

export function silenceMatches(silence: Silence, labels: Record<string, string>): boolean {
  let matches = silenceMatchers.get(silence);
  if (matches === undefined) {
    matches = compileMatchers(silence.matchers as LabelMatcher[]);
    silenceMatchers.set(silence, matches);
  }
  return matches(labels);
}

export const silenceActive = (silence: Silence, nowMs: number): boolean => silence.startsAtMs <= nowMs && nowMs < silence.endsAtMs;

/** The ids of the active silences that mute `labels`. */
export function silencedBy(silences: Iterable<Silence>, labels: Record<string, string>, nowMs: number): string[] {
  const out: string[] = [];
  for (const silence of silences) if (silenceActive(silence, nowMs) && silenceMatches(silence, labels)) out.push(silence.id);
  return out;
}

/** The fingerprints of the firing alerts that inhibit `target`. */
export function inhibitedBy(rules: CompiledInhibition[], alerts: Iterable<AlertRecord>, target: AlertRecord): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    if (!rule.target(target.labels)) continue;
    for (const source of alerts) {
      if (source.fingerprint === target.fingerprint || source.state !== 'firing' || !rule.source(source.labels)) continue;
      if (rule.equal.every((name) => (source.labels[name] ?? '') === (target.labels[name] ?? ''))) out.push(source.fingerprint);
    }
  }
  return [...new Set(out)];
}
