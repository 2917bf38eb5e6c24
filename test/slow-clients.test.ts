/**
 * Slow clients against a whole platform: a thousand connections that send half a header
 * section and stop (slowloris) on the ingestion port, and a few hundred on the query and
 * alerting ports, do not stop other clients being served on any of them; each slow connection
 * is cut once its server's header timeout passes (docs/errors.md lists every server's timeouts).
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { startPlatform } from './helpers/platform.js';
import { eventually } from './helpers/nats.js';

function slowClient(port: number): Promise<{ socket: Socket; closed: () => boolean; answer: () => string }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => {
      // Half a header section, then nothing.
      socket.write('POST /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      resolve({ socket, closed: () => closed, answer: () => answer });
    });
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('close', () => (closed = true));
    socket.on('error', () => (closed = true));
    socket.once('error', reject);
  });
}

t.test('a thousand slowloris connections do not stop other clients; each is cut after the header timeout', async (t) => {
  const platform = await startPlatform(t);
  const ports = { ingestion: platform.ingestionPort, query: platform.queryPort, alerting: platform.alertingPort };
  const slow: Awaited<ReturnType<typeof slowClient>>[] = [];
  t.teardown(() => {
    for (const s of slow) s.socket.destroy();
  });
  for (let i = 0; i < 1_000; i++) slow.push(await slowClient(ports.ingestion));
  for (let i = 0; i < 200; i++) slow.push(await slowClient(ports.query), await slowClient(ports.alerting));
  const startedAt = Date.now();

  // Everyone else is served meanwhile, on every port.
  const write = await fetch(`http://127.0.0.1:${ports.ingestion}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metrics: [{ name: 'fine', value: 1 }] }) });
  t.equal(write.status, 200, 'a write is served');
  await write.text();
  const query = await fetch(`http://127.0.0.1:${ports.query}/api/v1/query?query=1`);
  t.equal(query.status, 200, 'a query is served');
  await query.text();
  const alerts = await fetch(`http://127.0.0.1:${ports.alerting}/api/v2/alerts`);
  t.equal(alerts.status, 200, 'the alerting API is served');
  await alerts.text();
  const stillOpen = slow.filter((s) => !s.closed()).length;
  t.equal(stillOpen, slow.length, `served while all ${slow.length} slow connections were still open (${Date.now() - startedAt} ms in)`);

  // Then the header timeouts (10 s on every server) cut them.
  t.ok(await eventually(() => slow.every((s) => s.closed()), 30_000, 200), 'every slow connection was cut');
  const ingestionAnswers = slow.slice(0, 1_000).map((s) => s.answer());
  t.ok(ingestionAnswers.every((a) => a === '' || a.startsWith('HTTP/1.1 408')), 'ingestion answered 408 (or closed)');
  t.ok(Date.now() - startedAt >= 9_000, 'not before the header timeout');
});
