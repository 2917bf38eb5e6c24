/**
 * Craft #2, phase 1 (`queue.file-log`): the file log equals an in-memory model under random
 * appends (one at a time and concurrent, so group commits form), takes, commits, rewinds,
 * trims, reopens and torn tails — for both layouts; a torn or corrupted tail is truncated and
 * nothing acknowledged is lost; a `kill -9` of a process appending at full speed loses no
 * acknowledged append.
 */
import t from 'tap';
import fc from 'fast-check';
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PluginRegistry } from '../core/plugins/registry.js';
import { createLogger, setLogLevel } from '../core/log.js';
import type { QueueLog } from '../core/slots/queue.js';
import type { Bus } from '../core/nats/bus.js';
import { eventually, tempDir } from './helpers/nats.js';
import { startPlatform } from './helpers/platform.js';
import { StorageClient } from '../core/storage/client.js';
import { killSubject } from '../core/subjects.js';

const { registry } = await PluginRegistry.load();
const log = createLogger('test');
setLogLevel('error');

const open = async (dir: string, options: Record<string, unknown>, partitions = 2): Promise<QueueLog> => {
  const queue = registry.instantiate('queue.log', 'queue.file-log', { partitions, epoch: 1, dataDir: dir, bus: undefined as unknown as Bus, log }, options);
  await queue.open();
  return queue;
};

type Op =
  | { kind: 'append'; partition: number; sizes: number[] }
  | { kind: 'take'; group: number; partition: number; max: number; bytes: number }
  | { kind: 'commit'; group: number; partition: number }
  | { kind: 'rewind'; group: number; partition: number }
  | { kind: 'trim'; partition: number }
  | { kind: 'reopen' }
  | { kind: 'torn'; partition: number; garbage: number[] };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('append' as const), partition: fc.integer({ min: 0, max: 1 }), sizes: fc.array(fc.integer({ min: 0, max: 900 }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('take' as const), group: fc.integer({ min: 0, max: 1 }), partition: fc.integer({ min: 0, max: 1 }), max: fc.integer({ min: 1, max: 10 }), bytes: fc.integer({ min: 0, max: 5_000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('commit' as const), group: fc.integer({ min: 0, max: 1 }), partition: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rewind' as const), group: fc.integer({ min: 0, max: 1 }), partition: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim' as const), partition: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('torn' as const), partition: fc.integer({ min: 0, max: 1 }), garbage: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 40 }) }) },
);

/** The bytes of the n-th message ever appended: distinct and checkable. */
const payloadOf = (n: number, size: number): Uint8Array => {
  const bytes = new Uint8Array(size + 4);
  new DataView(bytes.buffer).setUint32(0, n);
  for (let i = 0; i < size; i++) bytes[4 + i] = (n * 31 + i) & 0xff;
  return bytes;
};

