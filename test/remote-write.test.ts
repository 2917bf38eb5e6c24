/**
 * Prometheus remote write: generated WriteRequests decode to the same samples; malformed
 * bodies and invalid series are refused with a reason.
 */
import t from 'tap';
import fc from 'fast-check';
import snappy from 'snappy';
import { encodeRemoteWrite, parseRemoteWrite, writeRequestType } from '../core/ingestion/remote-write.js';

const labels = fc.dictionary(fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,10}$/).filter((k) => !k.startsWith('__')), fc.string({ maxLength: 10 }), { maxKeys: 4 });
const series = fc.record({
  labels: labels.chain((l) => fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,15}$/).map((name) => ({ ...l, __name__: name }))),
  samples: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 52 }), fc.oneof(fc.double(), fc.constant(NaN))), { maxLength: 5 }),
});

t.test('property: decoding a generated WriteRequest gives back every sample', async (t) => {
  fc.assert(
    fc.property(fc.array(series, { maxLength: 6 }), (input) => {
      const result = parseRemoteWrite(encodeRemoteWrite(input), 1_000_000);
      if (!result.ok) return false;
      const expected = input.flatMap((s) => s.samples.map(([ts, v]) => [s.labels, ts, v] as const));
      return (
        result.samples.length === expected.length &&
        result.samples.every(([l, ts, v], i) => JSON.stringify(l, Object.keys(l).sort()) === JSON.stringify(expected[i]![0], Object.keys(expected[i]![0]).sort()) && ts === expected[i]![1] && Object.is(v, expected[i]![2]))
      );
    }),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('malformed bodies and invalid series are refused with a reason', async (t) => {
  t.match(parseRemoteWrite(new Uint8Array([1, 2, 3, 4]), 10), { ok: false, error: /snappy/ });
  t.match(parseRemoteWrite(snappy.compressSync(Buffer.from([0xff, 0xff, 0xff])), 10), { ok: false, error: /protobuf/ });
  t.match(parseRemoteWrite(encodeRemoteWrite([{ labels: { job: 'x' }, samples: [[1, 1]] }]), 10), { ok: false, error: /missing metric name/ });
  t.match(parseRemoteWrite(encodeRemoteWrite([{ labels: { __name__: 'm', 'bad-label': 'x' }, samples: [[1, 1]] }]), 10), { ok: false, error: /invalid label name/ });
  t.match(parseRemoteWrite(encodeRemoteWrite([{ labels: { __name__: 'm' }, samples: [[1, 1], [2, 2], [3, 3]] }]), 2), { ok: false, error: /more than 2 samples/ });
  const WriteRequestType = writeRequestType();
  const metadata = WriteRequestType.encode(WriteRequestType.fromObject({ metadata: [{ type: 1, metric_family_name: 'http_requests_total' }] })).finish();
  t.same(parseRemoteWrite(snappy.compressSync(Buffer.from(metadata)), 10), { ok: true, samples: [], types: { http_requests_total: 'counter' } });
});
