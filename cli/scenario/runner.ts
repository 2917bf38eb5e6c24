/**
 * Runs a scenario: starts a platform in this process (with any extra processes it asks
 * for), plays the timeline — load, swaps, faults, waits, queries, expectations — while a
 * progress bar runs, then writes the report. The run fails when any expectation or step
 * fails.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import cliProgress from 'cli-progress';
import { loadYamlFile } from '../../core/config/yaml-file.js';
import { makeConfig, type PlatformConfigInput } from '../../core/config/schema.js';
import { Bus } from '../../core/nats/bus.js';
import { SUBJECTS, killSubject } from '../../core/subjects.js';
import { StorageClient } from '../../core/storage/client.js';
import { QueryClient } from '../../core/query/client.js';
import { sleep } from '../../core/clock.js';
import { createLogger, setLogLevel, type LogLevel } from '../../core/log.js';
import { Platform } from '../../actors/platform.js';
import { LoadRun } from '../load/generator.js';
import { gatherStatus } from '../status.js';
import type { HandoverReply } from '../../core/platform-context.js';
import { scenarioSchema, type Scenario, type Step } from './schema.js';
import { check, type RunState, type Verdict } from './expectations.js';
import { writeReport, type ScenarioReport, type StepRecord } from './report.js';
import { LocalReceivers } from './receivers.js';
import { ScenarioConsumers } from './consumers.js';
import { parseMatcher } from '../../core/rules/matcher.js';
import type { AlertRecord, OnCall } from '../../core/slots/alerting.js';

/** The delivery slot's options with the scenario's local receivers added (a plugin chosen by id only gets options). */
function withReceivers(plugins: NonNullable<PlatformConfigInput['plugins']>, receivers: LocalReceivers): NonNullable<PlatformConfigInput['plugins']> {
  const choice = plugins['alerting.delivery'];
  const id = choice === undefined ? 'alerting.channels' : typeof choice === 'string' ? choice : choice.id;
  const options = (typeof choice === 'object' && choice.options !== undefined ? choice.options : {}) as Record<string, unknown>;
  const own = Array.isArray(options.receivers) ? (options.receivers as Record<string, unknown>[]) : [];
  return { ...plugins, 'alerting.delivery': { id, options: { ...options, receivers: [...own, ...receivers.deliveryReceivers()] } } };
}

const log = createLogger('scenario');

export interface RunOptions {
  reportsDir: string;
  keepData: boolean;
  /** Show a progress bar (TTY) or periodic lines. */
  progress: boolean;
  logLevel?: LogLevel;
}

/** The `platform.http` keys the scenario file itself sets. */
function httpGiven(file: string): Record<string, unknown> {
  const raw = parseDocument(readFileSync(file, 'utf8')).toJS() as { platform?: { http?: Record<string, unknown> } } | null;
  return raw?.platform?.http ?? {};
}

export function loadScenario(file: string): Scenario {
  return loadYamlFile(file, scenarioSchema, 'CRAFT_SCENARIO_INVALID');
}

/** Seconds the timeline takes when nothing waits longer than planned. */
function plannedSeconds(steps: Step[]): number {
  let total = 0;
  for (const step of steps) {
    if ('load' in step && !step.load.background) total += step.load.duration / 1_000;
    if ('wait' in step && typeof step.wait === 'number') total += step.wait / 1_000;
  }
  return Math.max(1, Math.round(total));
}

