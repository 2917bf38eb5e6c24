/**
 * PromQL text → syntax tree. The generated peggy parser (grammars/promql.peggy) builds the tree
 * and raises the errors Prometheus raises while parsing; `parsePromQL` then runs the checks
 * Prometheus's checkAST runs (types, arguments, vector matching), with Prometheus's messages.
 * Every failure is a PromQLParseError whose message reads like Prometheus's:
 * `1:14: parse error: unexpected end of input, expected "("`.
 */
import { CraftError } from '../errors.js';
import { compileMatchers, METRIC_NAME_LABEL, type LabelMatcher } from '../model.js';
import {
  AGGREGATE_OPS, AGGREGATE_PARAM_TYPES, COMPARISON_OPS, depthOf, documentedType, SET_OPS,
  type BinaryExpr, type Expr, type PosRange, type ValueType, type VectorMatching, type VectorSelector,
} from './ast.js';
import { argumentCountRange, lookupFunction } from './functions.js';
import { parse as generatedParse, SyntaxError as GeneratedSyntaxError, type Expectation } from './generated/parser.js';

/** Returned (thrown) when a query is not valid PromQL; `offset` is 0-based, `line` and `column` 1-based. */
export class PromQLParseError extends Error {
  override readonly name = 'PromQLParseError';
  readonly query: string;
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  /** The message without its position prefix, e.g. `unknown function with name "foo"`. */
  readonly detail: string;

  constructor(query: string, offset: number, detail: string) {
    const before = query.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - (before.lastIndexOf('\n') + 1) + 1;
    super(`${line}:${column}: parse error: ${detail}`);
    this.query = query;
    this.offset = offset;
    this.line = line;
    this.column = column;
    this.detail = detail;
  }
}

/** The API layer's form of a parse error: code CRAFT_QUERY_PARSE, the position in `details`. */
export function toCraftError(error: PromQLParseError): CraftError {
  return new CraftError('CRAFT_QUERY_PARSE', error.message, {
    cause: error,
    details: { offset: error.offset, line: error.line, column: error.column },
  });
}

/** parsePromQL for request handlers: a malformed query is a CraftError with code CRAFT_QUERY_PARSE. */
export function parseQuery(text: string): Expr {
  try {
    return parsePromQL(text);
  } catch (error) {
    throw error instanceof PromQLParseError ? toCraftError(error) : error;
  }
}

/**
 * The deepest tree parsePromQL accepts (a 1,000-term sum is 1,000 deep). The checks, the printer
 * and an evaluator recurse once per level; past this a query would exhaust the stack instead.
 */
export const EXPRESSION_DEPTH_MAX = 1_000;
const TOO_DEEP = 'expression nests too deeply';

/** Parses and checks a PromQL expression. Throws PromQLParseError. */
export function parsePromQL(text: string): Expr {
  let expr: Expr;
  try {
    expr = generatedParse(text, { startRule: 'Expression' });
  } catch (error) {
    // The generated parser recurses per nesting level too; it runs out of stack before the limit for parentheses.
    if (error instanceof RangeError) throw new PromQLParseError(text, 0, TOO_DEEP);
    throw fromGeneratedError(text, error);
  }
  if (depthOf(expr) > EXPRESSION_DEPTH_MAX) throw new PromQLParseError(text, 0, TOO_DEEP);
  new Checker(text).check(expr);
  return expr;
}

/** A duration literal (`1h30m`, `5m`, `250ms`; units y w d h m s ms, decreasing, each once) in milliseconds. */
export function parseDurationMs(text: string): number {
  try {
    return generatedParse(text, { startRule: 'DurationOnly' });
  } catch (error) {
    throw fromGeneratedError(text, error);
  }
}

