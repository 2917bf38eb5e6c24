/**
 * Crash model: a child process commits batches to a store until it is killed with SIGKILL at
 * a random moment; twice over, on the same directory. On reopen, every batch whose commit
 * resolved is present exactly once, every batch is all-or-nothing, and the positions say
 * which batches those are (the actor skips what they cover, so replay adds nothing twice).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginRegistry } from '../core/plugins/registry.js';
import { stopChild } from '../core/child-process.js';
import { tempDir } from './helpers/nats.js';
import { openStore } from './helpers/storage.js';
import { SAMPLES_PER_SERIES, SERIES, batchSamples } from './helpers/storage-writer.js';

const WRITER = fileURLToPath(new URL('./helpers/storage-writer.js', import.meta.url));
const { registry } = await PluginRegistry.load();
const KVS = registry.list().filter((p) => p.slot === 'storage.kv').map((p) => p.id);
const TARGETS: { engine: string; options: Record<string, unknown> }[] = [
  { engine: 'storage.gorilla', options: { chunkSamplesMax: 16, checkpointWalBytes: 16_384 } },
  { engine: 'storage.lsm', options: {} },
];

/** Runs the writer until `killAfterMs` past its first commit, kills it, returns the last batch it reported. */
async function runAndKill(engine: string, kv: string, dir: string, options: Record<string, unknown>, killAfterMs: number): Promise<number> {
  const child = spawn(process.execPath, [WRITER, engine, kv, dir, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  let reported = 0;
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const match = /^committed (\d+)$/.exec(line);
        if (match !== null) reported = Number(match[1]);
        if (timer === undefined && match !== null) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code ?? signal} before it was killed`))));
  });
  await stopChild(child);
  return reported;
}

for (const { engine, options } of TARGETS) {
  for (const kv of KVS) {
    t.test(`${engine} on ${kv}: kill -9 at a random moment loses no committed batch and doubles none`, async (t) => {
      const dir = join(tempDir(t), 'store');
      let reported = 0;
      for (let round = 0; round < 2; round++) {
        reported = Math.max(reported, await runAndKill(engine, kv, dir, options, 50 + Math.floor(Math.random() * 400)));
      }
      const store = await openStore(registry, engine, kv, dir, options);
      t.teardown(() => store.close());
      const applied = store.positions()['1:0'] ?? 0;
      t.ok(applied >= reported, `positions cover every reported commit (applied ${applied}, reported ${reported})`);
      t.ok(reported > 0, 'the writer committed something before each kill');
      const querier = store.querier(0, Number.MAX_SAFE_INTEGER);
      const series = await querier.select([{ name: '__name__', op: '=', value: 'crash' }]);
      t.equal(series.length, SERIES, 'every series is there');
      const expected = new Map<number, number>();
      for (let n = 1; n <= applied; n++) for (const [, ts, v] of batchSamples(n).filter(([l]) => l.__name__ === 'crash')) expected.set(ts, v);
      let wrong = 0;
      for (const s of series) {
        if (s.timestampsMs.length !== applied * SAMPLES_PER_SERIES) wrong += 1;
        for (let i = 0; i < s.timestampsMs.length; i++) if (expected.get(s.timestampsMs[i]!) !== s.values[i]) wrong += 1;
      }
      t.equal(wrong, 0, `each series holds exactly the ${applied * SAMPLES_PER_SERIES} samples of the applied batches, nothing of a later one`);
      const [stamped] = await querier.select([{ name: '__name__', op: '=', value: 'stamped' }]);
      t.equal(stamped?.timestampsMs.length, applied * 3, 'every server-stamped sample of the applied batches, once');
      t.equal(store.stats().samples, applied * (SERIES * SAMPLES_PER_SERIES + 3), 'stats count each sample once');
    });
  }
}