function describe(step: Step): string {
  if ('load' in step) return `load ${step.load.id}: ${step.load.clients} clients ${step.load.mode}${step.load.rate === undefined ? '' : ` ${step.load.rate}/s`} for ${step.load.duration / 1_000}s${step.load.background ? ' (background)' : ''}`;
  if ('wait' in step) return typeof step.wait === 'number' ? `wait ${step.wait / 1_000}s` : `wait for load ${step.wait.load}`;
  if ('swap' in step) return `swap ${step.swap.slot} → ${step.swap.plugin}`;
  if ('fault' in step) {
    const f = step.fault;
    return 'kill' in f ? `fault: kill actor ${f.kill}` : 'killProcess' in f ? `fault: kill -9 process ${f.killProcess}` : `fault: restart NATS (down ${f.restartNats.down} ms)`;
  }
  if ('query' in step) return `query ${step.query.expr}`;
  if ('ack' in step) return `acknowledge ${step.ack.matchers.join(' ')}`;
  if ('consumers' in step) return `consumer group ${step.consumers.group}: ${step.consumers.members} members`;
  if ('consumer' in step) return `consumer group ${step.consumer.group}: ${step.consumer.action}`;
  return `expect ${step.expect.length} condition(s)`;
}

export async function runScenario(file: string, options: RunOptions): Promise<ScenarioReport> {
  const scenario = loadScenario(file);
  if (options.logLevel !== undefined) setLogLevel(options.logLevel);
  const runId = `${scenario.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const reportDir = resolve(options.reportsDir, runId);
  const dataDir = resolve('data', 'scenarios', runId);
  mkdirSync(reportDir, { recursive: true });

  const platformInput = scenario.platform as PlatformConfigInput;
  const receivers = scenario.receivers.length === 0 ? undefined : await LocalReceivers.start(scenario.receivers);
  const config = makeConfig({
    ...platformInput,
    ...(receivers === undefined ? {} : { plugins: withReceivers(platformInput.plugins ?? {}, receivers) }),
    dataDir,
    faults: true,
    // Free loopback ports unless the file names its own (the parsed `platform` has every default filled in, so read what the file says).
    http: { host: '127.0.0.1', ingestionPort: 0, queryPort: 0, alertingPort: 0, ...httpGiven(file) },
  });
  const startedMs = Date.now();
  let platform: Platform;
  try {
    platform = await Platform.start(config);
  } catch (error) {
    await receivers?.close();
    throw error;
  }
  const bus = await Bus.connect(platform.natsUrl, 'craft-scenario', platform.natsIdentity('admin'));
  const storage = new StorageClient(bus);
  const queries = new QueryClient(bus);
  const consumers = new ScenarioConsumers(bus, runId);

  const processOf = new Map<string, string>();
  for (const p of config.processes) for (const actor of p.actors) processOf.set(actor, p.name);
  const state: RunState = {
    loads: new Map(),
    memory: [],
    alertsFired: new Map(),
    restarts: new Map(),
    processOfActor: (actor) => processOf.get(actor),
    received: async (name) => {
      let resolved = name;
      if (name.startsWith('oncall:')) {
        const { oncall } = await bus.request<{ oncall: OnCall[] }>(SUBJECTS.alertingOnCall, {});
        const who = oncall.find((o) => o.schedule === name.slice('oncall:'.length))?.receiver;
        if (who === undefined || who === null) return undefined;
        resolved = who;
      }
      const got = receivers?.of(resolved);
      return got === undefined ? undefined : { name: resolved, got: got.map((r) => r.what) };
    },
    // The run's samples, less the `ALERTS` series the alerting actor writes back (an alert keeps the labels of its series, `run` included).
    consumers,
    countStored: async () => (await storage.count({ matchers: [{ name: 'run', op: '=', value: runId }, { name: '__name__', op: '!=', value: 'ALERTS' }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples,
  };
  bus.nc.subscribe(`${SUBJECTS.alertingEventsPrefix}.firing`, {
    callback: (_error, message) => {
      const event = message.json<{ rule: string; atMs: number }>();
      if (!state.alertsFired.has(event.rule)) state.alertsFired.set(event.rule, event.atMs);
    },
  });
  const events: { atMs: number; text: string }[] = [];
  bus.nc.subscribe(SUBJECTS.sysEvents, {
    callback: (_error, message) => {
      const event = message.json<{ type: string; child?: string; process?: string; atMs: number; reason?: { kind: string; error?: string } }>();
      if (event.type === 'child.restarting' && event.child !== undefined) {
        state.restarts.set(event.child, (state.restarts.get(event.child) ?? 0) + 1);
        events.push({ atMs: event.atMs, text: `${event.process}: restarting ${event.child}` });
      }
      if (event.type === 'child.exited' && event.reason?.kind === 'crash') events.push({ atMs: event.atMs, text: `${event.process}: ${event.child} crashed (${event.reason.error})` });
    },
  });

  const baseUrl = `http://127.0.0.1:${platform.ingestionPort}`;
  const stepRecords: StepRecord[] = [];
  const verdicts: Verdict[] = [];
  const planned = plannedSeconds(scenario.steps);
  const bar = options.progress && process.stdout.isTTY
    ? new cliProgress.SingleBar({ format: ' {bar} {percentage}% | {value}/{total}s | {step} | {rps} req/s ok | errors {errors}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
    : undefined;
  let currentStep = 'starting';
  const liveCounts = (): { rps: number; errors: number } => {
    let rps = 0;
    let errors = 0;
    for (const run of state.loads.values()) {
      const p = run.progress();
      errors += p.requests - p.ok;
      if (p.elapsedMs > 0) rps += Math.round((p.ok * 1_000) / p.elapsedMs);
    }
    return { rps, errors };
  };
  bar?.start(planned, 0, { step: currentStep, rps: 0, errors: 0 });
  let lastLine = 0;
  const ticker = setInterval(() => {
    const elapsed = Math.min(planned, Math.round((Date.now() - startedMs) / 1_000));
    const counts = liveCounts();
    if (bar !== undefined) bar.update(elapsed, { step: currentStep, ...counts });
    else if (options.progress && Date.now() - lastLine >= 5_000) {
      lastLine = Date.now();
      process.stdout.write(`  [${elapsed}/${planned}s] ${currentStep} | ${counts.rps} req/s ok | errors ${counts.errors}\n`);
    }
  }, 250);

  const atSecond = (): number => (Date.now() - startedMs) / 1_000;
  // Resident memory of this process (the platform runs in it) through the run: an expectation and a chart.
  const memoryTimer = setInterval(() => state.memory.push([atSecond(), process.memoryUsage().rss / 1_048_576]), 250);
  try {
    for (const step of scenario.steps) {
      currentStep = describe(step);
      const record: StepRecord = { description: currentStep, atSecond: atSecond(), ok: true, detail: '' };
      stepRecords.push(record);
      try {
        if ('load' in step) {
          const l = step.load;
          const run = new LoadRun({
            id: l.id,
            url: baseUrl,
            clients: l.clients,
            mode: l.mode,
            ...(l.rate === undefined ? {} : { rate: l.rate }),
            durationMs: l.duration,
            batch: l.batch,
            keepAlive: l.keepAlive,
            metric: l.metric,
            timeoutMs: l.timeout,
            runLabel: runId,
            ...(l.authorization === undefined ? {} : { authorization: l.authorization }),
          });
          state.loads.set(l.id, run);
          if (!l.background) {
            const result = await run.done;
            record.detail = `${result.ok}/${result.requests} ok`;
          } else record.detail = 'started';
        } else if ('wait' in step) {
          if (typeof step.wait === 'number') await sleep(step.wait);
          else await state.loads.get(step.wait.load)!.done;
        } else if ('swap' in step) {
          const reply = await bus.request<HandoverReply>(SUBJECTS.controlSwap, step.swap, { timeoutMs: 10 * 60_000 });
          record.detail = `${reply.from} → ${reply.to} in ${reply.tookMs} ms: ${reply.detail}`;
        } else if ('fault' in step) {
          const fault = step.fault;
          if ('kill' in fault) {
            bus.publish(killSubject(fault.kill), {});
            record.detail = `sent ${killSubject(fault.kill)}`;
          } else if ('killProcess' in fault) {
            const statuses = await gatherStatus(bus);
            const node = statuses.flatMap((s) => s.tree.children ?? []).find((c) => c.id === `process:${fault.killProcess}`);
            if (node?.pid === undefined) throw new Error(`no running process named ${fault.killProcess}`);
            process.kill(node.pid, 'SIGKILL');
            record.detail = `kill -9 ${node.pid}`;
          } else {
            if (platform.nats === undefined) throw new Error('restartNats needs the embedded NATS server (no nats.url in the scenario)');
            const t0 = Date.now();
            await platform.nats.restart(fault.restartNats.down);
            record.detail = `NATS back after ${Date.now() - t0} ms`;
          }
        } else if ('query' in step) {
          const q = step.query;
          const now = Date.now();
          const result = await queries.query(q.range === undefined ? { expr: q.expr } : { expr: q.expr, startMs: now - q.range, endMs: now });
          const series = result.resultType === 'scalar' || result.resultType === 'string' ? 0 : result.result.length;
          const samples = result.resultType === 'matrix' ? result.result.reduce((s, r) => s + r.timestampsMs.length, 0) : series;
          record.detail = `${series} series, ${samples} samples`;
          if (q.minSeries > 0 || q.minSamples > 0) {
            verdicts.push({
              expectation: `query ${q.expr} returns ≥ ${q.minSeries} series and ≥ ${q.minSamples} samples`,
              passed: series >= q.minSeries && samples >= q.minSamples,
              observed: record.detail,
            });
          }
        } else if ('consumers' in step) {
          record.detail = await consumers.start(step.consumers.group, step.consumers.members);
        } else if ('consumer' in step) {
          const { group, action } = step.consumer;
          record.detail = action === 'join' ? await consumers.join(group) : await consumers.remove(group, action);
        } else if ('ack' in step) {
          const matchers = step.ack.matchers.map(parseMatcher);
          const { acknowledged } = await bus.request<{ acknowledged: AlertRecord[] }>(SUBJECTS.alertingAck, { matchers, by: step.ack.by, comment: step.ack.comment });
          record.detail = `${acknowledged.length} alert(s) acknowledged`;
        } else {
          for (const expectation of step.expect) verdicts.push(await check(expectation, state));
        }
      } catch (error) {
        record.ok = false;
        record.detail = error instanceof Error ? error.message : String(error);
        log.error('step failed', { step: currentStep, error: record.detail });
      }
    }
    currentStep = 'finishing loads';
    for (const run of state.loads.values()) run.stop();
    await Promise.all([...state.loads.values()].map((run) => run.done));
    await consumers.stop();
  } finally {
    clearInterval(ticker);
    clearInterval(memoryTimer);
    bar?.stop();
  }
  const finalStatus = await gatherStatus(bus).catch(() => []);
  await bus.close();
  await platform.stop();
  await receivers?.close();
  if (!options.keepData) rmSync(dataDir, { recursive: true, force: true });

  const loads = await Promise.all([...state.loads.values()].map((run) => run.done));
  const report: ScenarioReport = {
    name: scenario.name,
    description: scenario.description,
    file,
    runId,
    startedAt: new Date(startedMs).toISOString(),
    durationMs: Date.now() - startedMs,
    plugins: Object.fromEntries(Object.entries(finalStatus[0]?.tree.children?.reduce<Record<string, string>>((all, c) => ({ ...all, ...(c.plugins ?? {}) }), {}) ?? {})),
    loads,
    loadOffsets: Object.fromEntries([...state.loads.entries()].map(([id, run]) => [id, (run.recorder.originMs - startedMs) / 1_000])),
    steps: stepRecords,
    verdicts,
    events: events.map((e) => ({ atSecond: (e.atMs - startedMs) / 1_000, text: e.text })),
    memory: state.memory,
    heapLimitMb: getHeapStatistics().heap_size_limit / 1_048_576,
    nodeFlags: process.execArgv,
    passed: stepRecords.every((s) => s.ok) && verdicts.every((v) => v.passed),
    reportDir,
    dataDir: options.keepData ? dataDir : null,
  };
  await writeReport(report);
  return report;
}
