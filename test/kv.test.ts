/**
 * Both `storage.kv` engines against a model: a Map of hex key → bytes, sorted for ranges.
 * fast-check generates sequences of batches (puts and deletes, some synced), point reads,
 * range reads with random bounds (including gt and gte together, where gte wins), reverse,
 * limit and chunk size, loops broken after the first chunk, snapshots read after later
 * writes, and close + reopen. Keys come from a small alphabet of bytes that includes 0x00,
 * 0x7f, 0x80 and 0xff, so they collide, are prefixes of each other and test unsigned order.
 *
 * kv.lsm runs with tiny memtables and blocks, so that flushes, compactions and tombstone
 * drops happen inside the runs; the test checks from its stats that they did.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { join } from 'node:path';
import { PluginRegistry } from '../core/plugins/registry.js';
import { createLogger } from '../core/log.js';
import type { KvEngine, KvEntry, KvRange, KvReader, KvSnapshot } from '../core/slots/kv.js';
import type { LsmEngine, LsmStats } from '../plugins/storage/kv-lsm/engine.js';
import { tempDir } from './helpers/nats.js';

const { registry } = await PluginRegistry.load();

/** Options that make the LSM flush every few batches and compact every few flushes. */
const TINY_LSM = { memtableBytes: 1024, blockBytes: 96, bloomBitsPerKey: 6, compactionTrigger: 2 };
const ENGINES: { id: string; options: Record<string, unknown>; runs: number }[] = [
  { id: 'kv.level', options: {}, runs: 60 },
  { id: 'kv.lsm', options: TINY_LSM, runs: 100 },
];

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const KEY_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff];
const keyArbitrary = fc.array(fc.constantFrom(...KEY_BYTES), { maxLength: 3 }).map((bytes) => Uint8Array.from(bytes));
const valueArbitrary = fc.uint8Array({ maxLength: 48 });

const rangeArbitrary: fc.Arbitrary<KvRange> = fc
  .record(
    {
      gt: keyArbitrary,
      gte: keyArbitrary,
      lt: keyArbitrary,
      lte: keyArbitrary,
      reverse: fc.boolean(),
      limit: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(-1)),
    },
    { requiredKeys: [] },
  )
  .map((range) => range as KvRange);

type Command =
  | { kind: 'batch'; ops: { key: Uint8Array; value: Uint8Array | null }[]; sync: boolean }
  | { kind: 'get'; keys: Uint8Array[]; many: boolean; viaSnapshot: boolean }
  | { kind: 'iterate'; range: KvRange; chunk: number; viaSnapshot: boolean; breakEarly: boolean }
  | { kind: 'snapshot' }
  | { kind: 'reopen' };

const opArbitrary = fc.record({ key: keyArbitrary, value: fc.option(valueArbitrary, { freq: 3, nil: null }) });
const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('batch' as const), ops: fc.array(opArbitrary, { minLength: 1, maxLength: 24 }), sync: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), keys: fc.array(keyArbitrary, { minLength: 1, maxLength: 6 }), many: fc.boolean(), viaSnapshot: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('iterate' as const), range: rangeArbitrary, chunk: fc.integer({ min: 1, max: 7 }), viaSnapshot: fc.boolean(), breakEarly: fc.integer({ min: 0, max: 3 }).map((n) => n === 0) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

type Model = Map<string, Uint8Array>;

