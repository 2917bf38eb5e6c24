/**
 * The shipped scenarios that drive queue consumer groups and alert escalation, end to end (a
 * file of their own: with the others, test/scenarios.test.ts would outlast tap's per-file limit).
 */
import t from 'tap';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScenario } from '../cli/scenario/runner.js';
import { tempDir } from './helpers/nats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const scenario = (name: string): string => join(ROOT, 'scenarios', `${name}.yaml`);

t.test('alert-escalation passes: fires, escalates to tier 1, is acknowledged, resolves; each local receiver got exactly its notifications', async (t) => {
  const run = await runScenario(scenario('alert-escalation'), { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.ok(run.passed, JSON.stringify(run.verdicts));
  const exact = run.verdicts.filter((v) => v.expectation.includes('got exactly'));
  t.equal(exact.length, 5);
  t.ok(exact.every((v) => v.passed));
  t.equal(run.steps.find((s) => s.description.startsWith('acknowledge'))?.detail, '1 alert(s) acknowledged');
});

// In a loaded CI run the audit group once consumed 89,600 of 100,020 acknowledged samples: members
// that gave up on a slow fetch committed past what it had carried (fixed in core/queue/member.ts;
// the regression test is in test/queue-consumer-groups.test.ts).
t.test('queue-rebalance passes: consumers join, crash and leave under load across swaps of the log and the group coordinator; nothing lost, every rebalance bounded', async (t) => {
  const run = await runScenario(scenario('queue-rebalance'), { reportsDir: tempDir(t), keepData: false, progress: false, logLevel: 'error' });
  t.ok(run.passed, JSON.stringify({ verdicts: run.verdicts, steps: run.steps.filter((s) => !s.ok) }));
  const rebalance = run.verdicts.find((v) => v.expectation.startsWith('consumer group audit: every rebalance'));
  t.match(rebalance?.observed, /^4 rebalance\(s\): join .*; crash .* detected \d+ ms, .*; join .*; leave /, 'two joins, a crash and a leave were timed');
  t.ok(run.verdicts.find((v) => v.expectation.startsWith('consumer group audit consumed'))?.passed, 'the audit group consumed every acknowledged sample');
  t.match(run.steps.find((s) => s.description.startsWith('swap queue.log'))?.detail, /queue\.file-log → queue\.jetstream/);
  t.match(run.steps.find((s) => s.description.startsWith('swap queue.groups'))?.detail, /queue\.consumer-groups → queue\.kv-leases/);
});
