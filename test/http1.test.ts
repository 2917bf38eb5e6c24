/**
 * Phase 8's own HTTP/1.1 layer: the incremental parser (any split of the byte stream gives
 * the same requests, in order; every malformed or over-limit input gets its status), and the
 * raw-socket server on real sockets (pipelining, 100-continue, HTTP/1.0, timeouts, drain).
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Http1Parser, type HttpRequest, type ParseStep } from '../plugins/ingestion/shared/http1-parser.js';
import { RawHttpServer, type RawHttpOptions } from '../plugins/ingestion/shared/raw-http.js';
import { json, StatsCounter, type RawRequest, type Reply } from '../core/ingestion/protocol.js';

const LIMITS = { headerBytesMax: 4_096, bodyBytesMax: 2_048 };

interface Spec {
  method: string;
  url: string;
  minor: 0 | 1;
  authorization: string | undefined;
  connection: 'close' | 'keep-alive' | undefined;
  body: Uint8Array;
  chunks: number[] | undefined; // chunked framing: sizes that add up to body.length
  extraHeaders: [string, string][];
}

function serialize(spec: Spec): Buffer {
  let head = `${spec.method} ${spec.url} HTTP/1.${spec.minor}\r\nHost: example\r\n`;
  for (const [name, value] of spec.extraHeaders) head += `${name}:${value}\r\n`;
  if (spec.authorization !== undefined) head += `Authorization: ${spec.authorization}\r\n`;
  if (spec.connection !== undefined) head += `Connection: ${spec.connection}\r\n`;
  if (spec.chunks === undefined) {
    if (spec.body.length > 0 || spec.method === 'POST') head += `Content-Length: ${spec.body.length}\r\n`;
    return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), spec.body]);
  }
  head += 'Transfer-Encoding: chunked\r\n\r\n';
  const parts: Buffer[] = [Buffer.from(head, 'latin1')];
  let at = 0;
  for (const size of spec.chunks) {
    parts.push(Buffer.from(`${size.toString(16)};ext=1\r\n`), Buffer.from(spec.body.subarray(at, at + size)), Buffer.from('\r\n'));
    at += size;
  }
  parts.push(Buffer.from('0\r\nTrailer-Field: x\r\n\r\n'));
  return Buffer.concat(parts);
}

const keepAliveOf = (spec: Spec): boolean => (spec.minor === 1 ? spec.connection !== 'close' : spec.connection === 'keep-alive');

const headerValue = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/);
const spec: fc.Arbitrary<Spec> = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
    url: fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/),
    minor: fc.constantFrom(0 as const, 1 as const),
    authorization: fc.option(headerValue, { nil: undefined }),
    connection: fc.constantFrom('close' as const, 'keep-alive' as const, undefined),
    body: fc.uint8Array({ maxLength: 300 }),
    chunked: fc.boolean(),
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
    extraHeaders: fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z0-9-]{1,10}$/), fc.oneof(headerValue, headerValue.map((v) => ` ${v} `))), { maxLength: 3 }),
  })
  .map(({ chunked, cuts, ...rest }): Spec => {
    let chunks: number[] | undefined;
    if (chunked && rest.minor === 1 && rest.body.length > 0) {
      const points = [...new Set(cuts.map((c) => c % rest.body.length))].filter((c) => c > 0).sort((a, b) => a - b);
      chunks = [...points, rest.body.length].map((p, i, all) => p - (i === 0 ? 0 : all[i - 1]!));
    }
    return { ...rest, chunks };
  });

/** Feeds `bytes` in pieces cut at `cuts`; collects every step that is not 'more'. */
function feed(parser: Http1Parser, bytes: Buffer, cuts: number[]): ParseStep[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: ParseStep[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point > from) parser.push(bytes.subarray(from, point));
    from = Math.max(from, point);
    for (let step = parser.next(); step.kind !== 'more'; step = parser.next()) {
      out.push(step);
      if (step.kind === 'error') return out;
    }
  }
  return out;
}

t.test('property: any split of a stream of requests parses to the same requests, in order', async (t) => {
  fc.assert(
    fc.property(fc.array(spec, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), (specs, cuts) => {
      const bytes = Buffer.concat(specs.map(serialize));
      const steps = feed(new Http1Parser(LIMITS), bytes, cuts);
      if (steps.length !== specs.length) return false;
      return steps.every((step, i) => {
        if (step.kind !== 'request') return false;
        const s = specs[i]!;
        const r: HttpRequest = step.request;
        return r.method === s.method && r.url === s.url && r.minorVersion === s.minor && r.authorization === s.authorization && r.keepAlive === keepAliveOf(s) && Buffer.from(r.body).equals(Buffer.from(s.body));
      });
    }),
    { numRuns: 400 },
  );
  t.pass('400 generated streams');
});

