/**
 * The embedded nats-server: starts on a free port, stops by pid leaving nothing behind,
 * restarts on the same port with its JetStream store intact, and dies with its parent.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddedNatsServer } from '../core/nats/server.js';
import { Bus } from '../core/nats/bus.js';
import { tempDir, eventually } from './helpers/nats.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('start, serve, stop: no process left behind', async (t) => {
  const server = new EmbeddedNatsServer({ dataDir: tempDir(t) });
  await server.start();
  const pid = server.pid!;
  t.ok(server.port > 0, 'picked a free port');
  t.ok(alive(pid));
  const bus = await Bus.connect(server.url, 't');
  bus.serve('echo', (body: { x: number }) => ({ y: body.x + 1 }));
  t.same(await bus.request('echo', { x: 41 }), { y: 42 });
  await bus.close();
  await server.stop();
  t.notOk(alive(pid), 'server process is gone');
});

t.test('restart keeps the port and the JetStream store', async (t) => {
  const server = new EmbeddedNatsServer({ dataDir: tempDir(t) });
  await server.start();
  t.teardown(() => server.stop());
  const port = server.port;
  const bus = await Bus.connect(server.url, 't');
  t.teardown(() => bus.close());
  const jsm = await bus.jetstreamManager();
  await jsm.streams.add({ name: 'KEEP', subjects: ['keep.>'] });
  await bus.jetstream().publish('keep.a', new TextEncoder().encode('hello'));
  await server.restart(100);
  t.equal(server.port, port);
  t.ok(await eventually(async () => {
    try {
      return (await jsm.streams.info('KEEP')).state.messages === 1;
    } catch {
      return false;
    }
  }), 'stream survived the restart and the client reconnected');
});

t.test('a leftover server from a crashed run is stopped on the next start', async (t) => {
  const dir = tempDir(t);
  const first = new EmbeddedNatsServer({ dataDir: dir });
  await first.start();
  const leftover = first.pid!;
  // Pretend our process died without stopping it: forget the handle, keep the pid file.
  t.ok(existsSync(join(dir, 'nats-server.pid')));
  const second = new EmbeddedNatsServer({ dataDir: dir });
  await second.start();
  t.teardown(() => second.stop());
  t.ok(await eventually(() => !alive(leftover)), 'leftover stopped');
  t.not(second.pid, leftover);
  await first.stop().catch(() => undefined);
});

t.test('the server dies with its parent process, even on SIGKILL', async (t) => {
  const dir = tempDir(t);
  const script = join(dir, 'parent.mjs');
  const serverModule = new URL('../core/nats/server.js', import.meta.url).href;
  writeFileSync(
    script,
    `import { EmbeddedNatsServer } from ${JSON.stringify(serverModule)};
     const s = new EmbeddedNatsServer({ dataDir: ${JSON.stringify(join(dir, 'nats'))} });
     await s.start();
     process.stdout.write(String(s.pid) + '\\n');
     setInterval(() => {}, 1000);`,
  );
  const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  t.ok(alive(pid), 'server running under the parent');
  parent.kill('SIGKILL');
  t.ok(await eventually(() => !alive(pid), 5_000), 'server gone after the parent was killed');
  t.notOk(existsSync(join(dir, 'nats', 'nats-server.pid')) && alive(Number(readFileSync(join(dir, 'nats', 'nats-server.pid'), 'utf8'))));
});

t.test('a missing binary is a coded error naming the fix', async (t) => {
  const previous = process.env.NATS_SERVER_BIN;
  process.env.NATS_SERVER_BIN = '/nonexistent/nats-server';
  t.teardown(() => {
    if (previous === undefined) delete process.env.NATS_SERVER_BIN;
    else process.env.NATS_SERVER_BIN = previous;
  });
  const server = new EmbeddedNatsServer({ dataDir: tempDir(t) });
  await t.rejects(server.start(), { code: 'CRAFT_NATS_SERVER_MISSING' });
});
