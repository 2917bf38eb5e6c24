/**
 * The own LSM's durability and internals: a torn or corrupt WAL tail is cut off and what came
 * before it survives; a writer killed with SIGKILL at a random moment loses no acknowledged
 * batch and leaves every batch whole (for both KV engines); synced batches that arrive
 * together share one fsync; snapshots hold across flushes and compactions and their tables
 * are deleted once they close; leftovers of a crashed flush are cleaned up; the bloom filter
 * has no false negatives and about the false-positive rate its bits per key promise.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginRegistry } from '../core/plugins/registry.js';
import { createLogger } from '../core/log.js';
import { stopChild } from '../core/child-process.js';
import type { KvEngine, KvOp } from '../core/slots/kv.js';
import type { LsmEngine } from '../plugins/storage/kv-lsm/engine.js';
import { BloomBuilder, BloomFilter } from '../plugins/storage/kv-lsm/bloom.js';
import { compareBytes } from '../plugins/storage/kv-lsm/bytes.js';
import { tempDir } from './helpers/nats.js';
import { KEYS_PER_BATCH, WRITERS, batchKey, batchValue, lastKey } from './helpers/kv-crash-writer.js';

const WRITER = fileURLToPath(new URL('./helpers/kv-crash-writer.js', import.meta.url));
const { registry } = await PluginRegistry.load();
const log = createLogger('test');
const encode = (text: string): Uint8Array => Buffer.from(text);
const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString());

async function openLsm(dir: string, options: Record<string, unknown> = {}): Promise<LsmEngine> {
  const engine = registry.instantiate('storage.kv', 'kv.lsm', { dataDir: dir, log }, options) as LsmEngine;
  await engine.open();
  return engine;
}

const filesOf = (dir: string, suffix: string): string[] => readdirSync(dir).filter((name) => name.endsWith(suffix)).sort();
const batchOps = (n: number): KvOp[] => [0, 1, 2].map((j) => ({ type: 'put', key: encode(`b${n}/k${j}`), value: encode(`value ${n}.${j}`) }));

async function presentBatches(engine: KvEngine, batches: number): Promise<number[]> {
  const present: number[] = [];
  for (let n = 0; n < batches; n++) {
    const values = await engine.getMany(batchOps(n).map((op) => op.key));
    const found = values.filter((value, j) => text(value) === `value ${n}.${j}`).length;
    if (found !== 0 && found !== 3) throw new Error(`batch ${n} is partly present (${found} of 3 keys)`);
    if (found === 3) present.push(n);
  }
  return present;
}

/** Ten synced batches in one log file, engine closed; returns the log's path and size. */
async function tenBatches(t: Test): Promise<{ dir: string; wal: string; bytes: number }> {
  const dir = join(tempDir(t), 'lsm');
  const engine = await openLsm(dir);
  for (let n = 0; n < 10; n++) await engine.batch(batchOps(n), { sync: true });
  await engine.close();
  const logs = filesOf(dir, '.wal');
  t.equal(logs.length, 1, 'one log file');
  const wal = join(dir, logs[0]!);
  return { dir, wal, bytes: statSync(wal).size };
}

