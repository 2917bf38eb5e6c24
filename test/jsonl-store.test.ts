/**
 * Craft #0's JSON-lines store: a torn last line (a crash mid-append) is cut off on open.
 */
import t from 'tap';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { tempDir } from './helpers/nats.js';
import { appendAll, openStore } from './helpers/storage.js';

const { registry } = await PluginRegistry.load();

t.test('craft0.jsonl-store: a torn last line is cut off on open', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(registry, 'craft0.jsonl-store', 'kv.level', dir);
  await appendAll(store, [[{ __name__: 'm' }, 1, 1]], { '1:0': 1 });
  await store.close();
  appendFileSync(join(dir, 'samples.jsonl'), '{"name":"m","value":2,"timesta');
  const again = await openStore(registry, 'craft0.jsonl-store', 'kv.level', dir);
  t.equal(again.stats().samples, 1);
  await appendAll(again, [[{ __name__: 'm' }, 2, 2]], { '1:0': 2 });
  const selected = await again.querier(0, 10).select([{ name: '__name__', op: '=', value: 'm' }]);
  t.same(selected[0]?.timestampsMs, [1, 2]);
  t.same(again.positions(), { '1:0': 2 });
  await again.close();
});
