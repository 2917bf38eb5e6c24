/**
 * Expectations of a scenario: each is checked against what the run measured (loads,
 * storage counts, alert events, supervision events) and yields a verdict with the
 * observed value, so a failure says exactly what was seen.
 */
import type { ScenarioConsumers } from './consumers.js';
import { sleep } from '../../core/clock.js';
import type { Expectation } from './schema.js';
import type { LoadResult } from '../load/generator.js';
import { percentile } from '../load/recorder.js';
import type { LoadRun } from '../load/generator.js';

export interface Verdict {
  expectation: string;
  passed: boolean;
  observed: string;
}

export interface RunState {
  loads: Map<string, LoadRun>;
  /** Consumer groups the scenario runs beside storage. */
  consumers: ScenarioConsumers;
  /** Samples stored under this run's label, read from storage. */
  countStored(): Promise<number>;
  /** Alert rules seen firing, with the time first seen. */
  alertsFired: Map<string, number>;
  /** Restarts seen per child id (actors and processes). */
  restarts: Map<string, number>;
  /** The processes hosting each actor, for process-level restarts. */
  processOfActor(actor: string): string | undefined;
  /** The platform process's resident memory, sampled through the run: [seconds since start, MB]. */
  memory: [number, number][];
  /** What a local receiver got, in order (`oncall:<schedule>`: whoever is on call now); undefined: no such receiver. */
  received(receiver: string): Promise<{ name: string; got: string[] } | undefined>;
}