t.test('a torn WAL tail is truncated on open and every record before it survives', async (t) => {
  const { dir, wal, bytes } = await tenBatches(t);
  // A crash in the middle of an append: a header that promises 100 payload bytes, then 10 of them.
  const torn = Buffer.alloc(18);
  torn.writeUInt32LE(100, 0);
  appendFileSync(wal, torn);
  let engine = await openLsm(dir);
  t.equal(engine.stats().walBytesTruncated, 18, 'the 18 torn bytes were cut');
  t.equal(engine.stats().walRecordsReplayed, 10, 'the ten whole records were replayed');
  t.equal(statSync(wal).size, bytes, 'the file is back to its last good record');
  t.same(await presentBatches(engine, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every batch before the tear is there');
  await engine.batch(batchOps(10), { sync: true });
  await engine.close();
  engine = await openLsm(dir);
  t.equal(engine.stats().walBytesTruncated, 0, 'appends after the cut follow good records: nothing to cut the next time');
  t.same((await presentBatches(engine, 11)).length, 11, 'the batch written after recovery is there too');
  await engine.close();
});

t.test('a corrupt last record is dropped whole (its batch absent), the records before it kept', async (t) => {
  const { dir, wal, bytes } = await tenBatches(t);
  const file = readFileSync(wal);
  file[file.length - 2]! ^= 0x40; // a bit flip inside the last record's payload: its CRC no longer matches
  writeFileSync(wal, file);
  const engine = await openLsm(dir);
  t.same(await presentBatches(engine, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'batches 0–8 survive, batch 9 is absent as a whole');
  t.ok(engine.stats().walBytesTruncated > 0 && statSync(wal).size < bytes, 'the corrupt record was cut off');
  await engine.close();
});

t.test('a zero-filled tail (blocks allocated, never written) is cut off', async (t) => {
  const { dir, wal, bytes } = await tenBatches(t);
  appendFileSync(wal, Buffer.alloc(4096));
  const engine = await openLsm(dir);
  t.equal(statSync(wal).size, bytes, 'zeros are not a record: length 0 with CRC 0 does not check out');
  t.equal((await presentBatches(engine, 10)).length, 10, 'every batch is there');
  await engine.close();
});

/** Runs the crash writer until a random moment after its first ack, kills it with SIGKILL, returns the acks it printed. */
async function runAndKill(t: Test, id: string, dir: string, options: Record<string, unknown>, round: number): Promise<Set<string>> {
  const child = spawn(process.execPath, [WRITER, id, dir, JSON.stringify(options), String(round)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } });
  t.teardown(() => stopChild(child));
  const acks = new Set<string>();
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('ack ')) acks.add(line.slice(4));
        if (timer === undefined && line.startsWith('ack ')) timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 100 + Math.floor(Math.random() * 500));
      }
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited with ${code ?? signal} before it was killed`))));
  });
  clearTimeout(timer);
  return acks;
}

const CRASH_TARGETS: { id: string; options: Record<string, unknown> }[] = [
  { id: 'kv.level', options: {} },
  // Small memtables, so that the kill also lands in flushes and compactions.
  { id: 'kv.lsm', options: { memtableBytes: 32 * 1024, blockBytes: 512, compactionTrigger: 2 } },
];

for (const { id, options } of CRASH_TARGETS) {
  t.test(`${id}: kill -9 at a random moment keeps every acknowledged batch, and every batch is all or nothing`, async (t) => {
    const dir = join(tempDir(t), id);
    const rounds = 2;
    const acked: Set<string>[] = [];
    for (let round = 0; round < rounds; round++) acked.push(await runAndKill(t, id, dir, options, round));
    const engine = registry.instantiate('storage.kv', id, { dataDir: dir, log }, options);
    await engine.open();
    t.teardown(() => engine.close());
    for (let round = 0; round < rounds; round++) {
      t.ok(acked[round]!.size > 0, `round ${round}: the writer acknowledged ${acked[round]!.size} batches before the kill`);
      for (let w = 0; w < WRITERS; w++) {
        // Writer w's batches: a prefix 0..present-1, each whole, then nothing.
        let present = 0;
        let problem: string | undefined;
        for (let n = 0; problem === undefined; n++) {
          const keys = Array.from({ length: KEYS_PER_BATCH }, (_, j) => batchKey(round, w, n, j));
          const values = await engine.getMany(keys);
          const whole = values.filter((value, j) => value !== undefined && Buffer.from(value).equals(batchValue(round, w, n, j))).length;
          if (whole === 0) break;
          if (whole !== KEYS_PER_BATCH) problem = `batch ${n} has ${whole} of ${KEYS_PER_BATCH} keys`;
          present = n + 1;
        }
        t.equal(problem, undefined, `round ${round} writer ${w}: no batch is partial`);
        const ackedHere = [...acked[round]!].filter((ack) => ack.startsWith(`${round}.${w}.`)).map((ack) => Number(ack.split('.')[2]));
        const highestAck = Math.max(-1, ...ackedHere);
        t.ok(present > highestAck, `round ${round} writer ${w}: every acknowledged batch is there (present 0..${present - 1}, acknowledged up to ${highestAck})`);
        t.equal(text(await engine.get(lastKey(round, w))), present === 0 ? undefined : String(present - 1), `round ${round} writer ${w}: its last-key names its last present batch`);
        const after = await engine.getMany(Array.from({ length: KEYS_PER_BATCH }, (_, j) => batchKey(round, w, present, j)));
        t.ok(after.every((value) => value === undefined), `round ${round} writer ${w}: nothing of the batch after the last present one`);
      }
    }
  });
}

t.test('synced batches that arrive while an fsync runs share the next fsync (group commit)', async (t) => {
  const dir = join(tempDir(t), 'lsm');
  let engine = await openLsm(dir);
  const batches = 64;
  await Promise.all(Array.from({ length: batches }, (_, n) => engine.batch(batchOps(n), { sync: true })));
  const stats = engine.stats();
  t.equal(stats.syncedBatches, batches, `${batches} synced batches`);
  t.ok(stats.walSyncs < batches / 4, `they took ${stats.walSyncs} fsyncs in ${stats.walGroups} write rounds`);
  await engine.close();
  engine = await openLsm(dir);
  t.equal((await presentBatches(engine, batches)).length, batches, 'every batch of the groups is durable');
  await engine.close();
});

t.test('a snapshot sees its point in time across overwrites, deletes, flushes and compactions; its tables go once it closes', async (t) => {
  const dir = join(tempDir(t), 'lsm');
  const engine = await openLsm(dir, { memtableBytes: 4096, blockBytes: 256, compactionTrigger: 2 });
  const keys = 200;
  const put = (round: number): KvOp[] => Array.from({ length: keys }, (_, k) => ({ type: 'put', key: encode(`key${String(k).padStart(4, '0')}`), value: encode(`round ${round}`) }));
  await engine.batch(put(0));
  // The next write finds the memtable full and freezes it: round 0 goes into a table before the snapshot.
  await engine.batch([{ type: 'put', key: encode('other'), value: encode('x') }]);
  await engine.settle();
  t.ok(engine.stats().tables > 0, 'round 0 is in a table');
  const snapshot = engine.snapshot();
  for (let round = 1; round <= 10; round++) await engine.batch(put(round));
  await engine.batch(Array.from({ length: keys / 2 }, (_, k) => ({ type: 'del', key: encode(`key${String(k * 2).padStart(4, '0')}`) })));
  await engine.settle();
  const during = engine.stats();
  t.ok(during.flushes >= 10 && during.compactions >= 5, `flushes (${during.flushes}) and compactions (${during.compactions}) ran while the snapshot was open`);
  let seen = 0;
  let wrong = 0;
  for await (const chunk of snapshot.iterate({ gte: encode('key'), lt: encode('kez') }, 37)) {
    for (const [, value] of chunk) {
      seen += 1;
      if (text(value) !== 'round 0') wrong += 1;
    }
  }
  t.equal(seen, keys, 'the snapshot still lists every key');
  t.equal(wrong, 0, 'with the values it had when the snapshot was taken');
  t.equal(text(await snapshot.get(encode('key0000'))), 'round 0', 'a point read through the snapshot too');
  t.equal(await engine.get(encode('key0000')), undefined, 'while the engine itself has it deleted');
  t.equal(text(await engine.get(encode('key0001'))), 'round 10', 'and the newest value of the others');
  const heldTables = filesOf(dir, '.sst').length;
  await snapshot.close();
  await engine.settle();
  const liveTables = engine.stats().tables;
  t.ok(heldTables > liveTables, `the snapshot held ${heldTables} table files; once closed, only the ${liveTables} live ones remain`);
  t.equal(filesOf(dir, '.sst').length, liveTables, 'the obsolete tables were deleted');
  await t.rejects(snapshot.get(encode('key0000')), { name: 'KvClosedError' }, 'a closed snapshot refuses reads');
  await engine.close();
});

t.test('open deletes what a crashed flush or compaction left behind and keeps the data', async (t) => {
  const dir = join(tempDir(t), 'lsm');
  let engine = await openLsm(dir, { memtableBytes: 2048 });
  for (let n = 0; n < 40; n++) await engine.batch(batchOps(n));
  await engine.settle();
  t.ok(engine.stats().flushes > 0, 'some batches are in tables');
  await engine.close();
  writeFileSync(join(dir, '999999.sst'), 'a table the manifest never named');
  writeFileSync(join(dir, 'MANIFEST.tmp'), 'a manifest that was never renamed into place');
  writeFileSync(join(dir, '000000.wal'), 'a log older than the manifest\u2019s logNumber');
  engine = await openLsm(dir, { memtableBytes: 2048 });
  t.equal(engine.stats().orphansDeleted, 2, 'the orphan table and the old log were deleted');
  t.notOk(readdirSync(dir).includes('MANIFEST.tmp'), 'so was the temporary manifest');
  t.equal((await presentBatches(engine, 40)).length, 40, 'every batch is there');
  await engine.close();
});

t.test('a corrupt table is refused on open with KvCorruptionError', async (t) => {
  const dir = join(tempDir(t), 'lsm');
  const engine = await openLsm(dir, { memtableBytes: 2048 });
  for (let n = 0; n < 40; n++) await engine.batch(batchOps(n));
  await engine.settle();
  await engine.close();
  const table = join(dir, filesOf(dir, '.sst')[0]!);
  const bytes = readFileSync(table);
  bytes[bytes.length - 1]! ^= 0xff; // the magic
  writeFileSync(table, bytes);
  const again = registry.instantiate('storage.kv', 'kv.lsm', { dataDir: dir, log }, { memtableBytes: 2048 });
  await t.rejects(again.open(), { name: 'KvCorruptionError' });
});

t.test('tombstones stay while an older table holds their key, and go when the merge reaches the oldest table', async (t) => {
  const dir = join(tempDir(t), 'lsm');
  const engine = await openLsm(dir, { memtableBytes: 8192 });
  const keys = Array.from({ length: 500 }, (_, k) => encode(`key${k}`));
  await engine.batch(keys.map((key) => ({ type: 'put', key, value: Buffer.alloc(100, 1) })));
  for (let i = 0; i < keys.length; i += 50) await engine.batch(keys.slice(i, i + 50).map((key) => ({ type: 'del', key })));
  // Further writes push the deletes through flushes into tables of their own.
  for (let n = 0; n < 100; n++) await engine.batch([{ type: 'put', key: encode(`z${n}`), value: Buffer.alloc(100, 2) }]);
  await engine.settle();
  const before = engine.stats();
  t.ok(before.tables >= 2, `${before.tables} tables: the puts' and the deletes'`);
  t.equal(before.tombstonesDropped, 0, 'no tombstone was dropped: the table with the puts is older than every merge so far');
  t.same(await engine.getMany(keys.slice(0, 3)), [undefined, undefined, undefined], 'the tombstones hide the older values');
  await engine.compactAll();
  const after = engine.stats();
  t.equal(after.tables, 1, 'one table left');
  t.equal(after.tombstonesDropped, keys.length, 'every tombstone went in the merge that included the oldest table');
  t.ok(after.tableBytes < before.tableBytes / 2, `tables shrank from ${before.tableBytes} to ${after.tableBytes} bytes`);
  t.same(await engine.getMany(keys.slice(0, 3)), [undefined, undefined, undefined], 'deleted keys stay deleted');
  t.equal((await engine.get(encode('z7')))?.length, 100, 'the keys written since are there');
  await engine.close();
});

t.test('limits and closed engines fail with named errors', async (t) => {
  const dir = join(tempDir(t), 'lsm');
  const engine = await openLsm(dir);
  await t.rejects(engine.batch([{ type: 'put', key: Buffer.alloc(64 * 1024 + 1), value: encode('x') }]), { name: 'KvLimitError', limit: 'KEY_BYTES_MAX' });
  t.throws(() => registry.instantiate('storage.kv', 'kv.lsm', { dataDir: dir, log }, { memtableBytes: 10 }), { code: 'CRAFT_PLUGIN_OPTIONS' }, 'options outside their bounds are refused');
  const snapshot = engine.snapshot();
  const iteration = engine.iterate({}, 1)[Symbol.asyncIterator]();
  await engine.batch([{ type: 'put', key: encode('a'), value: encode('1') }, { type: 'put', key: encode('b'), value: encode('2') }]);
  await engine.close();
  await t.rejects(engine.get(encode('a')), { name: 'KvClosedError' });
  await t.rejects(engine.batch([{ type: 'del', key: encode('a') }]), { name: 'KvClosedError' });
  await t.rejects(snapshot.get(encode('a')), { name: 'KvClosedError' }, 'closing the engine ends its snapshots');
  await t.rejects(iteration.next(), { name: 'KvClosedError' }, 'and iterations not yet started');
});

t.test('bloom filter: no false negatives, false positives near 0.6185^bits', async (t) => {
  for (const bitsPerKey of [6, 10]) {
    const builder = new BloomBuilder(bitsPerKey);
    const keys = 20_000;
    for (let k = 0; k < keys; k++) builder.add(encode(`member-${k}`));
    const filter = BloomFilter.decode(builder.finish());
    let missed = 0;
    for (let k = 0; k < keys; k++) if (!filter.mayContain(encode(`member-${k}`))) missed += 1;
    let falsePositives = 0;
    const probes = 50_000;
    for (let k = 0; k < probes; k++) if (filter.mayContain(encode(`stranger-${k}`))) falsePositives += 1;
    const rate = falsePositives / probes;
    const promised = 0.6185 ** bitsPerKey;
    t.equal(missed, 0, `${bitsPerKey} bits/key: every added key is reported present`);
    t.ok(rate < promised * 1.5, `${bitsPerKey} bits/key: false-positive rate ${(rate * 100).toFixed(2)} % (theory ${(promised * 100).toFixed(2)} %)`);
  }
});

t.test('compareBytes orders exactly as Buffer.compare, short keys (compared in JavaScript) and long ones alike', async (t) => {
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ minLength: 60, maxLength: 80 }).map((tail) => Buffer.concat([Buffer.alloc(70, 0xab), tail])));
  fc.assert(
    fc.property(bytes, bytes, (a, b) => {
      if (Math.sign(compareBytes(a, b)) !== Buffer.compare(a, b)) throw new Error(`compareBytes(${hexOf(a)}, ${hexOf(b)})`);
      return compareBytes(a, a) === 0;
    }),
    { numRuns: 2_000 },
  );
  t.pass('2,000 generated pairs agree');
});

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
