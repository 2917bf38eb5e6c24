/**
 * PromQL regular expressions are Go's RE2, fully anchored. JavaScript's engine agrees with RE2
 * on the syntax people write in matchers; this adapts the parts that differ in spelling:
 * leading flag groups (`(?i)`, `(?s)`, `(?is)` — JavaScript has no inline flags) become flags,
 * and named groups `(?P<name>…)` become `(?<name>…)`. Anything else JavaScript refuses is an
 * error the caller reports (a parse error in a selector, an execution error in label_replace).
 */
const LEADING_FLAGS = /^\(\?([imsU]+)\)/;

const cache = new Map<string, RegExp>();
const CACHE_ENTRIES_MAX = 1_000;

/** The anchored RegExp of an RE2 pattern (cached); throws SyntaxError when it cannot be compiled. */
export function compileRegex(pattern: string): RegExp {
  const cached = cache.get(pattern);
  if (cached !== undefined) return cached;
  let body = pattern;
  let flags = '';
  const leading = LEADING_FLAGS.exec(body);
  if (leading !== null) {
    if (leading[1]!.includes('U')) throw new SyntaxError('the ungreedy flag (?U) is not supported');
    for (const flag of new Set(leading[1]!)) flags += flag;
    body = body.slice(leading[0].length);
  }
  body = body.replace(/\(\?P</g, '(?<');
  const regex = new RegExp(`^(?:${body})$`, flags);
  if (cache.size >= CACHE_ENTRIES_MAX) cache.clear();
  cache.set(pattern, regex);
  return regex;
}
