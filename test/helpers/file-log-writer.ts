/**
 * Test child for the file log's kill -9 test: appends as fast as it can (16 at a time, so
 * group commits form) and prints each acknowledged offset; the parent kills it at a random moment.
 */
import { PluginRegistry } from '../../core/plugins/registry.js';
import { createLogger } from '../../core/log.js';
import type { Bus } from '../../core/nats/bus.js';

const [dir, layout] = process.argv.slice(2);
const { registry } = await PluginRegistry.load();
const queue = registry.instantiate('queue.log', 'queue.file-log', { partitions: 1, epoch: 1, dataDir: dir!, bus: undefined as unknown as Bus, log: createLogger('writer') }, { layout, segmentBytesMax: 65_536 });
await queue.open();
let n = queue.lastOffset(0);
for (;;) {
  const batch = Array.from({ length: 16 }, () => {
    const payload = new Uint8Array(200);
    new DataView(payload.buffer).setUint32(0, n++);
    return queue.append(0, payload);
  });
  const offsets = await Promise.all(batch);
  process.stdout.write(`${offsets.at(-1)}\n`);
}