async function pollUntil(timeoutMs: number, check: () => Promise<boolean> | boolean, intervalMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

async function loadResult(state: RunState, id: string): Promise<LoadResult> {
  const run = state.loads.get(id);
  if (run === undefined) throw new Error(`no load ${id} has run yet`);
  return run.done;
}

export async function check(expectation: Expectation, state: RunState): Promise<Verdict> {
  if ('successRate' in expectation) {
    const { load, min } = expectation.successRate;
    const result = await loadResult(state, load);
    return {
      expectation: `load ${load}: success rate (2xx only) ≥ ${(min * 100).toFixed(2)}%`,
      passed: result.requests > 0 && result.successRate >= min,
      observed: `${(result.successRate * 100).toFixed(3)}% of ${result.requests} requests (${JSON.stringify(result.statusCounts)})`,
    };
  }
  if ('latency' in expectation) {
    const { load, percentile: p, maxMs } = expectation.latency;
    const run = state.loads.get(load)!;
    const result = await loadResult(state, load);
    const value = percentile(run.recorder.okLatencies().sort(), p);
    return {
      expectation: `load ${load}: p${p} latency of 2xx answers ≤ ${maxMs} ms`,
      passed: result.ok > 0 && value <= maxMs,
      observed: `p${p} = ${value.toFixed(2)} ms over ${result.ok} answers`,
    };
  }
  if ('storedEqualsAcknowledged' in expectation) {
    const results = await Promise.all([...state.loads.values()].map((l) => l.done));
    const acknowledged = results.reduce((sum, r) => sum + r.samplesAcknowledged, 0);
    const ambiguous = results.reduce((sum, r) => sum + r.samplesAmbiguous, 0);
    let stored = -1;
    const passed = await pollUntil(expectation.storedEqualsAcknowledged.timeout, async () => {
      try {
        stored = await state.countStored();
      } catch {
        return false;
      }
      return stored >= acknowledged && stored <= acknowledged + ambiguous;
    }, 500);
    return {
      expectation: 'samples stored = samples acknowledged (none lost; extra only from requests that ended without an answer)',
      passed: passed && acknowledged > 0,
      observed: `stored ${stored}, acknowledged ${acknowledged}${ambiguous > 0 ? `, ambiguous ${ambiguous}` : ''}${stored < acknowledged && stored >= 0 ? ` — ${acknowledged - stored} LOST` : ''}`,
    };
  }
  if ('alertFired' in expectation) {
    const { rule, timeout } = expectation.alertFired;
    const passed = await pollUntil(timeout, () => state.alertsFired.has(rule));
    return {
      expectation: `alert ${rule} fires within ${timeout / 1_000} s`,
      passed,
      observed: passed ? `fired at ${new Date(state.alertsFired.get(rule)!).toISOString()}` : `not fired; seen: ${[...state.alertsFired.keys()].join(', ') || 'none'}`,
    };
  }
  if ('actorRestarted' in expectation) {
    const { actor, min, timeout } = expectation.actorRestarted;
    const count = (): number => (state.restarts.get(actor) ?? 0) + (state.restarts.get(`process:${state.processOfActor(actor) ?? ''}`) ?? 0);
    const passed = await pollUntil(timeout, () => count() >= min);
    return { expectation: `actor ${actor} restarted at least ${min} time(s)`, passed, observed: `${count()} restart(s)` };
  }
  if ('notified' in expectation) {
    const { receiver, what, min, timeout } = expectation.notified;
    let got: { name: string; got: string[] } | undefined;
    const passed = await pollUntil(timeout, async () => {
      got = await state.received(receiver);
      return got !== undefined && got.got.filter((w) => w === what).length >= min;
    });
    return {
      expectation: `receiver ${receiver} got at least ${min} notification(s) "${what}" within ${timeout / 1_000} s`,
      passed,
      observed: got === undefined ? `no receiver ${receiver}` : `${got.name} got ${JSON.stringify(got.got)}`,
    };
  }
  if ('received' in expectation) {
    const { receiver, exactly, timeout } = expectation.received;
    let got: { name: string; got: string[] } | undefined;
    const passed = await pollUntil(timeout, async () => {
      got = await state.received(receiver);
      return got !== undefined && JSON.stringify(got.got) === JSON.stringify(exactly);
    });
    return {
      expectation: `receiver ${receiver} got exactly ${JSON.stringify(exactly)}`,
      passed,
      observed: got === undefined ? `no receiver ${receiver}` : `${got.name} got ${JSON.stringify(got.got)}`,
    };
  }
  if ('groupConsumed' in expectation) {
    const { group, timeout } = expectation.groupConsumed;
    const results = await Promise.all([...state.loads.values()].map((l) => l.done));
    const acknowledged = results.reduce((sum, r) => sum + r.samplesAcknowledged, 0);
    const ambiguous = results.reduce((sum, r) => sum + r.samplesAmbiguous, 0);
    const passed = await pollUntil(timeout, () => {
      const got = state.consumers.consumed(group) ?? -1;
      return got >= acknowledged && got <= acknowledged + ambiguous;
    }, 250);
    const got = state.consumers.consumed(group);
    return {
      expectation: `consumer group ${group} consumed every acknowledged sample (each delivery once; none lost)`,
      passed: passed && acknowledged > 0,
      observed: got === undefined ? `no consumer group ${group}` : `consumed ${got}, acknowledged ${acknowledged}${got < acknowledged ? ` — ${acknowledged - got} MISSING` : ''}`,
    };
  }
  if ('rebalance' in expectation) {
    const { group, maxMs, detectionMaxMs } = expectation.rebalance;
    const rebalances = state.consumers.rebalances.filter((r) => r.group === group);
    const worst = Math.max(0, ...rebalances.map((r) => r.rebalanceMs));
    const detections = rebalances.filter((r) => r.detectionMs !== undefined).map((r) => r.detectionMs!);
    const worstDetection = Math.max(0, ...detections);
    return {
      expectation: `consumer group ${group}: every rebalance stable within ${maxMs} ms${detectionMaxMs === undefined ? '' : `, every crash detected within ${detectionMaxMs} ms`}`,
      passed: rebalances.length > 0 && worst <= maxMs && (detectionMaxMs === undefined || worstDetection <= detectionMaxMs),
      observed: `${rebalances.length} rebalance(s): ${rebalances.map((r) => `${r.cause} ${r.member} ${r.detectionMs === undefined ? '' : `detected ${r.detectionMs.toFixed(0)} ms, `}stable ${r.rebalanceMs.toFixed(1)} ms`).join('; ')}`,
    };
  }
  if ('memoryBelow' in expectation) {
    const peak = state.memory.reduce((max, [, mb]) => Math.max(max, mb), 0);
    return { expectation: `resident memory stayed ≤ ${expectation.memoryBelow.mb} MB`, passed: state.memory.length > 0 && peak <= expectation.memoryBelow.mb, observed: `peak ${peak.toFixed(0)} MB over ${state.memory.length} samples` };
  }
  if ('answered' in expectation) {
    const { load, status, min, max } = expectation.answered;
    const result = await loadResult(state, load);
    const count = result.statusCounts[String(status)] ?? 0;
    return { expectation: `load ${load}: ${min}${max === undefined ? ' or more' : `–${max}`} requests answered ${status}`, passed: count >= min && (max === undefined || count <= max), observed: `${count} of ${result.requests} (${JSON.stringify(result.statusCounts)})` };
  }
  const { load, samples } = expectation.minAcknowledged;
  const result = await loadResult(state, load);
  return { expectation: `load ${load}: at least ${samples} samples acknowledged`, passed: result.samplesAcknowledged >= samples, observed: `${result.samplesAcknowledged}` };
}