for (const layout of ['segments', 'file-per-message'] as const) {
  t.test(`${layout}: equals a model under random appends, takes, commits, rewinds, trims, reopens and torn tails`, async (t) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        const dir = join(tempDir(t), `run-${run++}`);
        const options = layout === 'segments' ? { layout, segmentBytesMax: 4_096 } : { layout };
        let queue = await open(dir, options);
        const model = [[] as Uint8Array[], [] as Uint8Array[]];
        const committed = new Map<string, number>();
        const delivered = new Map<string, number>();
        const key = (g: number, p: number): string => `g${g}/${p}`;
        let count = 0;
        try {
          for (const o of ops) {
            if (o.kind === 'append') {
              // Concurrently: one group commit (or a few) for the lot.
              const payloads = o.sizes.map((s) => payloadOf(count++, s));
              const offsets = await Promise.all(payloads.map((p) => queue.append(o.partition, p)));
              const first = model[o.partition]!.length + 1;
              if (offsets.some((off, i) => off !== first + i)) throw new Error(`offsets ${offsets.join(',')} from ${first}`);
              model[o.partition]!.push(...payloads);
            } else if (o.kind === 'take') {
              const reader = await queue.reader(`g${o.group}`, o.partition);
              const got = reader.take(o.max, o.bytes);
              const k = key(o.group, o.partition);
              const from = delivered.get(k) ?? committed.get(k) ?? 0;
              // The model: the next records after `from`, as many as fit both limits.
              const expected: number[] = [];
              let bytes = 0;
              for (let off = from + 1; off <= model[o.partition]!.length && expected.length < o.max; off++) {
                const size = model[o.partition]![off - 1]!.length;
                if (bytes + size > o.bytes) break;
                expected.push(off);
                bytes += size;
              }
              if (JSON.stringify(got.map((d) => d.offset)) !== JSON.stringify(expected)) throw new Error(`take ${JSON.stringify(o)}: ${got.map((d) => d.offset)} vs model ${expected}`);
              for (const d of got) if (Buffer.compare(Buffer.from(d.payload), Buffer.from(model[o.partition]![d.offset - 1]!)) !== 0) throw new Error(`payload of offset ${d.offset} differs`);
              if (got.length > 0) delivered.set(k, got.at(-1)!.offset);
            } else if (o.kind === 'commit') {
              const k = key(o.group, o.partition);
              const upTo = delivered.get(k);
              if (upTo === undefined) continue;
              await (await queue.reader(`g${o.group}`, o.partition)).commit(upTo);
              committed.set(k, Math.max(committed.get(k) ?? 0, upTo));
            } else if (o.kind === 'rewind') {
              await (await queue.reader(`g${o.group}`, o.partition)).rewind();
              delivered.delete(key(o.group, o.partition));
            } else if (o.kind === 'trim') {
              // What every group has committed (both groups read every partition here).
              const upTo = Math.min(committed.get(key(0, o.partition)) ?? 0, committed.get(key(1, o.partition)) ?? 0);
              await queue.trim(o.partition, upTo);
            } else {
              await queue.close();
              if (o.kind === 'torn') {
                // A crash mid-write: garbage after the last acknowledged record (or a half-written file).
                const pdir = join(dir, `p${o.partition}`);
                if (layout === 'segments') {
                  const last = readdirSync(pdir).filter((f) => f.endsWith('.log')).sort().at(-1)!;
                  appendFileSync(join(pdir, last), Buffer.from(o.garbage));
                } else writeFileSync(join(pdir, 'msg', String(model[o.partition]!.length + 1).padStart(20, '0')), Buffer.from(o.garbage));
              }
              queue = await open(dir, options);
              delivered.clear();
              for (const p of [0, 1]) if (queue.lastOffset(p) !== model[p]!.length) throw new Error(`after reopening, partition ${p} ends at ${queue.lastOffset(p)}, model ${model[p]!.length}`);
              for (const [k, off] of committed) {
                const [g, p] = k.slice(1).split('/').map(Number);
                if ((await queue.reader(`g${g}`, p!)).committed() !== off) throw new Error(`committed offset of ${k} lost`);
              }
            }
          }
        } finally {
          await queue.close();
        }
      }),
      { numRuns: layout === 'segments' ? 120 : 40 },
    );
    t.pass();
  });
}

t.test('segments: a torn record mid-header, mid-payload or with a bad CRC is truncated; a bad record in a closed segment is corruption', async (t) => {
  const dir = tempDir(t);
  let queue = await open(dir, { segmentBytesMax: 4_096 }, 1);
  for (let i = 0; i < 20; i++) await queue.append(0, payloadOf(i, 500));
  await queue.close();
  const pdir = join(dir, 'p0');
  const segments = readdirSync(pdir).filter((f) => f.endsWith('.log')).sort();
  t.ok(segments.length >= 2, `rolled into ${segments.length} segments`);
  t.ok(readdirSync(pdir).some((f) => f.endsWith('.index')), 'closed segments have their index');
  const last = join(pdir, segments.at(-1)!);
  const size = statSync(last).size;
  truncateSync(last, size - 100); // the last record cut mid-payload
  queue = await open(dir, { segmentBytesMax: 4_096 }, 1);
  t.equal(queue.lastOffset(0), 19, 'the cut record is gone, the rest is there');
  const reader = await queue.reader('g', 0);
  t.same(reader.take(100, 1 << 20).map((d) => new DataView(d.payload.buffer, d.payload.byteOffset).getUint32(0)), Array.from({ length: 19 }, (_, i) => i));
  t.equal(await queue.append(0, payloadOf(99, 10)), 20, 'appending continues after the truncation');
  await queue.close();
  // Flip a byte in the first (closed) segment, drop its index: opening refuses.
  const first = join(pdir, segments[0]!);
  const bytes = readFileSync(first);
  bytes[100] = bytes[100]! ^ 0xff;
  writeFileSync(first, bytes);
  rmSync(first.replace(/\.log$/, '.index'));
  await t.rejects(open(dir, { segmentBytesMax: 4_096 }, 1), /CRAFT_STORE_CORRUPT|bad record .* closed segment/);
});

