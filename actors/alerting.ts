/**
 * The alerting actor: hosts the `alerting.evaluator` slot and evaluates every rule at a
 * fixed interval. What it finds is published as events on `craft.alerting.events.<state>`
 * and kept in its journal (event-sourced): after a restart it knows which rules were
 * active, how often each fired, and resolves the ones that stopped holding.
 */
import { Actor } from '../core/actor/actor.js';
import { invariant } from '../core/errors.js';
import { Journal } from '../core/journal/journal.js';
import { SUBJECTS, alertEventSubject, handoverSubject } from '../core/subjects.js';
import { QueryClient } from '../core/query/client.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { AlertEvaluator, AlertRule } from '../core/slots/alerting.js';
import type { Timer } from '../core/clock.js';

export interface RuleState {
  active: boolean;
  firings: number;
  lastValue: number | null;
  lastChangeMs: number;
}

export interface AlertingState {
  rules: Record<string, RuleState>;
}

export type AlertingEvent =
  | { type: 'firing'; rule: string; value: number | null; summary: string; labels: Record<string, string>; atMs: number }
  | { type: 'resolved'; rule: string; value: number | null; summary: string; labels: Record<string, string>; atMs: number };

export function applyAlertingEvent(state: AlertingState, event: AlertingEvent): AlertingState {
  const previous = state.rules[event.rule] ?? { active: false, firings: 0, lastValue: null, lastChangeMs: 0 };
  const next: RuleState =
    event.type === 'firing'
      ? { active: true, firings: previous.firings + 1, lastValue: event.value, lastChangeMs: previous.active ? previous.lastChangeMs : event.atMs }
      : { active: false, firings: previous.firings, lastValue: event.value, lastChangeMs: event.atMs };
  return { rules: { ...state.rules, [event.rule]: next } };
}

export class AlertingActor extends Actor {
  private evaluator!: AlertEvaluator;
  private pluginId = '';
  private journal!: Journal<AlertingState, AlertingEvent>;
  private timer: Timer | undefined;
  private evaluating: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly queries: QueryClient;
  private evaluations = 0;

  constructor(private readonly context: PlatformContext) {
    super('alerting', context);
    this.queries = new QueryClient(context.bus);
    this.handle(SUBJECTS.alertingRules, () => this.rules(), { concurrency: 4 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.pluginId === '' ? undefined : { 'alerting.evaluator': this.pluginId };
  }

  protected override async onStart(): Promise<void> {
    this.journal = await Journal.open<AlertingState, AlertingEvent>(this.bus, {
      name: 'alerting',
      initial: () => ({ rules: {} }),
      apply: applyAlertingEvent,
    });
    const choice = await currentChoice(this.context, 'alerting.evaluator');
    this.evaluator = this.makeEvaluator(choice.id, choice.options);
    this.pluginId = choice.id;
    this.schedule();
  }

  private makeEvaluator(plugin: string, options: Record<string, unknown>): AlertEvaluator {
    const rules = this.context.config.alerting.rules;
    return this.context.registry.instantiate('alerting.evaluator', plugin, { log: this.log }, rules === undefined || 'rules' in options ? options : { ...options, rules });
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.evaluating = this.evaluateOnce().finally(() => this.schedule());
    }, this.context.config.alerting.evalIntervalMs);
  }

  /** One evaluation of every rule; a query that fails (storage restarting) is retried next time. */
  private async evaluateOnce(): Promise<void> {
    let results;
    try {
      results = await this.evaluator.evaluate(this.clock.now(), this.queries);
    } catch (error) {
      this.log.warn('evaluation failed; retrying at the next interval', { error });
      return;
    }
    this.evaluations += 1;
    for (const result of results) {
      const before = this.journal.state.rules[result.rule];
      const atMs = this.clock.now();
      const base = { rule: result.rule, value: result.value, summary: result.summary, labels: result.labels, atMs };
      if (result.active) {
        const event: AlertingEvent = { type: 'firing', ...base };
        await this.journal.append(event);
        this.bus.publish(alertEventSubject('firing'), event);
      } else if (before?.active === true) {
        const event: AlertingEvent = { type: 'resolved', ...base };
        await this.journal.append(event);
        this.bus.publish(alertEventSubject('resolved'), event);
      }
    }
  }

  protected override async onStop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.evaluating;
  }

  protected override async onCrash(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
  }

  private rules(): { plugin: string; evaluations: number; rules: (AlertRule & { state: RuleState | null })[] } {
    return {
      plugin: this.pluginId,
      evaluations: this.evaluations,
      rules: this.evaluator.rules().map((rule) => ({ ...rule, state: this.journal.state.rules[rule.name] ?? null })),
    };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    invariant(request.slot === 'alerting.evaluator', `alerting actor asked to swap ${request.slot}`);
    const started = this.clock.now();
    await this.evaluating;
    const from = this.pluginId;
    this.evaluator = this.makeEvaluator(request.plugin, request.options);
    this.pluginId = request.plugin;
    return { slot: 'alerting.evaluator', from, to: request.plugin, tookMs: this.clock.now() - started, detail: 'rule state stays in the journal; the next evaluation uses the new evaluator' };
  }
}
