/**
 * A series selector, the one expression Craft #0's full-scan query understands:
 *
 *   selector = name [ "{" [ matcher { "," matcher } [","] ] "}" ] | "{" matcher { "," matcher } "}"
 *   matcher  = label ( "=" | "!=" | "=~" | "!~" ) string
 *   string   = '"' chars '"' | "'" chars "'"      (backslash escapes \" \' \\ \n \t)
 *
 * Craft #4 replaces this with a PromQL grammar; this is deliberately only the selector.
 */
import { CraftError } from '../errors.js';
import { compileMatchers, METRIC_NAME_LABEL, type LabelMatcher, type MatchOp } from '../model.js';

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL = /[a-zA-Z_][a-zA-Z0-9_]*/y;

/**
 * `matchersOnly`: Alertmanager's matchers (routes, inhibition) — any matchers, `{}` included,
 * with no rule that one must not match the empty string (that rule is for selecting series).
 */
export function parseSelector(expr: string, options: { matchersOnly?: boolean } = {}): LabelMatcher[] {
  let at = 0;
  const fail = (what: string): never => {
    throw new CraftError('CRAFT_BAD_REQUEST', `bad selector at character ${at + 1}: ${what} in ${JSON.stringify(expr)}`);
  };
  const skip = (): void => {
    while (at < expr.length && /\s/.test(expr[at]!)) at++;
  };
  const word = (re: RegExp): string | undefined => {
    re.lastIndex = at;
    const match = re.exec(expr);
    if (match === null) return undefined;
    at += match[0].length;
    return match[0];
  };
  const matchers: LabelMatcher[] = [];
  skip();
  const name = word(NAME);
  if (name !== undefined) matchers.push({ name: METRIC_NAME_LABEL, op: '=', value: name });
  skip();
  if (expr[at] === '{') {
    at++;
    skip();
    while (expr[at] !== '}') {
      const label = word(LABEL) ?? fail('expected a label name');
      skip();
      const op = (['=~', '!~', '!=', '='] as const).find((candidate) => expr.startsWith(candidate, at)) ?? fail('expected =, !=, =~ or !~');
      at += op.length;
      skip();
      const quote = expr[at];
      if (quote !== '"' && quote !== "'") fail('expected a quoted string');
      at++;
      let value = '';
      while (at < expr.length && expr[at] !== quote) {
        if (expr[at] === '\\') {
          at++;
          const escaped = expr[at];
          value += escaped === 'n' ? '\n' : escaped === 't' ? '\t' : (escaped ?? '');
        } else value += expr[at];
        at++;
      }
      if (at >= expr.length) fail('unterminated string');
      at++;
      if (op === '=~' || op === '!~') {
        try {
          new RegExp(value);
        } catch {
          fail(`invalid regular expression ${JSON.stringify(value)}`);
        }
      }
      matchers.push({ name: label, op: op as MatchOp, value });
      skip();
      if (expr[at] === ',') {
        at++;
        skip();
      } else if (expr[at] !== '}') fail('expected "," or "}"');
    }
    at++;
    skip();
  }
  if (at < expr.length) fail('unexpected text');
  if (options.matchersOnly === true) return matchers;
  if (matchers.length === 0) fail('empty selector');
  // Like PromQL: a selector must have at least one matcher that does not match the empty string.
  if (matchers.every((m) => compileMatchers([m])({}))) fail('at least one matcher must not match the empty string');
  return matchers;
}
