/**
 * Named limits on a series' shape (core/ingestion/series-limits.ts), on every write path: a
 * series exactly at a limit is accepted, one over it refuses the whole request with a 400 naming
 * the limit, the series and the sample — seed JSON, Prometheus remote write and Influx line
 * protocol alike — and the refusal is counted by reason in the exposition.
 */
import t from 'tap';
import fc from 'fast-check';
import { exposition, prepare, StatsCounter, type Prepared } from '../core/ingestion/protocol.js';
import { unlimited } from '../core/ingestion/rate-limit.js';
import { encodeRemoteWrite } from '../core/ingestion/remote-write.js';
import { checkSeriesShape } from '../core/ingestion/series-limits.js';

const encoder = new TextEncoder();
const LIMITS = { batchMetricsMax: 1_000, metricNameLengthMax: 255, labelsPerSeriesMax: 30, labelNameLengthMax: 1_024, labelValueLengthMax: 2_048, bodyBytesMax: 8 << 20, samplesPerRequestMax: 50_000 };

type Protocol = 'json' | 'remote-write' | 'line';

/** A write of one series (metric `name`, these labels) in a protocol, through `prepare`. */
function write(protocol: Protocol, name: string, labels: Record<string, string>, limits = LIMITS): Prepared {
  const deps = { limits, limiter: unlimited, parseJson: JSON.parse, nowMs: 1_000 };
  if (protocol === 'json') return prepare({ method: 'POST', url: '/metrics', authorization: undefined, body: encoder.encode(JSON.stringify({ metrics: [{ name: 'ok', value: 1 }, { name, value: 1, tags: labels }] })) }, deps);
  if (protocol === 'remote-write') return prepare({ method: 'POST', url: '/api/v1/write', authorization: undefined, body: encodeRemoteWrite([{ labels: { __name__: 'ok' }, samples: [[1, 1]] }, { labels: { __name__: name, ...labels }, samples: [[1, 1]] }]) }, deps);
  // Line protocol: the measurement `name` with the field `value` is the series `name_value`.
  const tags = Object.entries(labels).map(([k, v]) => `,${k}=${v}`).join('');
  return prepare({ method: 'POST', url: '/write?precision=ms', authorization: undefined, body: encoder.encode(`ok value=1 1\n${name}${tags} value=1 1\n`) }, { ...deps, limits: { ...limits, influxSingleValueFieldAsMeasurement: true } });
}

const refusal = (p: Prepared): { status: number; body: Record<string, unknown>; reason?: string } | undefined =>
  p.kind === 'reply' ? { status: p.reply.status, body: JSON.parse(p.reply.body) as Record<string, unknown>, ...(p.reason === undefined ? {} : { reason: p.reason }) } : undefined;

const labelsOf = (count: number, width = 1): Record<string, string> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`l${i}`, 'v'.repeat(width)]));
const protocol = fc.constantFrom<Protocol>('json', 'remote-write', 'line');

t.test('labels per series: the limit is accepted, one more refuses the request, naming it', async (t) => {
  fc.assert(
    fc.property(protocol, fc.integer({ min: 1, max: 40 }), (p, max) => {
      const limits = { ...LIMITS, labelsPerSeriesMax: max };
      // `__name__` counts: max − 1 labels besides it are at the limit.
      if (write(p, 'm', labelsOf(max - 1), limits).kind !== 'append') throw new Error(`${p}: ${max} labels refused at labelsPerSeriesMax=${max}`);
      const over = refusal(write(p, 'm', labelsOf(max), limits));
      if (over?.status !== 400 || over.reason !== 'labels_per_series' || over.body.limit !== 'labelsPerSeriesMax' || over.body.actual !== max + 1 || over.body.sample_index !== 1) throw new Error(`${p}: ${JSON.stringify(over)}`);
    }),
    { numRuns: 150 },
  );
  t.pass();
});

t.test('label value, label name and metric name lengths: at the limit accepted, one over refused', async (t) => {
  fc.assert(
    fc.property(protocol, fc.integer({ min: 1, max: 3_000 }), fc.constantFrom('value', 'name', 'metric'), (p, max, what) => {
      const limits = what === 'value' ? { ...LIMITS, labelValueLengthMax: max } : what === 'name' ? { ...LIMITS, labelNameLengthMax: max } : { ...LIMITS, metricNameLengthMax: Math.max(2, Math.min(max, 255)) };
      const at = what === 'metric' ? Math.max(2, Math.min(max, 255)) : max; // the other series of the request is named `ok`
      const make = (n: number): [string, Record<string, string>] =>
        what === 'value' ? ['m', { host: 'x'.repeat(n) }] : what === 'name' ? ['m', { [`l${'x'.repeat(n - 1)}`]: 'v' }] : [`m${'x'.repeat(n - 1)}`, {}];
      // Line protocol names the series `<measurement>_value` unless it is the single field `value` (on here), so the metric name is the measurement.
      const [okName, okLabels] = make(at);
      if (write(p, okName, okLabels, limits).kind !== 'append') throw new Error(`${p} ${what}: ${at} refused at ${at}`);
      const [overName, overLabels] = make(at + 1);
      const over = refusal(write(p, overName, overLabels, limits));
      if (over?.status !== 400) throw new Error(`${p} ${what}: ${at + 1} not refused: ${JSON.stringify(over)}`);
      // The seed's own message answers a long metric name in seed JSON (word for word); everywhere else the named limit.
      if (!(p === 'json' && what === 'metric') && over.body.max !== at) throw new Error(`${p} ${what}: ${JSON.stringify(over.body)}`);
    }),
    { numRuns: 150 },
  );
  t.pass();
});

t.test('a 100 KB label value is refused, not echoed back whole; counted by reason in /metrics', async (t) => {
  const over = refusal(write('json', 'cpu', { host: 'h'.repeat(100_000) }))!;
  t.equal(over.status, 400);
  t.equal(over.reason, 'label_value_length');
  t.match(over.body.error, /label host has a value of 100000 characters, over labelValueLengthMax=2048: cpu\{host="h{64}…"\} \(sample 1\); nothing of this request was stored/);
  t.ok(String(over.body.series).length <= 256);
  const stats = new StatsCounter('test');
  stats.count('validation', 'label_value_length');
  stats.count('validation', 'label_value_length');
  const text = exposition(stats.snapshot());
  t.match(text, /craft_ingestion_rejected_total\{phase="test",reason="label_value_length"\} 2/);
  t.match(text, /craft_ingestion_rejected_total\{phase="test",reason="labels_per_series"\} 0/);
  t.equal(checkSeriesShape([[{ __name__: 'a', b: 'c' }, 1, 1]], LIMITS), undefined);
});
