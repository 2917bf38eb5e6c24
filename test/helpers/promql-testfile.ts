/**
 * A parser for data-driven PromQL tests in the format of Prometheus's own test scripts
 * (promql/promqltest): `load <interval>` blocks of series in expanding notation, `clear`, and
 * `eval instant at <time> <expr>` / `eval range from <t> to <t> step <d> <expr>` followed by
 * expected lines. Written from the format's documentation; the facts it follows are noted where
 * they are not obvious (increments accumulate, `_xn` is n gaps but `axn` is n+1 values, no hex
 * numbers in series notation because `0x2` would be ambiguous).
 *
 * Also the checker that compares a query result with an eval's expected lines, so the same
 * files can judge Prometheus (test/helpers/prometheus-oracle.ts) and our own engine.
 */
import { readFileSync } from 'node:fs';
import { METRIC_NAME_LABEL, STALE_NAN, type Labels } from '../../core/model.js';

/**
 * One sample: `t` in milliseconds since the epoch, `v` a float64 (STALE_NAN for a staleness
 * marker; test it with isStaleNaN). Copy values element by element: V8's Array.prototype.flat,
 * flatMap and Array.from drop a NaN's payload, turning a marker into a plain NaN.
 */
export interface Sample { t: number; v: number }
export interface SeriesData { labels: Labels; samples: Sample[] }

export interface LoadCommand { kind: 'load'; line: number; intervalMs: number; series: SeriesData[] }
export interface ClearCommand { kind: 'clear'; line: number }
/** An expected line: `labels` null for a bare scalar; a value null for `_` (no point at that step). */
export interface ExpectedLine { line: number; labels: Labels | null; values: (number | null)[] }
interface EvalCommon {
  kind: 'eval'; line: number; expr: string; expected: ExpectedLine[];
  /** The query must fail (`eval_fail`, `expect fail`); `failMessage` must then occur in the error, `failPattern` match it. */
  fail?: boolean; failMessage?: string; failPattern?: string;
  /** The result order must be the order of the expected lines (`eval_ordered`, `expect ordered`). */
  ordered?: boolean;
}
export interface InstantEval extends EvalCommon { mode: 'instant'; atMs: number }
export interface RangeEval extends EvalCommon { mode: 'range'; startMs: number; endMs: number; stepMs: number }
export type EvalCommand = InstantEval | RangeEval;
export type TestfileCommand = LoadCommand | ClearCommand | EvalCommand;

