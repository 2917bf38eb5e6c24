/**
 * Influx line protocol: escape round-trips, field types, precisions, line-numbered errors.
 */
import t from 'tap';
import fc from 'fast-check';
import { formatLine, parseLine, parseLineProtocol, type ParsedLine } from '../core/ingestion/line-protocol.js';

const text = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\n') && !s.endsWith('\\'));
const fieldValue = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.string({ maxLength: 10 }).filter((s) => !s.includes('\n')),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v) => ({ integer: v.toString() })),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => ({ unsigned: v.toString() })),
);
const line = fc.record({
  measurement: text,
  tags: fc.dictionary(text, text, { maxKeys: 3 }),
  fields: fc.dictionary(text, fieldValue, { minKeys: 1, maxKeys: 3 }),
  timestamp: fc.option(fc.bigInt({ min: 0n, max: 2n ** 62n }).map(String), { nil: undefined }),
}) as fc.Arbitrary<ParsedLine>;

t.test('property: format then parse gives the same line back (escapes included)', async (t) => {
  fc.assert(
    fc.property(line, (l) => {
      const back = parseLine(formatLine(l));
      const normalise = (x: ParsedLine) => ({ ...x, fields: Object.fromEntries(Object.entries(x.fields).map(([k, v]) => [k, typeof v === 'number' ? Number(String(v)) : v])) });
      return JSON.stringify(normalise(back)) === JSON.stringify(normalise(l));
    }),
    { numRuns: 2_000 },
  );
  t.pass();
});

t.test('fields become <measurement>_<field> samples with the tags as labels', async (t) => {
  const result = parseLineProtocol('weather,city=San\\ Jose,zone=a\\,b temp=21.5,hum=40i,ok=true,unit="C",big=18446744073709551615u 1700000000000000000\n', 'ns', 0, 100);
  t.same(result, {
    ok: true,
    stringFieldsSkipped: 1,
    samples: [
      [{ __name__: 'weather_temp', city: 'San Jose', zone: 'a,b' }, 1_700_000_000_000, 21.5],
      [{ __name__: 'weather_hum', city: 'San Jose', zone: 'a,b' }, 1_700_000_000_000, 40],
      [{ __name__: 'weather_ok', city: 'San Jose', zone: 'a,b' }, 1_700_000_000_000, 1],
      [{ __name__: 'weather_big', city: 'San Jose', zone: 'a,b' }, 1_700_000_000_000, 18446744073709551615],
    ],
  });
});

t.test('a lone value field: cpu_value by default, cpu with influxSingleValueFieldAsMeasurement', async (t) => {
  const line = 'cpu,host=a value=1 1000\nmem,host=a value=2,free=3 1000\n';
  const names = (result: ReturnType<typeof parseLineProtocol>): string[] => (result.ok ? result.samples.map((s) => s[0].__name__!) : []);
  t.same(names(parseLineProtocol(line, 'ms', 0, 100)), ['cpu_value', 'mem_value', 'mem_free']);
  t.same(names(parseLineProtocol(line, 'ms', 0, 100, true)), ['cpu', 'mem_value', 'mem_free'], 'only a line whose one field is value');
});

t.test('precisions convert to milliseconds; no timestamp means now', async (t) => {
  const ts = (precision: 'ns' | 'us' | 'ms' | 's', value: string) => {
    const r = parseLineProtocol(`m v=1 ${value}`, precision, 0, 10);
    return r.ok ? r.samples[0]![1] : null;
  };
  t.equal(ts('s', '1700000000'), 1_700_000_000_000);
  t.equal(ts('ms', '1700000000123'), 1_700_000_000_123);
  t.equal(ts('us', '1700000000123456'), 1_700_000_000_123);
  t.equal(ts('ns', '1700000000123456789'), 1_700_000_000_123);
  const now = parseLineProtocol('m v=1', 'ns', 42, 10);
  t.equal(now.ok && now.samples[0]![1], 42);
  t.same(parseLineProtocol('# comment\n\n  \nm v=1 5\r\n', 'ms', 0, 10), { ok: true, samples: [[{ __name__: 'm_v' }, 5, 1]], stringFieldsSkipped: 0 });
});

t.test('errors name the line', async (t) => {
  t.match(parseLineProtocol('m v=1\nm v=\nm v=2', 'ns', 0, 10), { ok: false, line: 2, error: /^line 2: field v: invalid value/ });
  t.match(parseLineProtocol('m', 'ns', 0, 10), { ok: false, line: 1, error: /missing fields/ });
  t.match(parseLineProtocol('m,t v=1', 'ns', 0, 10), { ok: false, error: /tag "t" has no value/ });
  t.match(parseLineProtocol('m v="x', 'ns', 0, 10), { ok: false, error: /unterminated string/ });
  t.match(parseLineProtocol('m v=1 abc', 'ns', 0, 10), { ok: false, error: /invalid timestamp/ });
  t.match(parseLineProtocol('m v=1 -5', 'ns', 0, 10), { ok: false, error: /must not be negative/ });
  t.match(parseLineProtocol('m,__name__=x v=1', 'ns', 0, 10), { ok: false, error: /reserved/ });
  t.match(parseLineProtocol('m a=1,b=2,c=3', 'ns', 0, 2), { ok: false, error: /more than 2 samples/ });
});
