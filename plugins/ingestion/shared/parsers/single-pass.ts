/**
 * Craft #1 phase 3: a single-pass JSON parser. One cursor walks the text once, left to
 * right, building values as it goes: O(n) in the length of the body. It accepts exactly
 * what JSON.parse accepts (RFC 8259) and returns the same values — a fast-check
 * differential test holds it to that — except that nesting deeper than 512 levels is
 * refused instead of exhausting the stack.
 */
const DEPTH_MAX = 512;

export class JsonSyntaxError extends SyntaxError {
  override readonly name = 'JsonSyntaxError';
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export function parseJsonSinglePass(text: string): unknown {
  let at = 0;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at position ${at}`);
  };
  const skipSpace = (): void => {
    for (;;) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) at++;
      else return;
    }
  };
  const readString = (): string => {
    // at points just after the opening quote
    let out = '';
    let runStart = at;
    for (;;) {
      if (at >= text.length) fail('unterminated string');
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        out += text.slice(runStart, at);
        at++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        out += text.slice(runStart, at);
        const e = text[at + 1];
        if (e === 'u') {
          const hex = text.slice(at + 2, at + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad unicode escape');
          out += String.fromCharCode(parseInt(hex, 16));
          at += 6;
        } else {
          const mapped = e === undefined ? undefined : ESCAPES[e];
          if (mapped === undefined) fail('bad escape');
          out += mapped;
          at += 2;
        }
        runStart = at;
        continue;
      }
      at++;
    }
  };
  const readNumber = (): number => {
    const start = at;
    if (text[at] === '-') at++;
    if (text[at] === '0') at++;
    else if (text[at] !== undefined && text[at]! >= '1' && text[at]! <= '9') while (text[at] !== undefined && text[at]! >= '0' && text[at]! <= '9') at++;
    else fail('bad number');
    if (text[at] === '.') {
      at++;
      if (!(text[at] !== undefined && text[at]! >= '0' && text[at]! <= '9')) fail('bad fraction');
      while (text[at] !== undefined && text[at]! >= '0' && text[at]! <= '9') at++;
    }
    if (text[at] === 'e' || text[at] === 'E') {
      at++;
      if (text[at] === '+' || text[at] === '-') at++;
      if (!(text[at] !== undefined && text[at]! >= '0' && text[at]! <= '9')) fail('bad exponent');
      while (text[at] !== undefined && text[at]! >= '0' && text[at]! <= '9') at++;
    }
    return Number(text.slice(start, at));
  };
  const literal = (word: string, value: unknown): unknown => {
    if (text.startsWith(word, at)) {
      at += word.length;
      return value;
    }
    return fail('unexpected token');
  };
  const readValue = (depth: number): unknown => {
    if (depth > DEPTH_MAX) fail(`nesting deeper than ${DEPTH_MAX}`);
    skipSpace();
    const c = text[at];
    switch (c) {
      case '{': {
        at++;
        const object: Record<string, unknown> = {};
        skipSpace();
        if (text[at] === '}') {
          at++;
          return object;
        }
        for (;;) {
          skipSpace();
          if (text[at] !== '"') fail('expected a key');
          at++;
          const key = readString();
          skipSpace();
          if (text[at] !== ':') fail('expected ":"');
          at++;
          const value = readValue(depth + 1);
          if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
          else object[key] = value;
          skipSpace();
          if (text[at] === ',') {
            at++;
            continue;
          }
          if (text[at] === '}') {
            at++;
            return object;
          }
          fail('expected "," or "}"');
        }
      }
      // eslint-disable-next-line no-fallthrough
      case '[': {
        at++;
        const array: unknown[] = [];
        skipSpace();
        if (text[at] === ']') {
          at++;
          return array;
        }
        for (;;) {
          array.push(readValue(depth + 1));
          skipSpace();
          if (text[at] === ',') {
            at++;
            continue;
          }
          if (text[at] === ']') {
            at++;
            return array;
          }
          fail('expected "," or "]"');
        }
      }
      // eslint-disable-next-line no-fallthrough
      case '"':
        at++;
        return readString();
      case 't':
        return literal('true', true);
      case 'f':
        return literal('false', false);
      case 'n':
        return literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return readNumber();
        return fail(c === undefined ? 'unexpected end' : 'unexpected token');
    }
  };
  const value = readValue(0);
  skipSpace();
  if (at !== text.length) fail('unexpected text after the value');
  return value;
}
