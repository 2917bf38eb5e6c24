/**
 * Child process of the kill -9 test (test/kv-lsm.test.ts): opens a `storage.kv` engine and
 * runs WRITERS concurrent loops, each committing synced batches one after another until the
 * process is killed. After each batch resolves it prints `ack <round>.<writer>.<n>` on
 * stdout (a pipe: synchronous on Linux, so a printed ack is in the pipe before any kill).
 *
 * Batch n of writer w puts KEYS_PER_BATCH keys `b/<round>.<w>/<n, 8 digits>/<j>` and
 * overwrites `last/<round>.<w>` with n, so the parent can check atomicity (all keys or none)
 * and the prefix property (batch n present ⇒ every earlier batch of that writer present).
 *
 *   node dist/test/helpers/kv-crash-writer.js <engine id> <dir> <options JSON> <round>
 */
import { pathToFileURL } from 'node:url';
import { PluginRegistry } from '../../core/plugins/registry.js';
import { createLogger } from '../../core/log.js';

export const WRITERS = 4;
export const KEYS_PER_BATCH = 5;
/** Values are padded so that a small memtable fills (and flushes, and compacts) while the child runs. */
const VALUE_PADDING_BYTES = 200;

export const batchKey = (round: number, writer: number, n: number, j: number): Uint8Array => Buffer.from(`b/${round}.${writer}/${String(n).padStart(8, '0')}/${j}`);
export const lastKey = (round: number, writer: number): Uint8Array => Buffer.from(`last/${round}.${writer}`);
export const batchValue = (round: number, writer: number, n: number, j: number): Uint8Array => Buffer.from(`${round}.${writer}.${n}.${j}:`.padEnd(VALUE_PADDING_BYTES, '#'));

async function main(): Promise<void> {
  const [id, dir, optionsJson, roundText] = process.argv.slice(2);
  if (id === undefined || dir === undefined || optionsJson === undefined || roundText === undefined) throw new Error('usage: kv-crash-writer <engine id> <dir> <options JSON> <round>');
  const round = Number(roundText);
  const { registry } = await PluginRegistry.load();
  const engine = registry.instantiate('storage.kv', id, { dataDir: dir, log: createLogger('kv-crash-writer') }, JSON.parse(optionsJson) as Record<string, unknown>);
  await engine.open();
  process.stdout.write('ready\n');
  const writer = async (w: number): Promise<never> => {
    for (let n = 0; ; n++) {
      const ops = [];
      for (let j = 0; j < KEYS_PER_BATCH; j++) ops.push({ type: 'put' as const, key: batchKey(round, w, n, j), value: batchValue(round, w, n, j) });
      ops.push({ type: 'put' as const, key: lastKey(round, w), value: Buffer.from(String(n)) });
      await engine.batch(ops, { sync: true });
      process.stdout.write(`ack ${round}.${w}.${n}\n`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
}

// Only as a program: the test imports the key helpers from this module too.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`kv-crash-writer: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
