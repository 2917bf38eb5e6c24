/**
 * The shared ingestion protocol: the seed's validation messages, word for word; routes;
 * and the rate limiter's guarantee.
 */
import t from 'tap';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { prepare, type Prepared } from '../core/ingestion/protocol.js';
import { SlidingWindowLimiter, unlimited } from '../core/ingestion/rate-limit.js';
import { decodeQueueMessage } from '../core/queue/message.js';

const batchOf = (p: Prepared) => {
  if (p.kind !== 'append') throw new Error(`expected an append, got ${p.kind}`);
  const batches = p.parts.flatMap((part) => decodeQueueMessage(new TextDecoder().decode(part)));
  return { ...batches[0]!, samples: batches.flatMap((b) => b.samples) };
};

const encoder = new TextEncoder();
const limits = { batchMetricsMax: 1_000, metricNameLengthMax: 255, labelsPerSeriesMax: 30, labelNameLengthMax: 1_024, labelValueLengthMax: 2_048, bodyBytesMax: 1 << 20, samplesPerRequestMax: 50_000 };
const post = (body: string, url = '/metrics', authorization?: string): Prepared =>
  prepare({ method: 'POST', url, authorization, body: encoder.encode(body) }, { limits, limiter: unlimited, parseJson: JSON.parse, nowMs: 1_000 });
const replyOf = (p: Prepared): { status: number; body: unknown } => {
  if (p.kind !== 'reply') throw new Error(`expected a reply, got ${p.kind}`);
  return { status: p.reply.status, body: JSON.parse(p.reply.body) };
};

t.test('seed validation messages', async (t) => {
  t.same(replyOf(post('{"metrics":[]}')), { status: 400, body: { error: 'Batch cannot be empty' } });
  const many = JSON.stringify({ metrics: Array.from({ length: 1_001 }, () => ({ name: 'a', value: 1 })) });
  t.same(replyOf(post(many)), { status: 400, body: { error: 'Batch size exceeds maximum (1000 metrics)' } });
  t.same(replyOf(post(JSON.stringify({ metrics: [{ name: 'x'.repeat(256), value: 1 }] }))), {
    status: 400,
    body: { error: 'Invalid metric: Metric name too long (max 255 characters)', metric_index: 0 },
  });
  t.same(replyOf(post('{"metrics":[{"name":"a","value":1},{"name":"b","value":"NaN"}]}')), {
    status: 400,
    body: { error: 'Invalid metric: Metric value must be a finite number', metric_index: 1 },
  });
  t.same(replyOf(post('{"metrics":[{"name":"a","value":1e400}]}')).body, { error: 'Invalid metric: Metric value must be a finite number', metric_index: 0 });
  t.same(replyOf(post('not json')), { status: 400, body: { error: 'invalid JSON format' } });
  t.same(replyOf(post('{"name":"cpu"}')), { status: 400, body: { error: 'invalid JSON format' } });
  t.equal(replyOf(post('{"metrics":[{"name":"a","value":1,"tags":{"h":1}}]}')).status, 400);
  t.equal(replyOf(post('{"metrics":[{"name":"a","value":1,"tags":{"__name__":"b"}}]}')).status, 400);
  t.equal(replyOf(post('{"metrics":[{"name":"a","value":1,"timestamp":-5}]}')).status, 400);
});

t.test('accepted forms: batch (200) and the Craft #0 single metric (202)', async (t) => {
  const batch = post('{"metrics":[{"name":"cpu_usage","value":75.5,"type":"counter","tags":{"host":"server1"}},{"name":"m","value":2,"type":"weird","timestamp":5}]}', '/metrics', 'tenant-a');
  t.equal(batch.kind, 'append');
  if (batch.kind === 'append') {
    t.same(JSON.parse(batch.okReply.body), { success: true, metrics_processed: 2 });
    t.equal(batch.okReply.status, 200);
    t.equal(batch.client, 'tenant-a');
    t.same(batchOf(batch).samples, [
      [{ __name__: 'cpu_usage', host: 'server1' }, 1_000, 75.5, 1],
      [{ __name__: 'm' }, 5, 2],
    ]);
    t.same(batchOf(batch).types, { cpu_usage: 'counter' }, 'unknown types become gauge, which is not recorded');
  }
  const single = post('{"name":"cpu_usage","value":85}');
  t.equal(single.kind, 'append');
  if (single.kind === 'append') {
    t.equal(single.okReply.status, 202);
    t.same(JSON.parse(single.okReply.body), { status: 'accepted' });
    t.equal(single.client, 'default');
  }
});