/** Returned (thrown) for any malformed line; the message starts with `file:line: `. */
export class TestfileSyntaxError extends Error {
  override name = 'TestfileSyntaxError';
  constructor(readonly file: string, readonly line: number, detail: string) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** One expansion (`0+1x1000000`) may not produce more points than this: a typo must not eat the memory. */
export const SERIES_POINTS_MAX = 1_000_000;
/** The most steps a range eval may span (Prometheus's API refuses more than 11,000 points per series). */
export const RANGE_STEPS_MAX = 11_000;

const DURATION_UNITS_MS: Record<string, number> = { y: 365 * 86_400_000, w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/** A Prometheus duration (`5m`, `1h30m`, `250ms`, `0`) in milliseconds; units largest first, each at most once. */
export function parseDurationMs(text: string): number {
  if (text === '0') return 0;
  const match = DURATION.exec(text);
  if (text === '' || match === null) throw new Error(`bad duration ${JSON.stringify(text)} (expected e.g. 5m, 1h30m, 0)`);
  const units = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];
  return units.reduce((sum, unit, i) => sum + Number(match[i + 1] ?? 0) * DURATION_UNITS_MS[unit]!, 0);
}

// A number in series notation: decimal with optional exponent, or Inf/NaN in any case. No hex.
const NUMBER = String.raw`(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF]|[nN][aA][nN])`;
const SERIES_ITEM = new RegExp(String.raw`^([+-]?${NUMBER})(?:([+-]${NUMBER})?x(\d+))?$`);

function parseNumber(text: string): number {
  const unsigned = text.replace(/^[+-]/, '').toLowerCase();
  const magnitude = unsigned === 'inf' ? Infinity : unsigned === 'nan' ? NaN : Number(unsigned);
  return text.startsWith('-') ? -magnitude : magnitude;
}

/**
 * Expands series notation into one value per interval: null for `_` (a missing point),
 * STALE_NAN for `stale`. `a+bxn` and `a-bxn` give n+1 values, each the previous plus b (an
 * accumulating sum, as Prometheus computes it, not a+i·b); `axn` gives n+1 copies of a;
 * `_xn` gives n gaps.
 */
export function expandSeriesValues(text: string): (number | null)[] {
  // Start the array with generic elements: a NaN pushed into a fresh array of doubles may lose its
  // payload (V8 canonicalises it on that path), and a staleness marker is a NaN told by its payload.
  const values: (number | null)[] = [null];
  values.length = 0;
  const push = (value: number | null, times: number): void => {
    if (values.length + times > SERIES_POINTS_MAX) throw new Error(`more than ${SERIES_POINTS_MAX} points in one series`);
    for (let i = 0; i < times; i++) values.push(value);
  };
  for (const item of text.trim().split(/\s+/).filter((s) => s !== '')) {
    if (item === '_') { push(null, 1); continue; }
    if (item === 'stale') { push(STALE_NAN, 1); continue; }
    const gaps = /^_x(\d+)$/.exec(item);
    if (gaps !== null) { push(null, Number(gaps[1])); continue; }
    const match = SERIES_ITEM.exec(item);
    if (match === null) throw new Error(`bad series value ${JSON.stringify(item)} (expected a number, a+bxn, a-bxn, axn, _, _xn or stale)`);
    if (match[3] === undefined) { push(parseNumber(match[1]!), 1); continue; }
    const times = Number(match[3]) + 1;
    if (times > SERIES_POINTS_MAX) throw new Error(`more than ${SERIES_POINTS_MAX} points in one series`);
    const increment = match[2] === undefined ? 0 : parseNumber(match[2]);
    let value = parseNumber(match[1]!);
    for (let i = 0; i < times; i++) { push(value, 1); value += increment; }
  }
  return values;
}

const IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** Reads a quoted label value at `text[start]`; returns the value and the index after the closing quote. */
function readQuoted(text: string, start: number): { value: string; end: number } {
  const quote = text[start];
  if (quote !== '"' && quote !== "'" && quote !== '`') throw new Error(`expected a quoted label value at column ${start + 1}`);
  let value = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === quote) return { value, end: i + 1 };
    if (c !== '\\' || quote === '`') { value += c; continue; }
    const next = text[++i] ?? '';
    const hex = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0;
    const digits = text.slice(i + 1, i + 1 + hex);
    if (hex > 0 && digits.length === hex && /^[0-9a-fA-F]+$/.test(digits)) {
      value += String.fromCodePoint(parseInt(text.slice(i + 1, i + 1 + hex), 16));
      i += hex;
    } else if (next in ESCAPES) value += ESCAPES[next];
    else throw new Error(`unknown escape \\${next} in a label value`);
  }
  throw new Error('unterminated label value');
}

/** Splits `metric{a="b", c="d"} rest` into labels and the rest of the line. */
export function parseSeriesDescription(text: string): { labels: Labels; rest: string } {
  const labels: Labels = {};
  const name = METRIC_NAME.exec(text)?.[0] ?? '';
  let i = name.length;
  if (name !== '') labels[METRIC_NAME_LABEL] = name;
  if (text[i] === '{') {
    i++;
    for (;;) {
      while (text[i] === ' ' || text[i] === '\t') i++;
      if (text[i] === '}') { i++; break; }
      const label = IDENTIFIER.exec(text.slice(i))?.[0];
      if (label === undefined) throw new Error(`expected a label name or "}" at column ${i + 1}`);
      i += label.length;
      while (text[i] === ' ') i++;
      if (text[i] !== '=') throw new Error(`expected "=" after label ${label}`);
      i++;
      while (text[i] === ' ') i++;
      const { value, end } = readQuoted(text, i);
      if (label in labels) throw new Error(`label ${label} given twice`);
      labels[label] = value;
      i = end;
      while (text[i] === ' ' || text[i] === '\t') i++;
      if (text[i] === ',') i++;
      else if (text[i] !== '}') throw new Error(`expected "," or "}" at column ${i + 1}`);
    }
  } else if (name === '') throw new Error('expected a metric name or "{"');
  if (i < text.length && !/\s/.test(text[i]!)) throw new Error(`expected a space after the series labels at column ${i + 1}`);
  return { labels, rest: text.slice(i) };
}

