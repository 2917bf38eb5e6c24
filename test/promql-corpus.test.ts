/**
 * The PromQL test corpus (test/fixtures/promql/*.test.txt, run by test/promql-engine.test.ts)
 * must exercise every function the parser knows, every aggregation, every binary operator and
 * every matching modifier in a successful eval with expected lines: adding a function without a
 * case fails here.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { AGGREGATE_OPS, childrenOf, type BinaryOp, type Expr } from '../core/promql/ast.js';
import { FUNCTIONS } from '../core/promql/functions.js';
import { parsePromQL } from '../core/promql/parser.js';
import { parseTestfile } from './helpers/promql-testfile.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/promql/', import.meta.url));
const BINARY_OPS: BinaryOp[] = ['+', '-', '*', '/', '%', '^', 'atan2', '==', '!=', '>', '<', '>=', '<=', 'and', 'or', 'unless'];
const FEATURES = ['bool', 'on', 'ignoring', 'group_left', 'group_right', 'by', 'without', 'offset', '@', 'subquery', 'unary minus'];

const seen = new Set<string>();
function walk(expr: Expr): void {
  const pending = [expr];
  while (pending.length > 0) {
    const node = pending.pop()!;
    if (node.type === 'Call') seen.add(`function ${node.func}`);
    if (node.type === 'AggregateExpr') {
      seen.add(`aggregation ${node.op}`);
      if (node.grouping.length > 0 || node.without) seen.add(node.without ? 'feature without' : 'feature by');
    }
    if (node.type === 'BinaryExpr') {
      seen.add(`operator ${node.op}`);
      if (node.returnBool) seen.add('feature bool');
      const m = node.matching;
      if (m !== undefined) {
        if (m.on && m.labels.length > 0) seen.add('feature on');
        if (!m.on && m.labels.length > 0) seen.add('feature ignoring');
        if (m.card === 'many-to-one') seen.add('feature group_left');
        if (m.card === 'one-to-many') seen.add('feature group_right');
      }
    }
    if (node.type === 'VectorSelector') {
      if (node.offsetMs !== 0) seen.add('feature offset');
      if (node.at !== undefined) seen.add('feature @');
    }
    if (node.type === 'SubqueryExpr') seen.add('feature subquery');
    if (node.type === 'UnaryExpr' && node.op === '-') seen.add('feature unary minus');
    pending.push(...childrenOf(node));
  }
}

const files = readdirSync(fixtures).filter((f) => f.endsWith('.test.txt'));
for (const file of files) {
  for (const command of parseTestfile(readFileSync(join(fixtures, file), 'utf8'), file)) {
    // Only evals that must succeed and say what they expect count as covering something.
    if (command.kind !== 'eval' || command.fail === true) continue;
    walk(parsePromQL(command.expr));
  }
}

t.test('every function has a case in the corpus', async (t) => {
  const missing = Object.keys(FUNCTIONS).filter((name) => !seen.has(`function ${name}`));
  t.same(missing, [], `functions without a case: ${missing.join(', ')}`);
});

t.test('every aggregation and binary operator has a case in the corpus', async (t) => {
  const missing = [...AGGREGATE_OPS.map((op) => `aggregation ${op}`), ...BINARY_OPS.map((op) => `operator ${op}`)].filter((k) => !seen.has(k));
  t.same(missing, [], `without a case: ${missing.join(', ')}`);
});

t.test('every modifier has a case in the corpus', async (t) => {
  const missing = FEATURES.filter((f) => !seen.has(`feature ${f}`));
  t.same(missing, [], `modifiers without a case: ${missing.join(', ')}`);
});