function fromGeneratedError(text: string, error: unknown): unknown {
  if (!(error instanceof GeneratedSyntaxError)) return error;
  const offset = error.location.start.offset;
  // error() in a grammar action carries its own message and no expectations.
  if (error.expected == null) return new PromQLParseError(text, offset, error.message);
  if (/^(\s|#[^\n\r]*)*$/.test(text)) {
    return new PromQLParseError(text, 0, 'no expression found in input');
  }
  const expected = describeExpected(error.expected);
  const found = describeFound(text, offset);
  return new PromQLParseError(text, offset, `unexpected ${found}${expected === '' ? '' : `, expected ${expected}`}`);
}

/** What can start an operand (or modify the operator before it); when several are expected, the message says "expression". */
const OPERAND_STARTS = new Set([
  '"("', '"{"', 'number', 'duration', 'string', 'aggregation', 'function name', 'metric name', 'unary operator',
  '"bool"', '"on"', '"ignoring"', '"group_left"', '"group_right"',
]);
/** What can follow a complete expression; when an operator could have followed, only closers are worth naming. */
const CONTINUATIONS = new Set(['binary operator', '"["', '"@"', '"offset"', '"("', '"{"', 'end of input']);

function describeExpected(expectations: Expectation[]): string {
  let names = [...new Set(expectations.map((e) => {
    switch (e.type) {
      case 'literal':
        return JSON.stringify(e.text);
      case 'other':
        return e.description;
      case 'end':
        return 'end of input';
      default:
        return 'character';
    }
  }))];
  if (names.includes('metric name') && names.includes('number')) {
    names = [...names.filter((name) => !OPERAND_STARTS.has(name)), 'expression'];
  }
  if (names.includes('binary operator')) names = names.filter((name) => !CONTINUATIONS.has(name));
  names = names.filter((name) => name !== 'end of input' || names.length > 1);
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

const KEYWORD_TOKENS = new Set(['offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'start', 'end']);
const AGGREGATOR_TOKENS: ReadonlySet<string> = new Set(AGGREGATE_OPS);
const OPERATOR_WORDS = new Set(['and', 'or', 'unless', 'atan2']);

/** The token at `offset`, described the way Prometheus's lexer items print (`<op:*>`, `identifier "x"`). */
function describeFound(text: string, offset: number): string {
  const rest = text.slice(offset);
  if (rest === '') return 'end of input';
  const word = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest)?.[0];
  if (word !== undefined) {
    const lower = word.toLowerCase();
    if (KEYWORD_TOKENS.has(lower)) return `<${lower}>`;
    if (AGGREGATOR_TOKENS.has(lower)) return `<aggr:${lower}>`;
    if (OPERATOR_WORDS.has(lower)) return `<op:${lower}>`;
    return lower === 'inf' || lower === 'nan' ? `number "${word}"` : `identifier "${word}"`;
  }
  const number = /^(\d[\w.]*|\.\d[\w.]*)/.exec(rest)?.[0];
  if (number !== undefined) return `number "${number}"`;
  if (/^["'`]/.test(rest)) return 'string';
  const operator = /^(==|!=|>=|<=|=~|!~|[-+*/%^<>@])/.exec(rest)?.[0];
  if (operator !== undefined) return `<op:${operator}>`;
  return JSON.stringify(String.fromCodePoint(rest.codePointAt(0)!));
}

/** Prometheus's checkAST: the type rules the grammar cannot express. Completes BinaryExpr.matching. */
class Checker {
  constructor(private readonly text: string) {}

  private fail(pos: PosRange, detail: string): never {
    throw new PromQLParseError(this.text, pos.start, detail);
  }

  private expect(expr: Expr, want: ValueType, context: string): void {
    const got = this.check(expr);
    if (got !== want) this.fail(expr.pos, `expected type ${documentedType(want)} in ${context}, got ${documentedType(got)}`);
  }

  check(expr: Expr): ValueType {
    switch (expr.type) {
      case 'NumberLiteral':
        return 'scalar';
      case 'StringLiteral':
        return 'string';
      case 'VectorSelector':
        this.checkSelector(expr);
        return 'vector';
      case 'MatrixSelector':
        this.checkSelector(expr.selector);
        return 'matrix';
      case 'SubqueryExpr': {
        const type = this.check(expr.expr);
        if (type !== 'vector') this.fail(expr.pos, `subquery is only allowed on instant vector, got ${type} instead`);
        return 'matrix';
      }
      case 'ParenExpr':
        return this.check(expr.expr);
      case 'UnaryExpr': {
        const type = this.check(expr.expr);
        if (type !== 'scalar' && type !== 'vector') {
          this.fail(expr.pos, `unary expression only allowed on expressions of type scalar or instant vector, got "${documentedType(type)}"`);
        }
        return type;
      }
      case 'AggregateExpr': {
        this.expect(expr.expr, 'vector', 'aggregation expression');
        const paramType = AGGREGATE_PARAM_TYPES[expr.op];
        if (paramType !== undefined && expr.param !== undefined) this.expect(expr.param, paramType, 'aggregation parameter');
        return 'vector';
      }
      case 'Call':
        return this.checkCall(expr.func, expr.args, expr.pos);
      case 'BinaryExpr':
        return this.checkBinary(expr);
    }
  }

  private checkCall(func: string, args: Expr[], pos: PosRange): ValueType {
    const signature = lookupFunction(func);
    if (signature === undefined) this.fail({ start: pos.start, end: pos.start + func.length }, `unknown function with name "${func}"`);
    const { min, max } = argumentCountRange(signature);
    const count = args.length;
    if (min === max && count !== min) this.fail(pos, `expected ${min} argument(s) in call to "${func}", got ${count}`);
    if (count < min) this.fail(pos, `expected at least ${min} argument(s) in call to "${func}", got ${count}`);
    if (count > max) this.fail(pos, `expected at most ${max} argument(s) in call to "${func}", got ${count}`);
    args.forEach((arg, index) => {
      const want = signature.argTypes[Math.min(index, signature.argTypes.length - 1)]!;
      const got = this.check(arg);
      if (got !== want) this.fail(arg.pos, `expected type ${documentedType(want)} in call to function "${func}", got ${documentedType(got)}`);
    });
    return signature.returnType;
  }

  private checkBinary(expr: BinaryExpr): ValueType {
    const lhsType = this.check(expr.lhs);
    const rhsType = this.check(expr.rhs);
    const operator = this.operatorRange(expr);
    const comparison = COMPARISON_OPS.has(expr.op);
    const setOperator = SET_OPS.has(expr.op);
    if (expr.returnBool && !comparison) this.fail(operator, 'bool modifier can only be used on comparison operators');
    if (comparison && !expr.returnBool && lhsType === 'scalar' && rhsType === 'scalar') {
      this.fail(operator, 'comparisons between scalars must use BOOL modifier');
    }
    const written = expr.matching;
    // Fresh arrays: the evaluator owns the tree it gets and may keep or change them.
    const matching: VectorMatching = written ?? { card: 'one-to-one', on: false, labels: [], include: [] };
    if (setOperator && matching.card === 'one-to-one') matching.card = 'many-to-many';
    const grouped = matching.card === 'many-to-one' || matching.card === 'one-to-many';
    if (matching.on) {
      const both = matching.labels.find((label) => matching.include.includes(label));
      if (both !== undefined) this.fail(operator, `label "${both}" must not occur in ON and GROUP clause at once`);
    }
    for (const [side, type] of [[expr.lhs, lhsType], [expr.rhs, rhsType]] as const) {
      if (type !== 'scalar' && type !== 'vector') this.fail(side.pos, 'binary expression must contain only scalar and instant vector types');
    }
    if (lhsType !== 'vector' || rhsType !== 'vector') {
      // Prometheus refuses on/ignoring labels here; group_left/right without two vectors is refused as well.
      if (written !== undefined && (written.labels.length > 0 || grouped)) this.fail(expr.pos, 'vector matching only allowed between instant vectors');
      delete expr.matching;
    } else {
      if (setOperator && grouped) this.fail(expr.pos, `no grouping allowed for "${expr.op}" operation`);
      expr.matching = matching;
    }
    if (setOperator && (lhsType === 'scalar' || rhsType === 'scalar')) {
      this.fail(expr.pos, `set operator "${expr.op}" not allowed in binary scalar expression`);
    }
    return lhsType === 'scalar' && rhsType === 'scalar' ? 'scalar' : 'vector';
  }

  /** The operator and its modifiers: the text between the operands, trimmed, as Prometheus reports it. */
  private operatorRange(expr: BinaryExpr): PosRange {
    let start = expr.lhs.pos.end;
    let end = expr.rhs.pos.start;
    while (start < end && /\s/.test(this.text[start]!)) start++;
    while (end > start && /\s/.test(this.text[end - 1]!)) end--;
    return { start, end };
  }

  private checkSelector(selector: VectorSelector): void {
    const { name, matchers, pos } = selector;
    if (name !== undefined) {
      const again = matchers.slice(1).find((matcher) => matcher.name === METRIC_NAME_LABEL);
      if (again !== undefined) this.fail(pos, `metric name must not be set twice: "${name}" or "${again.value}"`);
    }
    const matchesEmpty = matchers.map((matcher) => this.matchesEmpty(matcher, pos));
    // Without a non-empty matcher a selector would select every series, most likely by a typo.
    if (name === undefined && matchesEmpty.every(Boolean)) this.fail(pos, 'vector selector must contain at least one non-empty matcher');
  }

  private matchesEmpty(matcher: LabelMatcher, pos: PosRange): boolean {
    try {
      return compileMatchers([matcher])({});
    } catch (error) {
      return this.fail(pos, `error parsing regexp: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