const COMMAND = /^(load|clear|eval(?:_\w+)?)(?:\s|$)/;
const INSTANT = /^eval(_ordered|_fail)?\s+instant\s+at\s+(\S+)\s+(.+)$/;
const RANGE = /^eval(_fail)?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$/;

/**
 * Parses a test file into commands. A command's block is the lines after it up to a blank line
 * or the next command; `#` comment lines are skipped anywhere. Throws TestfileSyntaxError.
 */
export function parseTestfile(text: string, file = '<input>'): TestfileCommand[] {
  const lines = text.split(/\r?\n/);
  const commands: TestfileCommand[] = [];
  const at = <T>(line: number, fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      if (error instanceof TestfileSyntaxError) throw error;
      throw new TestfileSyntaxError(file, line, (error as Error).message);
    }
  };
  let i = 0;
  /** The block under the command on line i: [line number, trimmed text] pairs. */
  const block = (): [number, string][] => {
    const out: [number, string][] = [];
    while (i + 1 < lines.length) {
      const next = lines[i + 1]!.trim();
      if (next === '' || COMMAND.test(next)) break;
      i++;
      if (!next.startsWith('#')) out.push([i + 1, next]);
    }
    return out;
  };
  for (; i < lines.length; i++) {
    const lineNumber = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const keyword = COMMAND.exec(line)?.[1];
    if (keyword === undefined) throw new TestfileSyntaxError(file, lineNumber, `expected load, clear or eval, got ${JSON.stringify(line.slice(0, 40))}`);
    if (keyword === 'clear') {
      if (line !== 'clear') throw new TestfileSyntaxError(file, lineNumber, 'clear takes no arguments');
      commands.push({ kind: 'clear', line: lineNumber });
    } else if (keyword === 'load') {
      const intervalMs = at(lineNumber, () => parseDurationMs(line.slice(4).trim()));
      if (intervalMs <= 0) throw new TestfileSyntaxError(file, lineNumber, 'the load interval must be positive');
      const series = block().map(([n, text]) => at(n, () => loadSeries(text, intervalMs)));
      commands.push({ kind: 'load', line: lineNumber, intervalMs, series });
    } else {
      const command = at(lineNumber, () => evalHeader(line));
      command.line = lineNumber;
      for (const [n, text] of block()) at(n, () => evalBodyLine(command, text, n));
      commands.push(command);
    }
  }
  return commands;
}

/** Reads and parses a test file; errors name the path. */
export function readTestfile(path: string): TestfileCommand[] {
  return parseTestfile(readFileSync(path, 'utf8'), path);
}

function loadSeries(text: string, intervalMs: number): SeriesData {
  if (text.includes('{{')) throw new Error('native histograms are not supported');
  const { labels, rest } = parseSeriesDescription(text);
  const samples: Sample[] = [];
  expandSeriesValues(rest).forEach((v, index) => {
    if (v !== null) samples.push({ t: index * intervalMs, v });
  });
  return { labels, samples };
}

