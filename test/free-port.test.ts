/**
 * `freePort` (actors/platform.ts) picks ports for servers that bind later: below the kernel's
 * ephemeral range, where no outgoing connection can take the port between the pick and the bind
 * (a platform's own NATS connections once did: EADDRINUSE).
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { freePort } from '../actors/platform.js';

const RANGE = '/proc/sys/net/ipv4/ip_local_port_range';

t.test('freePort: below the ephemeral range, and free', { skip: existsSync(RANGE) ? false : `${RANGE} not found (not Linux)` }, async (t) => {
  const low = Number(readFileSync(RANGE, 'utf8').trim().split(/\s+/)[0]);
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    t.ok(port >= 10_000 && port < low, `port ${port} is in [10000, ${low})`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host: '127.0.0.1', port }, () => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

t.test('freePort: a port in use is not picked', async (t) => {
  const taken = await freePort();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: taken }, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  for (let i = 0; i < 200; i++) if ((await freePort()) === taken) t.fail(`picked ${taken}, which is in use`);
  t.pass('200 picks, none the port in use');
});
