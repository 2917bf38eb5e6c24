/**
 * The shipped scenarios pass, and each fails — with a non-zero exit and a message naming
 * the expectation — when its expectation is made impossible.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScenario } from '../cli/scenario/runner.js';
import { tempDir } from './helpers/nats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'bin/craft.js');
const scenario = (name: string): string => join(ROOT, 'scenarios', `${name}.yaml`);

function variant(t: Test, name: string, from: string | RegExp, to: string): string {
  const text = readFileSync(scenario(name), 'utf8');
  const changed = text.replace(from, to);
  if (changed === text) throw new Error(`variant of ${name}: pattern not found`);
  const file = join(tempDir(t), `${name}-impossible.yaml`);
  writeFileSync(file, changed);
  return file;
}

t.test('quickstart passes through the CLI and exits 0', async (t) => {
  const reports = tempDir(t);
  const run = spawnSync(process.execPath, [CLI, 'run', scenario('quickstart'), '--reports', reports, '--no-progress'], { encoding: 'utf8', cwd: tempDir(t) });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /Scenario quickstart — PASSED/);
  t.match(run.stdout, /✔ alert HighCpuUsage fires/);
  t.match(run.stdout, /✔ samples stored = samples acknowledged/);
});

t.test('quickstart with an alert that cannot fire exits non-zero and names it', async (t) => {
  const file = variant(t, 'quickstart', 'rule: HighCpuUsage, timeout: 15s', 'rule: NoSuchRule, timeout: 2s');
  const run = spawnSync(process.execPath, [CLI, 'run', file, '--reports', tempDir(t), '--no-progress'], { encoding: 'utf8', cwd: tempDir(t) });
  t.equal(run.status, 1);
  t.match(run.stdout, /Scenario quickstart — FAILED/);
  t.match(run.stderr, /alert NoSuchRule fires within 2 s \(observed not fired/);
});

t.test('an invalid scenario file exits 2 with file and line', async (t) => {
  const file = variant(t, 'quickstart', 'clients: 20', 'clients: many');
  const run = spawnSync(process.execPath, [CLI, 'run', file, '--no-progress'], { encoding: 'utf8', cwd: tempDir(t) });
  t.equal(run.status, 2);
  t.match(run.stderr, /CRAFT_SCENARIO_INVALID: .*quickstart-impossible\.yaml:\d+:\d+: steps\[0\]\.load\.clients/);
});

t.test('hot-swap passes, and fails when its latency bound is impossible', async (t) => {
  const ok = await runScenario(scenario('hot-swap'), { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.ok(ok.passed, JSON.stringify(ok.verdicts));
  t.equal(ok.steps.filter((s) => s.description.startsWith('swap')).length, 5);
  const file = variant(t, 'hot-swap', '      - successRate: { load: steady, min: 0.999 }', '      - latency: { load: steady, percentile: 50, maxMs: 0.001 }');
  const bad = await runScenario(file, { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.notOk(bad.passed);
  t.match(bad.verdicts.find((v) => !v.passed), { expectation: /p50 latency of 2xx answers ≤ 0.001 ms/ });
});

t.test('crash-recovery passes, and fails when more restarts are demanded than happen', async (t) => {
  const ok = await runScenario(scenario('crash-recovery'), { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.ok(ok.passed, JSON.stringify({ verdicts: ok.verdicts, steps: ok.steps.filter((s) => !s.ok) }));
  const file = variant(t, 'crash-recovery', 'actorRestarted: { actor: storage, min: 2 }', 'actorRestarted: { actor: storage, min: 50, timeout: 1s }');
  const bad = await runScenario(file, { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.notOk(bad.passed);
  t.match(bad.verdicts.find((v) => !v.passed), { expectation: /actor storage restarted at least 50/ });
});

t.test('ingestion-phases swaps phases 1 → 8 under load, 7 → 8 last, and loses nothing', async (t) => {
  // Through the CLI, in its own process: phases 1–4 start a worker thread per request, and
  // every such thread would also load the test runner's module hooks. The runner re-adds its
  // hooks to NODE_OPTIONS of every child it sees spawned, so `env -u` removes them one step later.
  const reports = tempDir(t);
  const run = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, CLI, 'run', scenario('ingestion-phases'), '--reports', reports, '--no-progress'], { encoding: 'utf8', cwd: tempDir(t) });
  t.equal(run.status, 0, run.stdout + run.stderr);
  const [dir] = readdirSync(reports);
  const report = JSON.parse(readFileSync(join(reports, dir!, 'report.json'), 'utf8')) as { passed: boolean; steps: { description: string; detail: string }[] };
  t.ok(report.passed);
  const swaps = report.steps.filter((s) => s.description.startsWith('swap'));
  t.equal(swaps.length, 7);
  t.match(swaps.at(-1)?.detail, /ingestion\.keep-alive → ingestion\.event-driven/);
});

t.test('storage-phases passes: every store phase and both KV engines swapped under load, stored = acknowledged', async (t) => {
  const run = await runScenario(scenario('storage-phases'), { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.ok(run.passed, JSON.stringify(run.verdicts));
  t.equal(run.steps.filter((s) => s.description.startsWith('swap')).length, 7);
});

t.test('alerting-phases passes: the seed rule fires, then phase 1 rules (streamed and periodic) after a swap under load', async (t) => {
  const run = await runScenario(scenario('alerting-phases'), { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.ok(run.passed, JSON.stringify(run.verdicts));
  t.same(run.verdicts.filter((v) => v.expectation.startsWith('alert')).map((v) => v.passed), [true, true, true]);
});

/** The heap budget the cardinality bomb runs under (the scenario file's header says why). */
const BOMB_HEAP_MB = 512;

t.test('cardinality-bomb passes: the bomber is refused past its budget, memory stays bounded, the steady tenant is served, nothing is lost', async (t) => {
  // In a process of its own: its memory expectation is about the platform, not about what earlier tests left in this one.
  // With a heap budget, as an operator runs it: V8 otherwise lets garbage pile up to gigabytes before it collects, so
  // resident memory would say more about the machine's load than about what the limits keep alive (a budget the live
  // data outgrew would end the process, and the test with it).
  const reports = tempDir(t);
  const run = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, `--max-old-space-size=${BOMB_HEAP_MB}`, CLI, 'run', scenario('cardinality-bomb'), '--reports', reports, '--no-progress'], { encoding: 'utf8', cwd: tempDir(t) });
  t.equal(run.status, 0, run.stdout + run.stderr);
  const [dir] = readdirSync(reports);
  const report = JSON.parse(readFileSync(join(reports, dir!, 'report.json'), 'utf8')) as { passed: boolean; memory: [number, number][]; heapLimitMb: number; nodeFlags: string[]; loads: { id: string; ok: number; samplesAcknowledged: number }[] };
  t.ok(report.passed);
  const bomb = report.loads.find((l) => l.id === 'bomb')!;
  t.equal(bomb.samplesAcknowledged, bomb.ok * 1_000, 'every accepted bomb request stored whole');
  t.ok(report.memory.length > 100, 'memory sampled through the run');
  t.ok(report.nodeFlags.includes(`--max-old-space-size=${BOMB_HEAP_MB}`) && report.heapLimitMb < BOMB_HEAP_MB + 128, `ran under the heap budget (V8 heap limit ${report.heapLimitMb.toFixed(0)} MB)`);
});