function evalHeader(line: string): EvalCommand {
  const instant = INSTANT.exec(line);
  if (instant !== null) {
    const command: InstantEval = { kind: 'eval', line: 0, mode: 'instant', atMs: parseDurationMs(instant[2]!), expr: instant[3]!, expected: [] };
    if (instant[1] === '_fail') command.fail = true;
    if (instant[1] === '_ordered') command.ordered = true;
    return command;
  }
  const range = RANGE.exec(line);
  if (range !== null) {
    const [startMs, endMs, stepMs] = [range[2]!, range[3]!, range[4]!].map(parseDurationMs) as [number, number, number];
    if (stepMs <= 0) throw new Error('the step of a range eval must be positive');
    if (endMs < startMs) throw new Error('a range eval must end at or after its start');
    if ((endMs - startMs) / stepMs + 1 > RANGE_STEPS_MAX) throw new Error(`a range eval may have at most ${RANGE_STEPS_MAX} steps`);
    const command: RangeEval = { kind: 'eval', line: 0, mode: 'range', startMs, endMs, stepMs, expr: range[5]!, expected: [] };
    if (range[1] === '_fail') command.fail = true;
    return command;
  }
  if (/^eval_ordered\s+range/.test(line)) throw new Error('eval_ordered applies to instant queries only');
  if (/^eval_(warn|info)\b/.test(line)) throw new Error('eval_warn and eval_info are not supported');
  throw new Error('expected "eval[_fail|_ordered] instant at <time> <expr>" or "eval[_fail] range from <time> to <time> step <duration> <expr>"');
}

function evalBodyLine(command: EvalCommand, text: string, line: number): void {
  if (text.startsWith('expect ')) {
    const match = /^expect\s+(fail|ordered)(?:\s+(msg|regex):\s*(.*))?$/.exec(text);
    if (match === null) throw new Error(`unsupported expect line (supported: expect fail [msg: …|regex: …], expect ordered)`);
    if (match[1] === 'ordered') {
      if (command.mode !== 'instant' || match[2] !== undefined) throw new Error('expect ordered takes no message and applies to instant queries only');
      command.ordered = true;
    } else {
      command.fail = true;
      const message = match[3]?.replace(/^"(.*)"$/, '$1');
      if (match[2] === 'msg') command.failMessage = message;
      if (match[2] === 'regex') command.failPattern = message;
    }
    return;
  }
  if (command.fail === true) throw new Error('an eval that must fail takes no expected result lines');
  const firstToken = text.split(/\s/, 1)[0]!;
  const bareScalar = firstToken === '_' || SERIES_ITEM.test(firstToken);
  const { labels, rest } = bareScalar ? { labels: null, rest: text } : parseSeriesDescription(text);
  const values = expandSeriesValues(rest);
  const wanted = command.mode === 'instant' ? 1 : Math.floor((command.endMs - command.startMs) / command.stepMs) + 1;
  if (values.length !== wanted) throw new Error(`expected ${wanted} value${wanted === 1 ? '' : 's'} for this ${command.mode} eval, got ${values.length}`);
  if (command.mode === 'instant' && values[0] === null) throw new Error('an instant eval cannot expect a missing value');
  command.expected.push({ line, labels, values });
}

/** A query's answer as the HTTP API gives it (times in ms); what an eval's expected lines are checked against. */
export type PromqlResult =
  | { status: 'success'; resultType: 'vector'; result: { labels: Labels; t: number; v: number }[]; warnings?: string[] }
  | { status: 'success'; resultType: 'matrix'; result: { labels: Labels; samples: Sample[] }[]; warnings?: string[] }
  | { status: 'success'; resultType: 'scalar'; result: Sample; warnings?: string[] }
  | { status: 'success'; resultType: 'string'; result: { t: number; value: string }; warnings?: string[] }
  | { status: 'error'; errorType: string; error: string };

/** Relative tolerance of `valuesAgree`: Prometheus prints results with 17 significant digits; test files round. */
export const RELATIVE_TOLERANCE = 1e-6;

/** Equal, both NaN, or within RELATIVE_TOLERANCE of the larger magnitude (so ±Inf only equals itself). */
export function valuesAgree(expected: number, actual: number): boolean {
  if (Number.isNaN(expected) || Number.isNaN(actual)) return Number.isNaN(expected) && Number.isNaN(actual);
  if (expected === actual) return true;
  if (!Number.isFinite(expected) || !Number.isFinite(actual)) return false;
  return Math.abs(expected - actual) <= RELATIVE_TOLERANCE * Math.max(Math.abs(expected), Math.abs(actual));
}

