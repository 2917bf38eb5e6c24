/**
 * Runs PromQL test files (test/helpers/promql-testfile.ts) through our own query engine on a
 * real store: each group of evals after a load or clear gets a fresh store (any
 * `storage.engine` plugin on LevelDB in a temporary directory) holding everything loaded so
 * far, and a fresh evaluator of the chosen `query.evaluator` plugin. Answers come back in the
 * shape Prometheus's HTTP API gives, so they compare with the expected lines and with a real
 * Prometheus (test/helpers/prometheus-oracle.ts) alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PluginRegistry } from '../../core/plugins/registry.js';
import { ManualClock, type Clock } from '../../core/clock.js';
import { createLogger } from '../../core/log.js';
import { CraftError } from '../../core/errors.js';
import type { WireSample, Labels } from '../../core/model.js';
import type { QueryEvaluator, QueryResult } from '../../core/slots/query.js';
import type { SampleStore } from '../../core/slots/storage.js';
import { appendAll, openStore } from './storage.js';
import { valuesAgree, type EvalCommand, type PromqlResult, type SeriesData, type TestfileCommand } from './promql-testfile.js';

export interface EngineRun {
  registry: PluginRegistry;
  /** The evaluator's clock (default: a manual clock at 0). */
  clock?: Clock;
  evaluator?: string;
  evaluatorOptions?: Record<string, unknown>;
  store?: string;
}

/** The HTTP API's error types by our error codes. */
export function errorTypeOf(error: unknown): string {
  if (!(error instanceof CraftError)) return 'internal';
  if (error.code === 'CRAFT_QUERY_PARSE' || error.code === 'CRAFT_BAD_REQUEST') return 'bad_data';
  if (error.code === 'CRAFT_QUERY_TIMEOUT') return 'timeout';
  return 'execution';
}

export function toPromqlResult(result: QueryResult): PromqlResult {
  switch (result.resultType) {
    case 'vector':
      return { status: 'success', resultType: 'vector', result: result.result.map((r) => ({ labels: r.labels, t: r.timestampMs, v: r.value })) };
    case 'matrix':
      return { status: 'success', resultType: 'matrix', result: result.result.map((s) => ({ labels: s.labels, samples: s.timestampsMs.map((t, i) => ({ t, v: s.values[i]! })) })) };
    case 'scalar':
      return { status: 'success', resultType: 'scalar', result: { t: result.result.timestampMs, v: result.result.value } };
    case 'string':
      return { status: 'success', resultType: 'string', result: { t: result.result.timestampMs, value: result.result.value } };
  }
}

