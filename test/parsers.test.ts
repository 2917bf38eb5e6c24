/**
 * The JSON parsers of Craft #1: the single-pass parser against JSON.parse on generated
 * valid and invalid texts (differential), and the seed-style substring parser against
 * JSON.parse on seed batches (same validated samples).
 */
import t from 'tap';
import fc from 'fast-check';
import { parseJsonSinglePass } from '../plugins/ingestion/shared/parsers/single-pass.js';
import { parseSeedSubstring } from '../plugins/ingestion/shared/parsers/seed-substring.js';
import { parseSeedBody } from '../core/ingestion/seed-json.js';

type Outcome = { ok: true; value: unknown } | { ok: false };
const run = (parse: (text: string) => unknown, text: string): Outcome => {
  try {
    return { ok: true, value: parse(text) };
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    return { ok: false };
  }
};

/** Deep equality that tells -0 from 0 and sees own __proto__ keys, as JSON.parse makes them. */
const same = (a: unknown, b: unknown): boolean => {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a as object);
    const kb = Object.keys(b as object);
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
};

const agree = (text: string): boolean => {
  const expected = run(JSON.parse, text);
  const actual = run(parseJsonSinglePass, text);
  return expected.ok === actual.ok && (!expected.ok || same(expected.value, (actual as { value: unknown }).value));
};

t.test('single-pass parser agrees with JSON.parse on valid JSON', async (t) => {
  fc.assert(fc.property(fc.json({ depthSize: 'medium' }), agree), { numRuns: 3_000 });
  fc.assert(fc.property(fc.jsonValue().map((v) => JSON.stringify(v, null, 2)), agree), { numRuns: 1_000 });
  fc.assert(fc.property(fc.string({ unit: 'binary' }).map((s) => JSON.stringify(s)), agree), { numRuns: 1_000 });
  t.pass();
});

t.test('single-pass parser agrees with JSON.parse on invalid and mutated JSON', async (t) => {
  const mutated = fc.tuple(fc.json(), fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom(...'{}[]",:\\ 0-+.eEtfn\u0000\u001fx'.split(''))).map(([text, at, op, c]) => {
    const i = text.length === 0 ? 0 : at % text.length;
    if (op === 'delete') return text.slice(0, i) + text.slice(i + 1);
    if (op === 'insert') return text.slice(0, i) + c + text.slice(i);
    return text.slice(0, i) + c + text.slice(i + 1);
  });
  fc.assert(fc.property(mutated, agree), { numRuns: 5_000 });
  fc.assert(fc.property(fc.string(), agree), { numRuns: 2_000 });
  for (const text of ['', ' ', '01', '1.', '.5', '-', '"\\x"', '"\\u12"', '[1,]', '{"a":1,}', 'nul', 'true false', '{"__proto__":{"x":1}}', '-0', '1e999', '"\ud800"']) {
    t.ok(agree(text), `agrees on ${JSON.stringify(text)}`);
  }
});

t.test('single-pass parser refuses nesting beyond its limit instead of overflowing the stack', async (t) => {
  t.throws(() => parseJsonSinglePass('['.repeat(10_000) + ']'.repeat(10_000)), { name: 'JsonSyntaxError' });
  t.same(parseJsonSinglePass('['.repeat(500) + ']'.repeat(500)), JSON.parse('['.repeat(500) + ']'.repeat(500)));
});

const metric = fc.record(
  {
    name: fc.stringMatching(/^[a-z_][a-z0-9_]{0,20}$/),
    value: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    type: fc.constantFrom('counter', 'gauge', 'histogram', 'summary', 'other'),
    tags: fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,8}$/), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
    timestamp: fc.nat(),
  },
  { requiredKeys: ['name', 'value'] },
);

t.test('seed substring parser yields the same samples as JSON.parse on seed batches', async (t) => {
  const limits = { batchMetricsMax: 1_000, metricNameLengthMax: 255 };
  fc.assert(
    fc.property(fc.array(metric, { minLength: 1, maxLength: 30 }), fc.boolean(), (metrics, pretty) => {
      const text = JSON.stringify({ metrics }, null, pretty ? 2 : undefined);
      const viaNative = parseSeedBody(JSON.parse(text), limits, 7);
      const viaSeed = parseSeedBody(parseSeedSubstring(text), limits, 7);
      return JSON.stringify(viaNative) === JSON.stringify(viaSeed);
    }),
    { numRuns: 1_000 },
  );
  t.same(parseSeedBody(parseSeedSubstring('{"name":"cpu","value":85}'), limits, 1), { ok: true, form: 'single', samples: [[{ __name__: 'cpu' }, 1, 85, 1]], types: {} }, 'a sample without a timestamp is marked server-stamped');
  t.throws(() => parseSeedSubstring('not json'), { name: 'SeedParseError' });
});