t.test('routes', async (t) => {
  const get = (url: string) => prepare({ method: 'GET', url, authorization: undefined, body: new Uint8Array() }, { limits, limiter: unlimited, parseJson: JSON.parse, nowMs: 0 });
  t.equal(get('/health').kind, 'health');
  t.equal(prepare({ method: 'HEAD', url: '/health', authorization: undefined, body: new Uint8Array() }, { limits, limiter: unlimited, parseJson: JSON.parse, nowMs: 0 }).kind, 'health', 'HEAD reads what GET reads');
  t.equal(get('/stats').kind, 'stats');
  t.equal(get('/metrics').kind, 'exposition');
  t.match(get('/query?name=cpu&start=5&end=10'), { kind: 'query', name: 'cpu', startMs: 5, endMs: 10 });
  t.same(replyOf(get('/nope')), { status: 404, body: { error: 'route not found' } });
  t.equal(replyOf(get('/query')).status, 400);
  const big = prepare({ method: 'POST', url: '/metrics', authorization: undefined, body: new Uint8Array(11) }, { limits: { ...limits, bodyBytesMax: 10 }, limiter: unlimited, parseJson: JSON.parse, nowMs: 0 });
  t.equal(replyOf(big).status, 413);
});

t.test('rate limit answers 429 with Retry-After per client id', async (t) => {
  const limiter = new SlidingWindowLimiter(2);
  const at = (nowMs: number, authorization?: string) =>
    prepare({ method: 'POST', url: '/metrics', authorization, body: encoder.encode('{"name":"a","value":1}') }, { limits, limiter, parseJson: JSON.parse, nowMs });
  t.equal(at(0).kind, 'append');
  t.equal(at(1).kind, 'append');
  const third = at(2);
  t.same(replyOf(third), { status: 429, body: { error: 'Rate limit exceeded' } });
  if (third.kind === 'reply') t.equal(third.reply.retryAfterS, 1);
  t.equal(at(3, 'other-client').kind, 'append', 'another client has its own window');
  t.equal(at(1_200).kind, 'append', 'the window slid on');
});

t.test('property: the limiter never admits more than its limit in any window', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 400 }), (limit, gaps) => {
      const limiter = new SlidingWindowLimiter(limit, 1_000, 100);
      let now = 0;
      const admitted: number[] = [];
      for (const gap of gaps) {
        now += gap;
        if (limiter.admit('c', now)) admitted.push(now);
      }
      // Every window (t - 1000, t] around an admitted request holds at most `limit`.
      for (let i = 0; i < admitted.length; i++) {
        let inWindow = 0;
        for (let j = 0; j <= i; j++) if (admitted[j]! > admitted[i]! - 1_000) inWindow++;
        if (inWindow > limit) return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('property: a body forwarded as received (seed form) decodes to the same batch as the re-encoded samples', async (t) => {
  const withForward = (body: Uint8Array, forwardSeedBody: boolean, authorization?: string): Prepared =>
    prepare({ method: 'POST', url: '/metrics', authorization, body }, { limits, limiter: unlimited, parseJson: JSON.parse, nowMs: 7_000, forwardSeedBody });
  const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
  const label = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/).filter((k) => !k.startsWith('__'));
  const metric = fc.record(
    {
      name: fc.string({ minLength: 1, maxLength: 20 }),
      value: fc.double({ noNaN: true, noDefaultInfinity: true }),
      type: fc.constantFrom('gauge', 'counter', 'histogram', 'summary', 'other'),
      tags: fc.dictionary(label, fc.string({ maxLength: 10 }), { maxKeys: 4 }),
      timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
    },
    { requiredKeys: ['name', 'value'] },
  );
  const body = fc.oneof(
    fc.array(metric, { minLength: 1, maxLength: 30 }).map((metrics) => JSON.stringify({ metrics })),
    metric.map((m) => JSON.stringify({ name: m.name, value: m.value })),
  );
  fc.assert(
    fc.property(body, fc.option(fc.string({ maxLength: 12 }), { nil: undefined }), fc.constantFrom('', ' ', '\n\t '), (text, client, space) => {
      const bytes = encoder.encode(space + text + space);
      const forwarded = withForward(bytes, true, client);
      const encoded = withForward(bytes, false, client);
      if (forwarded.kind !== 'append' || encoded.kind !== 'append') return false;
      // The forwarded part is the seed form: the body, byte for byte, inside the message.
      if (!Buffer.from(forwarded.parts[0]!).includes(Buffer.from(bytes))) return false;
      // (as plain data: the decoded `types` of the seed form is a null-prototype record)
      return isDeepStrictEqual(plain(batchOf(forwarded)), plain(batchOf(encoded))) && forwarded.metrics === encoded.metrics && forwarded.okReply === encoded.okReply;
    }),
    { numRuns: 300 },
  );
  t.pass('300 generated bodies: same batches either way');

  // Bodies that cannot travel as received fall back to the samples form and still decode the same.
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('{"name":"a","value":1}')]);
  const invalidUtf8 = new Uint8Array([...encoder.encode('{"name":"a'), 0xff, ...encoder.encode('","value":1}')]);
  for (const [what, bytes] of [['a byte-order mark', bom], ['bytes that are not UTF-8', invalidUtf8]] as const) {
    const p = withForward(bytes, true);
    t.equal(p.kind, 'append', what);
    if (p.kind === 'append') {
      t.notOk(Buffer.from(p.parts[0]!).includes(Buffer.from(bytes)), `${what}: re-encoded`);
      t.same(batchOf(p), batchOf(withForward(bytes, false)), `${what}: same batch`);
    }
  }
});