/** What a range read of the model yields: bounds as LevelDB reads them (gte over gt, lte over lt), then order, then limit. */
function expectedRange(model: Model, range: KvRange): [string, string][] {
  const lower = range.gte ?? range.gt;
  const upper = range.lte ?? range.lt;
  const lowerInclusive = range.gte !== undefined;
  const upperInclusive = range.lte !== undefined;
  const entries = [...model.entries()]
    .map(([key, value]) => ({ key: Buffer.from(key, 'hex'), value }))
    .filter(({ key }) => {
      if (lower !== undefined) {
        const order = Buffer.compare(key, lower);
        if (order < 0 || (order === 0 && !lowerInclusive)) return false;
      }
      if (upper !== undefined) {
        const order = Buffer.compare(key, upper);
        if (order > 0 || (order === 0 && !upperInclusive)) return false;
      }
      return true;
    })
    .sort((a, b) => Buffer.compare(a.key, b.key));
  if (range.reverse === true) entries.reverse();
  const limited = range.limit === undefined || range.limit < 0 ? entries : entries.slice(0, range.limit);
  return limited.map(({ key, value }) => [hex(key), hex(value)]);
}

function same(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

async function readRange(reader: KvReader, range: KvRange, chunk: number, breakEarly: boolean): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const entries of reader.iterate(range, chunk)) {
    if (entries.length === 0 || entries.length > chunk) throw new Error(`chunk of ${entries.length} entries, asked for at most ${chunk}`);
    out.push(...entries.map(([key, value]: KvEntry): [string, string] => [hex(key), hex(value)]));
    if (breakEarly) break;
  }
  return out;
}

const isLsm = (engine: KvEngine): engine is KvEngine & Pick<LsmEngine, 'stats' | 'settle'> => typeof (engine as Partial<LsmEngine>).stats === 'function';

function addStats(total: Partial<Record<keyof LsmStats, number>>, stats: LsmStats): void {
  for (const key of ['flushes', 'compactions', 'tombstonesDropped', 'bloomNegatives', 'walSyncs'] as const) total[key] = (total[key] ?? 0) + stats[key];
}

async function checkModel(t: Test, id: string, options: Record<string, unknown>, runs: number): Promise<void> {
  const totals: Partial<Record<keyof LsmStats, number>> = {};
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(commandArbitrary, { minLength: 1, maxLength: 60, size: 'medium' }), async (commands) => {
      const dir = join(tempDir(t), `run${run++}`);
      const open = async (): Promise<KvEngine> => {
        const engine = registry.instantiate('storage.kv', id, { dataDir: dir, log: createLogger('test') }, options);
        await engine.open();
        return engine;
      };
      let engine = await open();
      const model: Model = new Map();
      let snapshot: { reader: KvSnapshot; model: Model } | undefined;
      const closeSnapshot = async (): Promise<void> => {
        await snapshot?.reader.close();
        snapshot = undefined;
      };
      try {
        for (const [step, command] of commands.entries()) {
          const at = `step ${step} (${command.kind})`;
          switch (command.kind) {
            case 'batch': {
              await engine.batch(
                command.ops.map((op) => (op.value === null ? { type: 'del', key: op.key } : { type: 'put', key: op.key, value: op.value })),
                { sync: command.sync },
              );
              for (const op of command.ops) {
                if (op.value === null) model.delete(hex(op.key));
                else model.set(hex(op.key), op.value);
              }
              break;
            }
            case 'get': {
              const via = command.viaSnapshot && snapshot !== undefined ? snapshot : { reader: engine, model };
              const expected = command.keys.map((key) => {
                const value = via.model.get(hex(key));
                return value === undefined ? null : hex(value);
              });
              const actual = command.many ? await via.reader.getMany(command.keys) : await Promise.all(command.keys.map((key) => via.reader.get(key)));
              same(
                actual.map((value) => (value === undefined ? null : hex(value))),
                expected,
                `${at} ${command.many ? 'getMany' : 'get'}${via.reader === engine ? '' : ' via snapshot'}`,
              );
              break;
            }
            case 'iterate': {
              const via = command.viaSnapshot && snapshot !== undefined ? snapshot : { reader: engine, model };
              const actual = await readRange(via.reader, command.range, command.chunk, command.breakEarly);
              const expected = expectedRange(via.model, command.range);
              same(actual, command.breakEarly ? expected.slice(0, command.chunk) : expected, `${at} iterate ${JSON.stringify(command.range)}`);
              break;
            }
            case 'snapshot':
              await closeSnapshot();
              snapshot = { reader: engine.snapshot(), model: new Map(model) };
              break;
            case 'reopen':
              await closeSnapshot();
              if (isLsm(engine)) addStats(totals, engine.stats());
              await engine.close();
              engine = await open();
              break;
          }
        }
        if (snapshot !== undefined) same(await readRange(snapshot.reader, {}, 1000, false), expectedRange(snapshot.model, {}), 'final scan via snapshot');
        await closeSnapshot();
        same(await readRange(engine, {}, 1000, false), expectedRange(model, {}), 'final scan');
        if (isLsm(engine)) {
          await engine.settle();
          same(engine.stats().openViews, 0, 'open views once every loop ended and the snapshot closed');
          addStats(totals, engine.stats());
        }
        if (model.size > 0 && (await engine.bytesOnDisk()) <= 0) throw new Error('bytesOnDisk is 0 with data stored');
        await engine.close();
        engine = await open();
        same(await readRange(engine, {}, 1000, false), expectedRange(model, {}), 'scan after the last reopen');
        same(await readRange(engine, { reverse: true }, 3, false), expectedRange(model, { reverse: true }), 'reverse scan after the last reopen');
      } finally {
        await closeSnapshot().catch(() => undefined);
        await engine.close({ destroy: true });
      }
    }),
    { numRuns: runs },
  );
  t.pass(`${runs} generated command sequences equal the model`);
  if (id === 'kv.lsm') {
    t.ok((totals.flushes ?? 0) > runs, `memtables were flushed during the runs (${totals.flushes})`);
    t.ok((totals.compactions ?? 0) > runs, `tables were compacted during the runs (${totals.compactions})`);
    t.ok((totals.tombstonesDropped ?? 0) > 0, `compactions dropped tombstones (${totals.tombstonesDropped})`);
    t.ok((totals.bloomNegatives ?? 0) > 0, `bloom filters spared block reads (${totals.bloomNegatives})`);
  }
}

