/**
 * Both queue logs (in-memory and JetStream) against the same contract: per-partition order,
 * commit is cumulative, rewind delivers the uncommitted again, a reader reopened after a
 * commit resumes after it (JetStream: across instances), trim drops only committed data.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { PluginRegistry } from '../core/plugins/registry.js';
import { createLogger } from '../core/log.js';
import type { QueueLog } from '../core/slots/queue.js';
import type { Bus } from '../core/nats/bus.js';
import { startNats, connectBus, tempDir } from './helpers/nats.js';

const { registry } = await PluginRegistry.load();
const enc = (n: number): Uint8Array => new TextEncoder().encode(String(n));
const dec = (b: Uint8Array): number => Number(new TextDecoder().decode(b));

async function openLog(t: Test, id: string, bus: Bus, epoch: number): Promise<QueueLog> {
  const log = registry.instantiate('queue.log', id, { partitions: 3, epoch, dataDir: tempDir(t), bus, log: createLogger('q') });
  await log.open();
  return log;
}

/** Takes deliveries until `expected` arrived (or 5 s passed), then checks briefly that no more come. */
async function drain(log: QueueLog, group: string, partition: number, expected: number): Promise<{ offset: number; value: number }[]> {
  const reader = await log.reader(group, partition);
  const out: { offset: number; value: number }[] = [];
  const deadline = Date.now() + 5_000;
  let extraWaitDone = false;
  for (;;) {
    const taken = reader.take(100, 1 << 20);
    for (const d of taken) out.push({ offset: d.offset, value: dec(d.payload) });
    if (taken.length > 0) continue;
    if (out.length >= expected) {
      if (extraWaitDone) return out;
      extraWaitDone = true;
      await reader.waitForData(30);
      continue;
    }
    if (Date.now() > deadline) return out;
    await reader.waitForData(100);
  }
}

for (const id of ['craft0.memory-queue', 'queue.jetstream']) {
  t.test(`${id}: contract`, async (t) => {
    const { url } = await startNats(t);
    const bus = await connectBus(t, url);
    let epoch = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(2), fc.nat(1_000)), { minLength: 1, maxLength: 40 }), fc.nat(100), async (appends, commitShare) => {
        const log = await openLog(t, id, bus, ++epoch);
        try {
          const offsets: number[][] = [[], [], []];
          for (const [p, v] of appends) offsets[p]!.push(await log.append(p, enc(v)));
          for (let p = 0; p < 3; p++) {
            const expected = appends.filter(([q]) => q === p).map(([, v]) => v);
            // Offsets strictly increase within a partition.
            if (offsets[p]!.some((o, i) => i > 0 && o <= offsets[p]![i - 1]!)) return false;
            if (log.lastOffset(p) !== (offsets[p]!.at(-1) ?? 0)) return false;
            const got = await drain(log, 'g', p, expected.length);
            if (JSON.stringify(got.map((d) => d.value)) !== JSON.stringify(expected)) return false;
            if (got.length === 0) continue;
            // Commit a prefix; a rewind delivers exactly the rest again.
            const cut = Math.floor((commitShare / 100) * got.length);
            const reader = await log.reader('g', p);
            if (cut > 0) await reader.commit(got[cut - 1]!.offset);
            await reader.rewind();
            const again = await drain(log, 'g', p, expected.length - cut);
            if (JSON.stringify(again.map((d) => d.value)) !== JSON.stringify(expected.slice(cut))) return false;
            // Another group reads everything, independently.
            if ((await drain(log, 'other', p, expected.length)).length !== expected.length) return false;
          }
          return true;
        } finally {
          await log.close({ destroy: true });
        }
      }),
      { numRuns: id === 'queue.jetstream' ? 8 : 40 },
    );
    t.pass();
  });
}

t.test('queue.jetstream: a new instance resumes each group after its committed offset', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const first = await openLog(t, 'queue.jetstream', bus, 7);
  for (let i = 1; i <= 10; i++) await first.append(0, enc(i));
  const got = await drain(first, 'g', 0, 10);
  await (await first.reader('g', 0)).commit(got[5]!.offset);
  await first.close();
  const second = await openLog(t, 'queue.jetstream', bus, 7);
  t.same((await drain(second, 'g', 0, 4)).map((d) => d.value), [7, 8, 9, 10]);
  t.equal(second.lastOffset(0), got[9]!.offset);
  await second.trim(0, got[5]!.offset);
  t.same((await second.info()).depth, [4, 0, 0], 'trim dropped the committed six');
  await second.close({ destroy: true });
});

t.test('regression: queue.jetstream trim racing a seal (a swap under load) does not fail', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const log = await openLog(t, 'queue.jetstream', bus, 9);
  for (let i = 1; i <= 5; i++) await log.append(0, enc(i));
  // The stream is sealed while this instance still believes it open — what a trim that is
  // already past its check sees when the seal lands first (it crashed the queue actor).
  const sealer = await openLog(t, 'queue.jetstream', bus, 9);
  await sealer.seal!();
  await t.resolves(log.trim(0, 3), 'trim on a stream sealed under it is a no-op');
  t.same((await log.info()).depth, [5, 0, 0], 'the sealed stream kept everything');
  await t.resolves(log.trim(0, 4), 'and so is every later trim');
  await sealer.close();
  await log.close({ destroy: true });
});

t.test('craft0.memory-queue: a full partition refuses appends with CRAFT_OVERLOADED', async (t) => {
  const log = registry.instantiate('queue.log', 'craft0.memory-queue', { partitions: 1, epoch: 1, dataDir: tempDir(t), bus: undefined as never, log: createLogger('q') }, { messagesMax: 2 });
  await log.open();
  await log.append(0, enc(1));
  await log.append(0, enc(2));
  await t.rejects(log.append(0, enc(3)), { code: 'CRAFT_OVERLOADED' });
  await log.trim(0, 1);
  t.equal(await log.append(0, enc(3)), 3, 'room again after trim');
});
