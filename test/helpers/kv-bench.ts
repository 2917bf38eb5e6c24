/**
 * A quick benchmark of the `storage.kv` engines (not a test): batch writes of 1,000 keys and
 * a full range read, per engine, with default options, in a fresh temporary directory.
 *
 *   npx tsc -p . && node dist/test/helpers/kv-bench.js [batches] [repeats]
 *
 * Keys are 13 bytes shaped like a series store's sample keys (tag, series id u32, time u64),
 * values 8 bytes (a float64); series are interleaved so each batch touches 100 series.
 * Writes: `batches` batches awaited one after another (unsynced, then a run with sync: true),
 * then, for kv.lsm, the time until its background flushes and compactions are done. Range
 * read: after close and reopen, every key with `iterate({}, 1000)`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginRegistry } from '../../core/plugins/registry.js';
import { createLogger } from '../../core/log.js';
import type { KvEngine, KvOp } from '../../core/slots/kv.js';

const KEYS_PER_BATCH = 1_000;
const SERIES = 100;
const ENGINES = ['kv.level', 'kv.lsm'];

function batchOps(batch: number): KvOp[] {
  const ops: KvOp[] = [];
  for (let i = 0; i < KEYS_PER_BATCH; i++) {
    const key = Buffer.alloc(13);
    key[0] = 0x44;
    key.writeUInt32BE(i % SERIES, 1);
    key.writeBigUInt64BE(BigInt(batch * (KEYS_PER_BATCH / SERIES) + Math.floor(i / SERIES)), 5);
    const value = Buffer.alloc(8);
    value.writeDoubleBE(Math.sin(batch + i));
    ops.push({ type: 'put', key, value });
  }
  return ops;
}

async function main(): Promise<void> {
  const batches = Number(process.argv[2] ?? 300);
  const repeats = Number(process.argv[3] ?? 3);
  const { registry } = await PluginRegistry.load();
  const log = createLogger('kv-bench');
  const prepared = Array.from({ length: batches }, (_, b) => batchOps(b));
  for (let repeat = 0; repeat < repeats; repeat++) {
    for (const id of ENGINES) {
      const dir = mkdtempSync(join(tmpdir(), 'kv-bench-'));
      try {
        const open = async (): Promise<KvEngine> => {
          const engine = registry.instantiate('storage.kv', id, { dataDir: dir, log }, {});
          await engine.open();
          return engine;
        };
        let engine = await open();
        let started = performance.now();
        for (const ops of prepared) await engine.batch(ops);
        const writeMs = performance.now() - started;
        const settle = (engine as Partial<{ settle(): Promise<void> }>).settle;
        started = performance.now();
        if (settle !== undefined) await settle.call(engine);
        const settleMs = performance.now() - started;
        const syncedBatches = Math.max(1, Math.floor(batches / 10));
        started = performance.now();
        for (let b = 0; b < syncedBatches; b++) await engine.batch(prepared[b]!, { sync: true });
        const syncedMs = performance.now() - started;
        if (settle !== undefined) await settle.call(engine);
        await engine.close();
        engine = await open();
        started = performance.now();
        let read = 0;
        for await (const chunk of engine.iterate({}, 1_000)) read += chunk.length;
        const readMs = performance.now() - started;
        const bytes = await engine.bytesOnDisk();
        await engine.close();
        const keys = batches * KEYS_PER_BATCH;
        if (read !== keys) throw new Error(`${id}: read ${read} keys, wrote ${keys}`);
        const rate = (count: number, ms: number): string => `${((count / ms) * 1000 / 1e6).toFixed(2)} M keys/s`;
        console.log(
          `${id.padEnd(9)} run ${repeat + 1}: write ${rate(keys, writeMs)} (${batches} × ${KEYS_PER_BATCH}, ${writeMs.toFixed(0)} ms` +
            (settle !== undefined ? `, background settles in ${settleMs.toFixed(0)} ms` : '') +
            `) · synced write ${rate(syncedBatches * KEYS_PER_BATCH, syncedMs)} · range read ${rate(read, readMs)} (${readMs.toFixed(0)} ms) · ${(bytes / 1024 / 1024).toFixed(1)} MiB on disk`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

await main();
