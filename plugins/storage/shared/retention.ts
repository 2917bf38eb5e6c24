/**
 * Retention: how long a series' samples are kept. A global age (`retentionMs`, 0 = forever)
 * and per-series rules — the first rule whose selector matches a series wins — so that,
 * say, `{env="dev"}` keeps 2 days while everything else keeps 30. Data goes by whole chunks:
 * a chunk is dropped once its newest sample is older than the cut-off, so a series keeps up
 * to one chunk span (≤ 2 h) more than its retention, as Prometheus keeps whole blocks.
 */
import { z } from 'zod';
import { compileMatchers, type Labels } from '../../../core/model.js';
import { parseSelector } from '../../../core/query/selector.js';

export const retentionRuleSchema = z
  .object({
    /** A series selector, e.g. `{env="dev"}` or `debug_requests_total`. */
    selector: z.string().refine((text) => {
      try {
        parseSelector(text);
        return true;
      } catch {
        return false;
      }
    }, 'not a series selector (name{label="value",…})'),
    /** How long matching series keep samples, ms. */
    retentionMs: z.number().int().positive(),
  })
  .strict();

export type RetentionRule = z.infer<typeof retentionRuleSchema>;

/** Rules compiled once: labels → retention in ms (0 = keep forever). */
export function retentionPolicy(retentionMs: number, rules: RetentionRule[]): (labels: Labels) => number {
  const compiled = rules.map((rule) => ({ matches: compileMatchers(parseSelector(rule.selector)), retentionMs: rule.retentionMs }));
  return (labels) => compiled.find((rule) => rule.matches(labels))?.retentionMs ?? retentionMs;
}

/** Retention rules a store takes, at most. */
export const RETENTION_RULES_MAX = 100;

/** The retention options every storage phase takes. */
export const retentionOptions = {
  /** How long samples are kept, ms; 0 keeps them forever. */
  retentionMs: z.number().int().min(0).default(0),
  /** Per-series retention; the first rule whose selector matches wins. */
  retentionRules: z.array(retentionRuleSchema).max(RETENTION_RULES_MAX).default([]),
  /** How often expired samples are dropped, ms. */
  retentionIntervalMs: z.number().int().positive().default(60_000),
};