t.test('kill -9 while appending at full speed: every acknowledged append is there after reopening', async (t) => {
  for (const layout of ['segments', 'file-per-message'] as const) {
    const dir = tempDir(t);
    const worker = fileURLToPath(new URL('./helpers/file-log-writer.js', import.meta.url));
    const child = spawn(process.execPath, [worker, dir, layout], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acked = 0;
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      const lines = text.split('\n');
      text = lines.pop()!;
      for (const line of lines) if (line !== '') acked = Math.max(acked, Number(line));
    });
    // Once it is appending (its start takes a while on a busy machine), at a random moment.
    await eventually(() => acked > 0, 30_000, 20);
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 500));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    t.ok(acked > 0, `${layout}: ${acked} appends acknowledged before the kill`);
    const queue = await open(dir, { layout }, 1);
    t.ok(queue.lastOffset(0) >= acked, `${layout}: offset ${queue.lastOffset(0)} ≥ acknowledged ${acked}`);
    const reader = await queue.reader('check', 0);
    let seen = 0;
    for (;;) {
      const got = reader.take(1_000, 1 << 24);
      if (got.length === 0) break;
      for (const d of got) {
        if (new DataView(d.payload.buffer, d.payload.byteOffset).getUint32(0) !== d.offset - 1) throw new Error(`offset ${d.offset} holds another message`);
        seen = d.offset;
      }
    }
    t.equal(seen, queue.lastOffset(0), `${layout}: every record reads back, in order, intact`);
    await queue.close();
  }
});

t.test('the platform runs on the file log: writes acknowledged are stored, and again after the queue actor restarts', async (t) => {
  const platform = await startPlatform(t, { plugins: { 'ingestion.server': 'craft0.http', 'queue.log': 'queue.file-log' }, faults: true });
  const storage = new StorageClient(platform.bus);
  const post = async (i: number): Promise<void> => {
    const r = await fetch(`http://127.0.0.1:${platform.ingestionPort}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ metrics: Array.from({ length: 10 }, (_, j) => ({ name: 'filelog', value: j, tags: { i: String(i) }, timestamp: 1_000 + j })) }) });
    if (r.status !== 200) throw new Error(`write ${i}: ${r.status} ${await r.text()}`);
    await r.text();
  };
  for (let i = 0; i < 50; i++) await post(i);
  const stored = async (): Promise<number> => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: 'filelog' }], startMs: 0, endMs: Number.MAX_SAFE_INTEGER })).samples;
  t.ok(await eventually(async () => (await stored()) === 500, 20_000), '500 samples stored');
  platform.bus.publish(killSubject('queue'), {});
  t.ok(await eventually(() => platform.processStatus().tree.children?.find((c) => c.id === 'queue')?.restarts === 1, 20_000), 'the queue actor restarted');
  await eventually(async () => {
    try {
      await post(50);
      return true;
    } catch {
      return false;
    }
  }, 20_000, 200);
  for (let i = 51; i < 60; i++) await post(i);
  t.ok(await eventually(async () => (await stored()) === 600, 20_000), 'and the writes after the restart (600 samples), none twice');
});

t.test('every message consumed and trimmed, then reopened: offsets go on where they were (both layouts)', async (t) => {
  for (const layout of ['segments', 'file-per-message'] as const) {
    const dir = tempDir(t);
    let queue = await open(dir, { layout, segmentBytesMax: 4_096 }, 1);
    for (let i = 0; i < 30; i++) await queue.append(0, payloadOf(i, 300));
    const reader = await queue.reader('storage', 0);
    const got = reader.take(100, 1 << 20);
    await reader.commit(got.at(-1)!.offset);
    await queue.trim(0, 30);
    await queue.close();
    queue = await open(dir, { layout, segmentBytesMax: 4_096 }, 1);
    t.equal(queue.lastOffset(0), 30, `${layout}: the last offset survives a full trim`);
    t.equal(await queue.append(0, payloadOf(30, 10)), 31, `${layout}: the next append is 31`);
    const after = await queue.reader('storage', 0);
    t.same(after.take(10, 1 << 20).map((d) => d.offset), [31], `${layout}: the group reads on from its commit`);
    await queue.close();
  }
});
