/**
 * Binary operators with Prometheus's rules:
 *
 * - scalar op scalar gives a scalar (comparisons need `bool` and give 0 or 1);
 * - vector op scalar applies to every sample; arithmetic drops the metric name, a comparison
 *   keeps the samples for which it holds (with their vector value, whichever side the
 *   vector is on) unless `bool` turns it into 0/1 and drops the name;
 * - vector op vector matches samples by their labels (all but the name, or `on(…)`, or all
 *   but `ignoring(…)`): one-to-one by default, many-to-one with `group_left`, one-to-many with
 *   `group_right`; a match group that is not unique on the "one" side is an error, as is a
 *   one-to-one match that meets two samples of one group;
 * - `and`, `or`, `unless` are set operations on the match groups.
 *
 * Every step is matched on its own (a series may match at one step and not at the next); the
 * signature and the result labels of a series pair are computed once per query.
 */
import type { BinaryExpr, BinaryOp, VectorMatching } from '../../../core/promql/ast.js';
import { COMPARISON_OPS, SET_OPS } from '../../../core/promql/ast.js';
import { METRIC_NAME_LABEL, type Labels } from '../../../core/model.js';
import type { Evaluator } from './evaluator.js';
import { QueryExecutionError, SeriesSet, byStep, dropName, labelsKey, type Grid, type Series, type Value, type VectorValue } from './values.js';

/** Go's math.Pow where it differs from Math.pow: 1^y = 1 and (−1)^±Inf = 1. */
function pow(x: number, y: number): number {
  if (x === 1 || y === 0) return 1;
  if (x === -1 && !Number.isFinite(y) && !Number.isNaN(y)) return 1;
  return Math.pow(x, y);
}

export function arithmetic(op: BinaryOp, l: number, r: number): number {
  switch (op) {
    case '+':
      return l + r;
    case '-':
      return l - r;
    case '*':
      return l * r;
    case '/':
      return l / r;
    case '%':
      return l % r;
    case '^':
      return pow(l, r);
    case 'atan2':
      return Math.atan2(l, r);
    default:
      throw new QueryExecutionError(`operator ${op} is not arithmetic`);
  }
}

export function compare(op: BinaryOp, l: number, r: number): boolean {
  switch (op) {
    case '==':
      return l === r;
    case '!=':
      return l !== r;
    case '>':
      return l > r;
    case '<':
      return l < r;
    case '>=':
      return l >= r;
    case '<=':
      return l <= r;
    default:
      throw new QueryExecutionError(`operator ${op} is not a comparison`);
  }
}

export async function evalBinary(ev: Evaluator, node: BinaryExpr, grid: Grid): Promise<Value> {
  const lhs = await ev.eval(node.lhs, grid);
  const rhs = await ev.eval(node.rhs, grid);
  const comparison = COMPARISON_OPS.has(node.op);
  if (lhs.kind === 'scalar' && rhs.kind === 'scalar') {
    const values = new Float64Array(grid.count);
    for (let i = 0; i < grid.count; i++) {
      const l = lhs.values[i]!;
      const r = rhs.values[i]!;
      values[i] = comparison ? (compare(node.op, l, r) ? 1 : 0) : arithmetic(node.op, l, r);
    }
    return { kind: 'scalar', values };
  }
  if (lhs.kind === 'vector' && rhs.kind === 'scalar') return vectorScalar(node, lhs, rhs.values, false);
  if (lhs.kind === 'scalar' && rhs.kind === 'vector') return vectorScalar(node, rhs, lhs.values, true);
  if (lhs.kind !== 'vector' || rhs.kind !== 'vector') throw new QueryExecutionError(`binary operator ${node.op} needs scalars or instant vectors, got ${lhs.kind} and ${rhs.kind}`);
  const matching = node.matching ?? { card: SET_OPS.has(node.op) ? 'many-to-many' : 'one-to-one', on: false, labels: [], include: [] };
  if (SET_OPS.has(node.op)) return setOperation(node.op, lhs, rhs, matching, grid);
  return vectorVector(node, lhs, rhs, matching, grid);
}

