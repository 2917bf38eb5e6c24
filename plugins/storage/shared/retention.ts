/**
 * Retention: how long a series' samples are kept. A global age (`retentionMs`, 0 = forever)
 * and per-series rules — the first rule whose selector matches a series wins — so that,
 * say, `{env="dev"}` keeps 2 days while everything else keeps 30. Data goes by whole chunks:
 * a chunk is dropped once its newest sample is older than the cut-off, so a series keeps up
 * to one chunk span (≤ 2 h) more than its retention, as Prometheus keeps whole blocks.
 */
import { z } from 'zod';
import type { Clock, Timer } from '../../../core/clock.js';
import type { Logger } from '../../../core/log.js';
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

/**
 * Runs a store's retention `pass` at once and then `retentionIntervalMs` after each pass ends,
 * when any retention is configured (a failed pass is logged and runs again next time); `stop`
 * ends it. Undefined when nothing expires.
 */
export function scheduleRetention(options: { retentionMs: number; retentionRules: unknown[]; retentionIntervalMs: number }, clock: Clock, log: Logger, pass: () => Promise<unknown>): { stop(): void } | undefined {
  if (options.retentionMs === 0 && options.retentionRules.length === 0) return undefined;
  let timer: Timer | undefined;
  let stopped = false;
  const next = (delayMs: number): void => {
    if (stopped) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      void pass()
        .catch((error: unknown) => log.error('retention pass failed; it runs again next interval', { error }))
        .finally(() => next(options.retentionIntervalMs));
    }, delayMs);
  };
  next(0);
  return {
    stop: () => {
      stopped = true;
      timer?.cancel();
    },
  };
}