for (const { id, options, runs } of ENGINES) {
  t.test(`${id} equals the model under generated batches, reads, ranges, snapshots and reopens`, (t) => checkModel(t, id, options, runs));
}

t.test('both engines agree on an empty key, an empty value, and keys that are prefixes of each other', async (t) => {
  for (const { id, options } of ENGINES) {
    const engine = registry.instantiate('storage.kv', id, { dataDir: join(tempDir(t), id), log: createLogger('test') }, options);
    await engine.open();
    const keys = [[], [0], [0, 0], [0, 1], [1], [0xff], [0xff, 0]].map((bytes) => Uint8Array.from(bytes));
    await engine.batch(keys.map((key, i) => ({ type: 'put', key, value: i === 1 ? new Uint8Array(0) : Uint8Array.of(i) })));
    const listed: string[] = [];
    for await (const chunk of engine.iterate()) listed.push(...chunk.map(([key]) => hex(key)));
    t.same(listed, ['', '00', '0000', '0001', '01', 'ff', 'ff00'], `${id}: unsigned byte order, a prefix first`);
    t.same(await engine.get(Uint8Array.of(0)), new Uint8Array(0), `${id}: an empty value reads back as empty, not absent`);
    t.same(await engine.get(new Uint8Array(0)), Uint8Array.of(0), `${id}: the empty key is a key`);
    const value = (await engine.get(Uint8Array.of(1)))!;
    value[0] = 99;
    t.same(await engine.get(Uint8Array.of(1)), Uint8Array.of(4), `${id}: returned bytes are the caller's (changing them changes nothing stored)`);
    const input = Uint8Array.of(7);
    await engine.batch([{ type: 'put', key: Uint8Array.of(2), value: input }]);
    input[0] = 8;
    t.same(await engine.get(Uint8Array.of(2)), Uint8Array.of(7), `${id}: the engine keeps its own copy of written bytes`);
    await engine.close({ destroy: true });
  }
});
