/**
 * Craft #1 phases 1–2: a parser in the style of the seed's, for the batch format only.
 * To read metric i it searches for that metric from the start of the body again, and it
 * finds each field with a substring search — so a body of n metrics costs O(n²) character
 * comparisons. That is the bottleneck phase 3 removes: a 1000-metric batch is scanned
 * about a thousand times.
 *
 * Within one metric object, values are read by a small reader that understands strings
 * (with escapes), numbers, true/false/null and one level of `tags` object.
 */
class SeedParseError extends SyntaxError {
  override readonly name = 'SeedParseError';
}

/** Index just past the end of the value that starts at `at` (strings and nesting honoured). */
function skipValue(text: string, at: number): number {
  let depth = 0;
  let i = at;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
      if (depth < 0) return i;
    } else if (depth === 0 && (c === ',' || c === ' ' || c === '\n' || c === '\r' || c === '\t')) return i;
  }
  if (inString || depth > 0) throw new SeedParseError('unterminated value');
  return i;
}

function readScalar(text: string): unknown {
  const t = text.trim();
  if (t.startsWith('"')) {
    if (!t.endsWith('"') || t.length < 2) throw new SeedParseError('bad string');
    return JSON.parse(t) as unknown;
  }
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (t === 'null') return null;
  if (t.startsWith('{')) return readFlatObject(t);
  if (t.startsWith('[')) throw new SeedParseError('arrays are not part of a metric');
  if (!/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?$/.test(t)) throw new SeedParseError(`bad value ${t.slice(0, 20)}`);
  return Number(t);
}

/** A flat object `{"k": value, ...}` found by repeated substring search for each key. */
function readFlatObject(text: string): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  let i = text.indexOf('{') + 1;
  for (;;) {
    while (i < text.length && /\s|,/.test(text[i]!)) i++;
    if (text[i] === '}') return object;
    if (text[i] !== '"') throw new SeedParseError('expected a key');
    const keyEnd = skipValue(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const colon = text.indexOf(':', keyEnd);
    if (colon < 0) throw new SeedParseError('expected ":"');
    let valueStart = colon + 1;
    while (/\s/.test(text[valueStart] ?? '')) valueStart++;
    const valueEnd = skipValue(text, valueStart);
    object[key] = readScalar(text.slice(valueStart, valueEnd));
    i = valueEnd;
    if (i >= text.length) throw new SeedParseError('unterminated object');
  }
}

/** Finds the n-th object of the `metrics` array by scanning from the start of the body. */
function findMetric(text: string, n: number): [number, number] | undefined {
  const key = text.indexOf('"metrics"');
  const open = text.indexOf('[', key);
  let i = open + 1;
  let index = 0;
  for (;;) {
    while (i < text.length && /[\s,]/.test(text[i]!)) i++;
    if (i >= text.length) throw new SeedParseError('unterminated metrics array');
    if (text[i] === ']') return undefined;
    const end = skipValue(text, i);
    if (index === n) return [i, end];
    index++;
    i = end;
  }
}

export function parseSeedSubstring(text: string): unknown {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) throw new SeedParseError('not an object');
  if (!trimmed.includes('"metrics"')) return readFlatObject(trimmed);
  const metrics: unknown[] = [];
  for (let n = 0; ; n++) {
    // The seed's way: look for metric n from the beginning, every time.
    const span = findMetric(trimmed, n);
    if (span === undefined) break;
    const objectText = trimmed.slice(span[0], span[1]);
    if (!objectText.startsWith('{')) throw new SeedParseError('a metric must be an object');
    metrics.push(readFlatObject(objectText));
  }
  return { metrics };
}