const labelKey = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const showLabels = (labels: Labels | null): string => (labels === null ? 'scalar' : `{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`);

/**
 * Compares a result with an eval's expectations; returns what disagrees, one sentence each
 * (empty when it all agrees). Labels must match exactly, `__name__` included; values agree as in
 * `valuesAgree`; a range eval's `_` means "no point at that step". A failure message must occur
 * in the error text (the HTTP API prefixes the engine's message with its own words).
 */
export function checkEvalResult(command: EvalCommand, actual: PromqlResult): string[] {
  if (command.fail === true) {
    if (actual.status !== 'error') return ['expected the query to fail, but it succeeded'];
    if (command.failMessage !== undefined && !actual.error.includes(command.failMessage)) return [`error ${JSON.stringify(actual.error)} does not contain ${JSON.stringify(command.failMessage)}`];
    if (command.failPattern !== undefined && !new RegExp(command.failPattern).test(actual.error)) return [`error ${JSON.stringify(actual.error)} does not match /${command.failPattern}/`];
    return [];
  }
  if (actual.status === 'error') return [`unexpected error (${actual.errorType}): ${actual.error}`];
  // Every shape becomes a list of (labels, points at step indices) for one comparison below.
  const stepOf = (t: number): number => (command.mode === 'instant' ? 0 : (t - command.startMs) / command.stepMs);
  let got: { labels: Labels | null; points: Map<number, number> }[];
  if (actual.resultType === 'scalar') got = [{ labels: null, points: new Map([[0, actual.result.v]]) }];
  else if (actual.resultType === 'vector') got = actual.result.map((s) => ({ labels: s.labels, points: new Map([[0, s.v]]) }));
  else if (actual.resultType === 'matrix') got = actual.result.map((s) => ({ labels: s.labels, points: new Map(s.samples.map((p) => [stepOf(p.t), p.v])) }));
  else return [`a ${actual.resultType} result cannot be checked against expected lines`];
  // A range query over a scalar expression answers a matrix with one label-less series.
  const expectedKey = (labels: Labels | null): string => (labels === null ? (command.mode === 'range' ? labelKey({}) : 'scalar') : labelKey(labels));
  const gotKey = (labels: Labels | null): string => (labels === null ? 'scalar' : labelKey(labels));
  const problems: string[] = [];
  const expected = command.expected.filter((e) => e.values.some((v) => v !== null));
  if (got.length !== expected.length) problems.push(`expected ${expected.length} series, got ${got.length}`);
  const byKey = new Map(got.map((g, index) => [gotKey(g.labels), { ...g, index }]));
  expected.forEach((line, position) => {
    const match = byKey.get(expectedKey(line.labels));
    if (match === undefined) return problems.push(`line ${line.line}: no result for ${showLabels(line.labels)}`);
    if (command.ordered === true && match.index !== position) problems.push(`line ${line.line}: ${showLabels(line.labels)} came at position ${match.index + 1}, expected ${position + 1}`);
    line.values.forEach((value, step) => {
      const point = match.points.get(step);
      if (value === null && point !== undefined) problems.push(`line ${line.line}: ${showLabels(line.labels)} has ${point} at step ${step}, expected no point`);
      if (value !== null && point === undefined) problems.push(`line ${line.line}: ${showLabels(line.labels)} has no point at step ${step}, expected ${value}`);
      if (value !== null && point !== undefined && !valuesAgree(value, point)) problems.push(`line ${line.line}: ${showLabels(line.labels)} is ${point} at step ${step}, expected ${value}`);
    });
    const extra = [...match.points.keys()].filter((step) => !(step >= 0 && step < line.values.length && Number.isInteger(step)));
    if (extra.length > 0) problems.push(`line ${line.line}: ${showLabels(line.labels)} has points off the expected steps (${extra.join(', ')})`);
  });
  const expectedKeys = new Set(expected.map((e) => expectedKey(e.labels)));
  for (const g of got) if (!expectedKeys.has(gotKey(g.labels))) problems.push(`unexpected result ${showLabels(g.labels)}`);
  return problems;
}
