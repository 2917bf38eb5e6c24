/**
 * Child process for the storage crash test: opens a store and commits numbered batches until
 * it is killed, printing `committed <n>` after each commit resolves. Batch n holds, for each
 * of SERIES series, the samples at n·1000 + i (i < SAMPLES_PER_SERIES) with value n + i/10,
 * and three server-stamped samples of series `stamped` at n·1000.
 *
 *   node storage-writer.js <engine> <kv> <dataDir> <optionsJson>
 */
import { PluginRegistry } from '../../core/plugins/registry.js';
import { setLogLevel } from '../../core/log.js';
import type { WireSample } from '../../core/model.js';
import { appendAll, openStore } from './storage.js';

export const SERIES = 20;
export const SAMPLES_PER_SERIES = 10;

export function batchSamples(n: number): WireSample[] {
  const samples: WireSample[] = [];
  for (let i = 0; i < SAMPLES_PER_SERIES; i++) {
    for (let s = 0; s < SERIES; s++) samples.push([{ __name__: 'crash', s: String(s) }, n * 1_000 + i, n + i / 10]);
  }
  for (let k = 0; k < 3; k++) samples.push([{ __name__: 'stamped' }, n * 1_000, k, 1]);
  return samples;
}

if (process.argv[1]?.endsWith('storage-writer.js') === true) {
  setLogLevel('error');
  const [engine, kv, dataDir, optionsJson] = process.argv.slice(2) as [string, string, string, string];
  const { registry } = await PluginRegistry.load();
  const store = await openStore(registry, engine, kv, dataDir, JSON.parse(optionsJson) as Record<string, unknown>);
  let n = store.positions()['1:0'] ?? 0;
  process.stdout.write('ready\n');
  for (;;) {
    n += 1;
    await appendAll(store, batchSamples(n), { '1:0': n });
    process.stdout.write(`committed ${n}\n`);
  }
}
