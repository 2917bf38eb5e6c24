/**
 * Distribution by configuration: actors in separate OS processes joined by one NATS server.
 * (1) two `craft up --only …` processes, ingestion in one and storage in the other;
 * (2) a platform that supervises a storage process: kill -9 it, it is restarted, and
 *     nothing acknowledged meanwhile is lost.
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { startNats, connectBus, eventually, tempDir } from './helpers/nats.js';
import { startPlatform, postJson, getJson } from './helpers/platform.js';
import { gatherStatus } from '../cli/status.js';
import { StorageClient } from '../core/storage/client.js';
import { freePort } from '../actors/platform.js';

const CLI = fileURLToPath(new URL('../../bin/craft.js', import.meta.url));

function craftUp(t: Test, args: string[]): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CRAFT_LOG: 'warn' } });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
  return child;
}

const ready = (child: ChildProcess): Promise<void> =>
  new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('platform up')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${out}`)));
  });

t.test('ingestion and storage in two processes started with --only', async (t) => {
  const { url } = await startNats(t);
  const dir = tempDir(t);
  const port = await freePort();
  const front = craftUp(t, ['--only', 'control,queue,ingestion,query', '--nats', url, '--data', join(dir, 'front'), '--process-name', 'front', '--ingestion-port', String(port), '--query-port', '0', '--host', '127.0.0.1']);
  await ready(front);
  const back = craftUp(t, ['--only', 'storage', '--nats', url, '--data', join(dir, 'back'), '--process-name', 'back']);
  await ready(back);
  const bus = await connectBus(t, url);
  const processes = await gatherStatus(bus);
  t.same(processes.map((p) => p.process).sort(), ['back', 'front']);
  t.not(processes[0]!.pid, processes[1]!.pid);
  t.same(processes.find((p) => p.process === 'back')!.tree.children!.map((c) => c.id), ['storage']);

  // The default ingestion plugin of `craft up` serves the seed's API.
  for (let i = 0; i < 20; i++) t.equal((await postJson(port, '/metrics', { metrics: [{ name: 'split', value: i, timestamp: 1_000 + i }] })).status, 200);
  const storage = new StorageClient(bus);
  t.ok(await eventually(async () => (await storage.info()).stats.samples === 20), 'storage, in the other process, has all 20');
  const rows = (await getJson(port, '/query?name=split')).body as unknown[];
  t.equal(rows.length, 20, 'a query from the front process reads storage in the back process');
});

t.test('a supervised storage process: kill -9, restart, nothing acknowledged lost', async (t) => {
  const platform = await startPlatform(t, {
    plugins: { 'ingestion.server': 'craft0.http' },
    actors: ['control', 'queue', 'query', 'notifier', 'alerting', 'ingestion'],
    processes: [{ name: 'store-node', actors: ['storage'] }],
  });
  const processNode = () => platform.processStatus().tree.children!.find((c) => c.id === 'process:store-node')!;
  const firstPid = processNode().pid!;
  t.ok(firstPid > 0);
  for (let i = 0; i < 10; i++) await postJson(platform.ingestionPort, '/metrics', { metrics: [{ name: 'k', value: i, timestamp: i }] });
  process.kill(firstPid, 'SIGKILL');
  // The queue keeps acknowledging while storage is down.
  for (let i = 10; i < 30; i++) t.equal((await postJson(platform.ingestionPort, '/metrics', { metrics: [{ name: 'k', value: i, timestamp: i }] })).status, 200);
  t.ok(await eventually(() => processNode().restarts === 1 && processNode().state === 'running', 30_000), 'process restarted by its supervisor');
  t.not(processNode().pid, firstPid);
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => {
    try {
      return (await storage.info()).stats.samples === 30;
    } catch {
      return false;
    }
  }, 30_000), 'all 30 samples stored after the restart');
  const processes = await gatherStatus(platform.bus);
  t.ok(processes.some((p) => p.process === 'store-node'), 'the child process answers status itself');
});