function vectorScalar(node: BinaryExpr, vector: VectorValue, scalar: Float64Array, scalarOnLeft: boolean): VectorValue {
  const comparison = COMPARISON_OPS.has(node.op);
  const out = new SeriesSet();
  for (const s of vector.series) {
    const labels = !comparison || node.returnBool ? dropName(s.labels) : s.labels;
    for (let k = 0; k < s.steps.length; k++) {
      const step = s.steps[k]!;
      const v = s.values[k]!;
      const l = scalarOnLeft ? scalar[step]! : v;
      const r = scalarOnLeft ? v : scalar[step]!;
      if (!comparison) out.add(labels, step, arithmetic(node.op, l, r));
      else if (node.returnBool) out.add(labels, step, compare(node.op, l, r) ? 1 : 0);
      else if (compare(node.op, l, r)) out.add(labels, step, v);
    }
  }
  return { kind: 'vector', series: out.series() };
}

/** The match-group key of a label set: `on` keeps only the listed labels, otherwise all but the listed and the name. */
function signatureFunction(matching: VectorMatching): (labels: Labels) => string {
  const names = new Set(matching.labels);
  const cache = new WeakMap<Labels, string>();
  return (labels) => {
    let key = cache.get(labels);
    if (key !== undefined) return key;
    const picked = matching.on
      ? [...names].filter((n) => labels[n] !== undefined && labels[n] !== '').sort()
      : Object.keys(labels).filter((n) => n !== METRIC_NAME_LABEL && !names.has(n) && labels[n] !== '').sort();
    key = picked.map((n) => `${n}\u0000${labels[n]}`).join('\u0001');
    cache.set(labels, key);
    return key;
  };
}

/** The labels of a matched pair (Prometheus's resultMetric). `many` is the "many" side, `one` the other. */
function resultLabels(many: Labels, one: Labels, node: BinaryExpr, matching: VectorMatching): Labels {
  const out: Labels = { ...many };
  if (!COMPARISON_OPS.has(node.op) || node.returnBool) delete out[METRIC_NAME_LABEL];
  if (matching.card === 'one-to-one') {
    if (matching.on) {
      const keep = new Set(matching.labels);
      for (const name of Object.keys(out)) if (!keep.has(name)) delete out[name];
    } else for (const name of matching.labels) delete out[name];
  }
  for (const name of matching.include) {
    const value = one[name];
    if (value !== undefined && value !== '') out[name] = value;
    else delete out[name];
  }
  return out;
}

function describe(labels: Labels): string {
  return `{${Object.keys(labels).sort().map((n) => `${n}="${labels[n]}"`).join(', ')}}`;
}

