/**
 * Our query engine against PromQL test files of our own (test/fixtures/promql/*.test.txt):
 * every eval's expected lines must hold, and where a real Prometheus is installed, our answer
 * to every eval must equal Prometheus 2.42's answer on the same data (except in `*.ours.*`
 * files, which test what Prometheus 2.42 does not have).
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { checkEvalResult, parseTestfile } from './helpers/promql-testfile.js';
import { oracleUnavailableReason, runTestfileAgainstOracle } from './helpers/prometheus-oracle.js';
import { compareAnswers, runTestfileAgainstEngine } from './helpers/promql-engine.js';

const { registry } = await PluginRegistry.load();
const fixtures = fileURLToPath(new URL('../../test/fixtures/promql/', import.meta.url));
const files = readdirSync(fixtures).filter((f) => f.endsWith('.test.txt')).sort();
const oracleMissing = oracleUnavailableReason();

for (const file of files) {
  t.test(file, async (t) => {
    const commands = parseTestfile(readFileSync(join(fixtures, file), 'utf8'), file);
    const ours = await runTestfileAgainstEngine(commands, { registry });
    for (const { command, actual } of ours) {
      const problems = checkEvalResult(command, actual);
      t.same(problems, [], `${file}:${command.line} ${command.expr}`);
    }
    if (file.includes('.ours.')) return;
    if (oracleMissing !== undefined) {
      t.comment(`not compared with Prometheus: ${oracleMissing}`);
      return;
    }
    const theirs = await runTestfileAgainstOracle(commands);
    theirs.forEach(({ command, actual }, i) => {
      t.same(compareAnswers(ours[i]!.actual, actual, command.ordered === true), [], `${file}:${command.line} same as Prometheus: ${command.expr}`);
    });
  });
}