/** Opens a store in a fresh directory and loads the series (empty label values dropped, as Prometheus stores them). */
export async function loadStore(registry: PluginRegistry, storeId: string, series: SeriesData[]): Promise<{ store: SampleStore; dispose(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'craft-promql-'));
  const store = await openStore(registry, storeId, 'kv.level', join(dir, 'store'));
  const samples: WireSample[] = [];
  for (const s of series) {
    const labels: Labels = Object.fromEntries(Object.entries(s.labels).filter(([, v]) => v !== ''));
    for (const p of s.samples) samples.push([labels, p.t, p.v]);
  }
  for (let at = 0, batch = 1; at < samples.length; at += 50_000, batch++) await appendAll(store, samples.slice(at, at + 50_000), { '1:0': batch });
  return {
    store,
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Evaluates one eval command with an evaluator over a store, as the API would answer it. */
export async function runEval(evaluator: QueryEvaluator, store: SampleStore, command: EvalCommand): Promise<PromqlResult> {
  try {
    const result = command.mode === 'instant'
      ? await evaluator.evaluate({ expr: command.expr, timeMs: command.atMs }, store)
      : await evaluator.evaluate({ expr: command.expr, startMs: command.startMs, endMs: command.endMs, stepMs: command.stepMs }, store);
    return toPromqlResult(result);
  } catch (error) {
    if (!(error instanceof CraftError)) throw error;
    return { status: 'error', errorType: errorTypeOf(error), error: error.message };
  }
}

export function makeEvaluator(run: EngineRun): QueryEvaluator {
  return run.registry.instantiate('query.evaluator', run.evaluator ?? 'query.interpreter', { log: createLogger('promql-test'), clock: run.clock ?? new ManualClock(0) }, run.evaluatorOptions ?? {});
}

/** Our engine's answer to every eval of a parsed test file, in order. */
export async function runTestfileAgainstEngine(commands: TestfileCommand[], run: EngineRun): Promise<{ command: EvalCommand; actual: PromqlResult }[]> {
  const evaluator = makeEvaluator(run);
  const answers: { command: EvalCommand; actual: PromqlResult }[] = [];
  let loaded: SeriesData[] = [];
  let current: Awaited<ReturnType<typeof loadStore>> | undefined;
  try {
    for (const command of commands) {
      if (command.kind !== 'eval') {
        await current?.dispose();
        current = undefined;
        loaded = command.kind === 'clear' ? [] : [...loaded, ...command.series];
        continue;
      }
      current ??= await loadStore(run.registry, run.store ?? 'storage.time-index', loaded);
      answers.push({ command, actual: await runEval(evaluator, current.store, command) });
    }
  } finally {
    await current?.dispose();
  }
  return answers;
}

const key = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * Where two answers to one query disagree (empty when they agree): both errors (any message),
 * or the same result type with the same series and points, values within `valuesAgree`.
 * Vectors compare as sets unless `ordered`.
 */
export function compareAnswers(ours: PromqlResult, theirs: PromqlResult, ordered = false, tiesByValue = false): string[] {
  if (ours.status === 'error' || theirs.status === 'error') {
    if (ours.status === 'error' && theirs.status === 'error') return [];
    return [ours.status === 'error' ? `we failed (${ours.error}), Prometheus answered` : `Prometheus failed (${(theirs as { error: string }).error}), we answered`];
  }
  if (ours.resultType !== theirs.resultType) return [`result type ${ours.resultType}, Prometheus ${theirs.resultType}`];
  if (tiesByValue) return compareValuesByTime(ours, theirs);
  const points = (r: PromqlResult): Map<string, Map<number, number>> => {
    const out = new Map<string, Map<number, number>>();
    if (r.status === 'error') return out;
    if (r.resultType === 'scalar') out.set('scalar', new Map([[r.result.t, r.result.v]]));
    if (r.resultType === 'vector') for (const s of r.result) out.set(key(s.labels), new Map([[s.t, s.v]]));
    if (r.resultType === 'matrix') for (const s of r.result) out.set(key(s.labels), new Map(s.samples.map((p) => [p.t, p.v])));
    return out;
  };
  const problems: string[] = [];
  const a = points(ours);
  const b = points(theirs);
  for (const [k, pa] of a) {
    const pb = b.get(k);
    if (pb === undefined) {
      problems.push(`we have ${k}, Prometheus does not`);
      continue;
    }
    for (const [t, v] of pa) {
      const w = pb.get(t);
      if (w === undefined) problems.push(`${k} at ${t}: we have ${v}, Prometheus nothing`);
      else if (!valuesAgree(w, v)) problems.push(`${k} at ${t}: we have ${v}, Prometheus ${w}`);
    }
    for (const [t, w] of pb) if (!pa.has(t)) problems.push(`${k} at ${t}: Prometheus has ${w}, we nothing`);
  }
  for (const k of b.keys()) if (!a.has(k)) problems.push(`Prometheus has ${k}, we do not`);
  if (ordered && ours.resultType === 'vector' && theirs.resultType === 'vector') {
    const order = (r: typeof ours): string => r.status === 'success' && r.resultType === 'vector' ? r.result.map((s) => key(s.labels)).join('|') : '';
    if (order(ours) !== order(theirs)) problems.push('the order of the vector differs');
  }
  return problems;
}

/**
 * Per timestamp, the sorted values must agree; labels are not compared. For topk/bottomk:
 * Prometheus breaks ties by the order series arrive in, which is the order they were first
 * written to its head, so which of two equal samples it keeps is not a property of the query.
 */
function compareValuesByTime(ours: PromqlResult, theirs: PromqlResult): string[] {
  const byTime = (r: PromqlResult): Map<number, number[]> => {
    const out = new Map<number, number[]>();
    const add = (t: number, v: number): void => {
      const list = out.get(t) ?? [];
      list.push(v);
      out.set(t, list);
    };
    if (r.status === 'success' && r.resultType === 'vector') for (const s of r.result) add(s.t, s.v);
    if (r.status === 'success' && r.resultType === 'matrix') for (const s of r.result) for (const p of s.samples) add(p.t, p.v);
    for (const list of out.values()) list.sort((a, b) => (Number.isNaN(a) ? (Number.isNaN(b) ? 0 : -1) : Number.isNaN(b) ? 1 : a < b ? -1 : a > b ? 1 : 0));
    return out;
  };
  const a = byTime(ours);
  const b = byTime(theirs);
  const problems: string[] = [];
  for (const t of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(t) ?? [];
    const y = b.get(t) ?? [];
    if (x.length !== y.length || x.some((v, i) => !valuesAgree(y[i]!, v))) problems.push(`at ${t}: values ${JSON.stringify(x)}, Prometheus ${JSON.stringify(y)}`);
  }
  return problems;
}