t.test('malformed, ambiguous or over-limit input gets its status', async (t) => {
  const first = (text: string | Buffer, limits = LIMITS): ParseStep => {
    const parser = new Http1Parser(limits);
    parser.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
    return parser.next();
  };
  const cases: [string, string, number][] = [
    ['no target', 'GET HTTP/1.1\r\n\r\n', 400],
    ['garbage request line', 'hello\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', 505],
    ['not HTTP', 'GET / FTP/1.1\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400],
    ['obsolete line folding', 'GET / HTTP/1.1\r\nX-A: 1\r\n continued\r\n\r\n', 400],
    ['line without colon', 'GET / HTTP/1.1\r\nnonsense\r\n\r\n', 400],
    ['Content-Length not a number', 'POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n', 400],
    ['negative Content-Length', 'POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400],
    ['conflicting Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
    ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['unknown transfer coding', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['chunked in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['bad chunk size', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['chunk without CRLF after data', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY', 400],
    ['body over the limit (Content-Length)', `POST / HTTP/1.1\r\nContent-Length: ${LIMITS.bodyBytesMax + 1}\r\n\r\n`, 413],
    ['body over the limit (chunked)', `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${(LIMITS.bodyBytesMax + 1).toString(16)}\r\n`, 413],
    ['header section over the limit', `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(LIMITS.headerBytesMax)}\r\n\r\n`, 431],
  ];
  for (const [what, text, status] of cases) t.match(first(text), { kind: 'error', status }, what);
  // An unfinished header section over the limit is refused without waiting for its end.
  t.match(first(`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(LIMITS.headerBytesMax + 10)}`), { kind: 'error', status: 431 });
  t.match(first('GET / HTTP/1.1\r\nHost: x\r\n'), { kind: 'more' }, 'an unfinished header section waits');
});

t.test('Expect: 100-continue asks for the continue line once, before the body', async (t) => {
  const parser = new Http1Parser(LIMITS);
  parser.push(Buffer.from('POST /metrics HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n'));
  t.same(parser.next(), { kind: 'more', sendContinue: true });
  t.same(parser.next(), { kind: 'more', sendContinue: false });
  parser.push(Buffer.from('body'));
  t.match(parser.next(), { kind: 'request', request: { method: 'POST', url: '/metrics', expectContinue: true } });
});

// --- the server, on real sockets ---

async function serve(t: Test, handler: (request: RawRequest) => Promise<Reply>, options: Partial<RawHttpOptions> = {}): Promise<{ port: number; http: RawHttpServer; stats: StatsCounter }> {
  const stats = new StatsCounter('test');
  const http = new RawHttpServer(handler, stats, { bodyBytesMax: 2_048, keepAlive: true, keepAliveTimeoutMs: 5_000, ...options });
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => http.accept(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    await http.drain(Date.now());
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, http, stats };
}

/** A raw client: what the server sent until it closed or `untilMs` passed. */
function exchange(port: number, writes: (string | { waitFor: string; then: string })[], untilMs = 2_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ port, host: '127.0.0.1' });
    let text = '';
    let pending = [...writes];
    const pump = (): void => {
      while (pending.length > 0) {
        const next = pending[0]!;
        if (typeof next === 'string') {
          socket.write(next);
          pending = pending.slice(1);
        } else if (text.includes(next.waitFor)) {
          socket.write(next.then);
          pending = pending.slice(1);
        } else return;
      }
    };
    socket.on('connect', pump);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      pump();
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, untilMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', () => undefined);
  });
}

const echo = async (request: RawRequest): Promise<Reply> => {
  await new Promise((r) => setTimeout(r, Math.random() * 5));
  if (request.url === '/empty') return { status: 204, body: '', contentType: 'application/json' };
  return json(200, { method: request.method, url: request.url, authorization: request.authorization ?? null, body: Buffer.from(request.body).toString() });
};

