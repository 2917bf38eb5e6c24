/**
 * Runs recording rules for the query actor: each group on its interval, its rules in order, each
 * an instant query at the group's evaluation time whose result is written back through the queue
 * — like any ingested batch, so it is durable, replicated and stored by the same path — as series
 * named by the rule's `record` with the rule's labels added. Prometheus makes a result visible to
 * the next rule of the group at once; here the next rule sees it once storage has applied it.
 *
 * Evaluation times are aligned to the group's interval (t = k · interval), so a restart or a
 * second query actor evaluates the same instants, and a retried write of the same sample replaces
 * it (storage's upsert rule) instead of adding one.
 */
import type { Clock, Timer } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { encodeBatch, METRIC_NAME_LABEL, type Labels, type WireSample } from '../core/model.js';
import type { QueueClient } from '../core/queue/protocol.js';
import type { QueryEvaluator, SampleSource } from '../core/slots/query.js';
import { isRecordingRule, type RuleGroup } from '../core/rules/rule-file.js';

/** The client id recorded samples are appended as (it picks their queue partition). */
export const RECORDING_CLIENT = 'recording-rules';
/** Samples one rule may write per evaluation; a rule that yields more is refused that time. */
export const RECORDED_SAMPLES_MAX = 100_000;

export interface RuleStatus {
  name: string;
  query: string;
  labels: Labels;
  health: 'unknown' | 'ok' | 'err';
  lastError: string;
  lastEvaluation: string;
  evaluationTime: number;
  type: 'recording';
}

export interface GroupStatus {
  name: string;
  file: string;
  interval: number;
  lastEvaluation: string;
  evaluationTime: number;
  rules: RuleStatus[];
}

export class RecordingRules {
  private readonly timers = new Map<string, Timer>();
  private readonly status = new Map<string, GroupStatus>();
  private running = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly evaluator: () => QueryEvaluator,
    private readonly source: SampleSource,
    private readonly queue: QueueClient,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Starts every group of `groups` that has recording rules (replacing what ran before). */
  start(groups: RuleGroup[]): void {
    this.stopTimers();
    this.status.clear();
    this.stopped = false;
    for (const group of groups) {
      const rules = group.rules.filter(isRecordingRule);
      if (rules.length === 0) continue;
      const intervalMs = group.interval ?? 60_000;
      this.status.set(group.name, {
        name: group.name,
        file: group.file,
        interval: intervalMs / 1000,
        lastEvaluation: '',
        evaluationTime: 0,
        rules: rules.map((r) => ({ name: r.record, query: r.expr, labels: r.labels ?? {}, health: 'unknown', lastError: '', lastEvaluation: '', evaluationTime: 0, type: 'recording' })),
      });
      this.schedule(group, intervalMs);
    }
  }

  private schedule(group: RuleGroup, intervalMs: number): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const next = (Math.floor(now / intervalMs) + 1) * intervalMs;
    this.timers.set(group.name, this.clock.setTimeout(() => {
      const run = this.evaluateGroup(group, next).finally(() => {
        this.running.delete(run);
        this.schedule(group, intervalMs);
      });
      this.running.add(run);
    }, next - now));
  }

  /** Evaluates one group at `timeMs` and writes its results; a failing rule is reported, the others go on. */
  async evaluateGroup(group: RuleGroup, timeMs: number): Promise<void> {
    const status = this.status.get(group.name);
    const started = this.clock.now();
    const rules = group.rules.filter(isRecordingRule);
    for (const [index, rule] of rules.entries()) {
      const ruleStatus = status?.rules[index];
      const ruleStarted = this.clock.now();
      try {
        const result = await this.evaluator().evaluate({ expr: rule.expr, timeMs }, this.source);
        const samples: WireSample[] = [];
        const record = (labels: Labels, value: number): void => {
          samples.push([{ ...labels, ...rule.labels, [METRIC_NAME_LABEL]: rule.record }, timeMs, value]);
        };
        if (result.resultType === 'vector') for (const s of result.result) record(s.labels, s.value);
        else if (result.resultType === 'scalar') record({}, result.result.value);
        else throw new Error(`a recording rule must give an instant vector or a scalar, not a ${result.resultType}`);
        if (samples.length > RECORDED_SAMPLES_MAX) throw new Error(`the rule gave ${samples.length} series, more than the limit of ${RECORDED_SAMPLES_MAX}`);
        if (samples.length > 0) {
          const batch = encodeBatch({ client: RECORDING_CLIENT, receivedAtMs: this.clock.now(), samples });
          await this.queue.append(RECORDING_CLIENT, new TextEncoder().encode(batch));
        }
        if (ruleStatus !== undefined) Object.assign(ruleStatus, { health: 'ok', lastError: '' });
      } catch (error) {
        this.log.warn('recording rule failed; it runs again next interval', { group: group.name, record: rule.record, error });
        if (ruleStatus !== undefined) Object.assign(ruleStatus, { health: 'err', lastError: (error as Error).message });
      } finally {
        if (ruleStatus !== undefined) Object.assign(ruleStatus, { lastEvaluation: new Date(timeMs).toISOString(), evaluationTime: (this.clock.now() - ruleStarted) / 1000 });
      }
    }
    if (status !== undefined) Object.assign(status, { lastEvaluation: new Date(timeMs).toISOString(), evaluationTime: (this.clock.now() - started) / 1000 });
  }

  /** Groups and rules with their last evaluation, in Prometheus's `/api/v1/rules` shape. */
  groups(): GroupStatus[] {
    return [...this.status.values()];
  }

  private stopTimers(): void {
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTimers();
    await Promise.all([...this.running]);
  }
}