function vectorVector(node: BinaryExpr, lhs: VectorValue, rhs: VectorValue, matching: VectorMatching, grid: Grid): VectorValue {
  const swapped = matching.card === 'one-to-many';
  const many = swapped ? rhs.series : lhs.series;
  const one = swapped ? lhs.series : rhs.series;
  const signature = signatureFunction(matching);
  const manySig = many.map((s) => signature(s.labels));
  const oneSig = one.map((s) => signature(s.labels));
  const manyTable = byStep(many, grid.count);
  const oneTable = byStep(one, grid.count);
  const comparison = COMPARISON_OPS.has(node.op);
  const pairs = new Map<number, Labels>();
  const out = new SeriesSet();
  const oneBySig = new Map<string, number>();
  const oneValueBySig = new Map<string, number>();
  for (let step = 0; step < grid.count; step++) {
    // Nothing can match when a side is empty: Prometheus returns before it looks for duplicates.
    if (oneTable.offsets[step] === oneTable.offsets[step + 1] || manyTable.offsets[step] === manyTable.offsets[step + 1]) continue;
    oneBySig.clear();
    oneValueBySig.clear();
    for (let at = oneTable.offsets[step]!; at < oneTable.offsets[step + 1]!; at++) {
      const index = oneTable.seriesIndex[at]!;
      const sig = oneSig[index]!;
      const held = oneBySig.get(sig);
      if (held !== undefined) {
        throw new QueryExecutionError(
          `found duplicate series for the match group ${describe(matchGroup(one[index]!.labels, matching))} on the ${swapped ? 'left' : 'right'} hand-side of the operation: [${describe(one[held]!.labels)}, ${describe(one[index]!.labels)}];many-to-many matching not allowed: matching labels must be unique on one side`,
        );
      }
      oneBySig.set(sig, index);
      oneValueBySig.set(sig, oneTable.values[at]!);
    }
    const matched = new Map<string, Set<string> | true>();
    for (let at = manyTable.offsets[step]!; at < manyTable.offsets[step + 1]!; at++) {
      const index = manyTable.seriesIndex[at]!;
      const sig = manySig[index]!;
      const oneIndex = oneBySig.get(sig);
      if (oneIndex === undefined) continue;
      const manyValue = manyTable.values[at]!;
      const oneValue = oneValueBySig.get(sig)!;
      const l = swapped ? oneValue : manyValue;
      const r = swapped ? manyValue : oneValue;
      let value: number;
      if (!comparison) value = arithmetic(node.op, l, r);
      else if (node.returnBool) value = compare(node.op, l, r) ? 1 : 0;
      else if (compare(node.op, l, r)) value = l;
      else continue;
      const pairKey = index * one.length + oneIndex;
      let labels = pairs.get(pairKey);
      if (labels === undefined) pairs.set(pairKey, (labels = resultLabels(many[index]!.labels, one[oneIndex]!.labels, node, matching)));
      const inserted = matched.get(sig);
      if (matching.card === 'one-to-one') {
        if (inserted !== undefined) throw new QueryExecutionError('multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)');
        matched.set(sig, true);
      } else {
        const set = inserted === undefined || inserted === true ? new Set<string>() : inserted;
        const key = labelsKey(labels);
        if (set.has(key)) throw new QueryExecutionError('multiple matches for labels: grouping labels must ensure unique matches');
        set.add(key);
        matched.set(sig, set);
      }
      out.add(labels, step, value);
    }
  }
  return { kind: 'vector', series: out.series() };
}

function matchGroup(labels: Labels, matching: VectorMatching): Labels {
  const names = new Set(matching.labels);
  const out: Labels = {};
  for (const [name, value] of Object.entries(labels)) {
    if (matching.on ? names.has(name) : name !== METRIC_NAME_LABEL && !names.has(name)) out[name] = value;
  }
  return out;
}

function setOperation(op: BinaryOp, lhs: VectorValue, rhs: VectorValue, matching: VectorMatching, grid: Grid): VectorValue {
  const signature = signatureFunction(matching);
  const leftSig = lhs.series.map((s) => signature(s.labels));
  const rightSig = rhs.series.map((s) => signature(s.labels));
  const left = byStep(lhs.series, grid.count);
  const right = byStep(rhs.series, grid.count);
  const out = new SeriesSet();
  const sigs = new Set<string>();
  const take = (series: Series[], table: typeof left, at: number, step: number): void => {
    out.add(series[table.seriesIndex[at]!]!.labels, step, table.values[at]!);
  };
  for (let step = 0; step < grid.count; step++) {
    sigs.clear();
    if (op === 'or') {
      for (let at = left.offsets[step]!; at < left.offsets[step + 1]!; at++) {
        sigs.add(leftSig[left.seriesIndex[at]!]!);
        take(lhs.series, left, at, step);
      }
      for (let at = right.offsets[step]!; at < right.offsets[step + 1]!; at++) {
        if (!sigs.has(rightSig[right.seriesIndex[at]!]!)) take(rhs.series, right, at, step);
      }
      continue;
    }
    for (let at = right.offsets[step]!; at < right.offsets[step + 1]!; at++) sigs.add(rightSig[right.seriesIndex[at]!]!);
    for (let at = left.offsets[step]!; at < left.offsets[step + 1]!; at++) {
      const inRight = sigs.has(leftSig[left.seriesIndex[at]!]!);
      if ((op === 'and') === inRight) take(lhs.series, left, at, step);
    }
  }
  return { kind: 'vector', series: out.series() };
}