t.test('server: pipelined requests are answered in order; keep-alive by default in HTTP/1.1', async (t) => {
  const { port } = await serve(t, echo);
  const requests = ['/a', '/b', '/c'].map((url, i) => `POST ${url} HTTP/1.1\r\nAuthorization: c${i}\r\nContent-Length: 2\r\n\r\n${i}${i}`).join('');
  const { text, closed } = await exchange(port, [requests], 500);
  t.notOk(closed, 'the connection stays open');
  const bodies = text.split('HTTP/1.1 200 OK').slice(1).map((r) => JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4)) as { url: string; body: string; authorization: string });
  t.same(bodies.map((b) => [b.url, b.body, b.authorization]), [['/a', '00', 'c0'], ['/b', '11', 'c1'], ['/c', '22', 'c2']]);
  t.match(text, /Connection: keep-alive\r\n/);
  t.match(text, /Date: .* GMT\r\n/);
});

t.test('server: 100 Continue, chunked bodies, 204 without Content-Length, HEAD without body', async (t) => {
  const { port } = await serve(t, echo);
  const continued = await exchange(port, ['POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n', { waitFor: '100 Continue', then: 'hello' }]);
  t.match(continued.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
  t.match(continued.text, /"body":"hello"/);
  t.ok(continued.closed, 'Connection: close is honoured');
  const chunked = await exchange(port, ['POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n', '2\r\nde\r\n0\r\n\r\n']);
  t.match(chunked.text, /"body":"abcde"/);
  const empty = await exchange(port, ['GET /empty HTTP/1.1\r\nConnection: close\r\n\r\n']);
  t.match(empty.text, /^HTTP\/1\.1 204 No Content\r\n/);
  t.notMatch(empty.text, /Content-Length/);
  const head = await exchange(port, ['HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n']);
  t.match(head.text, /Content-Length: \d+\r\n/);
  t.ok(head.text.endsWith('\r\n\r\n'), 'no body after the header section');
});

t.test('server: HTTP/1.0 closes unless keep-alive is asked for; errors answer and close', async (t) => {
  const { port, stats } = await serve(t, echo);
  const plain = await exchange(port, ['GET /old HTTP/1.0\r\n\r\n']);
  t.ok(plain.closed);
  t.match(plain.text, /Connection: close/);
  const kept = await exchange(port, ['GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], 300);
  t.notOk(kept.closed);
  const bad = await exchange(port, ['BROKEN\r\n\r\nGET / HTTP/1.1\r\n\r\n']);
  t.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*Connection: close/);
  t.equal(bad.text.match(/HTTP\/1\.1/g)?.length, 1, 'nothing after the error is answered');
  t.ok(bad.closed);
  const big = await exchange(port, [`POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n`]);
  t.match(big.text, /^HTTP\/1\.1 413 Payload Too Large/);
  t.ok(big.closed);
  t.equal(stats.bodyTooLarge, 1, 'the 413 is counted');
});

t.test('server: idle keep-alive connections close; a header section that never ends gets 408', async (t) => {
  const { port } = await serve(t, echo, { keepAliveTimeoutMs: 100, headersTimeoutMs: 300 });
  const idle = await exchange(port, ['GET /x HTTP/1.1\r\n\r\n'], 4_000);
  t.ok(idle.closed, 'closed after the idle timeout');
  t.match(idle.text, /^HTTP\/1\.1 200 OK/);
  const slow = await exchange(port, ['GET /x HTTP/1.1\r\nX-Slow: '], 4_000);
  t.match(slow.text, /^HTTP\/1\.1 408 Request Timeout/);
  t.ok(slow.closed);
});

t.test('server: drain closes idle connections and tells busy ones to close after their answer', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { port, http } = await serve(t, async (request) => {
    if (request.url === '/slow') await gate;
    return json(200, { ok: true });
  });
  const idle = exchange(port, ['GET /fast HTTP/1.1\r\n\r\n'], 3_000);
  const busy = exchange(port, ['GET /slow HTTP/1.1\r\n\r\n'], 3_000);
  await new Promise((r) => setTimeout(r, 200));
  const drained = http.drain(Date.now() + 2_000);
  await new Promise((r) => setTimeout(r, 100));
  release();
  await drained;
  const [i, b] = await Promise.all([idle, busy]);
  t.ok(i.closed && b.closed, 'both closed');
  t.match(b.text, /HTTP\/1\.1 200 OK[\s\S]*Connection: close/, 'the busy request was answered, with Connection: close');
});
