/**
 * Event sourcing: a journal replayed from JetStream (with or without snapshots) folds to
 * exactly the state the live journal had; a second writer is refused.
 */
import t from 'tap';
import fc from 'fast-check';
import { Journal, type JournalSpec } from '../core/journal/journal.js';
import { startNats, connectBus } from './helpers/nats.js';
import { applyControlEvent, type ControlEvent, type ControlState } from '../actors/control.js';

type CounterEvent = { type: 'add'; key: string; amount: number } | { type: 'reset'; key: string };
type CounterState = Record<string, number>;

const spec = (name: string, snapshotEvery: number): JournalSpec<CounterState, CounterEvent> => ({
  name,
  snapshotEvery,
  initial: () => ({}),
  apply: (state, event) => (event.type === 'add' ? { ...state, [event.key]: (state[event.key] ?? 0) + event.amount } : { ...state, [event.key]: 0 }),
});

t.test('property: replay equals the live state, with and without snapshots', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  let run = 0;
  const event = fc.oneof(
    fc.record({ type: fc.constant('add' as const), key: fc.constantFrom('a', 'b', 'c'), amount: fc.integer({ min: -100, max: 100 }) }),
    fc.record({ type: fc.constant('reset' as const), key: fc.constantFrom('a', 'b', 'c') }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(event, { maxLength: 40 }), fc.integer({ min: 0, max: 7 }), async (events, snapshotEvery) => {
      const name = `prop${run++}`;
      const live = await Journal.open(bus, spec(name, snapshotEvery));
      for (const e of events) await live.append(e);
      const replayed = await Journal.open(bus, spec(name, snapshotEvery));
      const expected = events.reduce(spec(name, 0).apply, {} as CounterState);
      return JSON.stringify(replayed.state) === JSON.stringify(live.state) && JSON.stringify(live.state) === JSON.stringify(expected) && replayed.sequence === events.length;
    }),
    { numRuns: 25 },
  );
  t.pass();
});

t.test('a snapshot bounds replay: only events after it are read', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const live = await Journal.open(bus, spec('snap', 10));
  for (let i = 0; i < 25; i++) await live.append({ type: 'add', key: 'a', amount: 1 });
  const replayed = await Journal.open(bus, spec('snap', 10));
  t.equal(replayed.state.a, 25);
  t.equal(replayed.stats.fromSnapshotSeq, 20);
  t.equal(replayed.stats.eventsReplayed, 5);
});

t.test('concurrent appends from one writer all land, in call order (the queue actor crashed on "wrong last sequence" before)', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const live = await Journal.open(bus, spec('concurrent', 7));
  const states = await Promise.all(Array.from({ length: 50 }, (_, i) => live.append({ type: 'add', key: 'a', amount: i })));
  t.same(states.map((s) => s.a), Array.from({ length: 50 }, (_, i) => (i * (i + 1)) / 2), 'each append saw every earlier one');
  t.equal(live.sequence, 50);
  const replayed = await Journal.open(bus, spec('concurrent', 7));
  t.equal(replayed.state.a, (49 * 50) / 2);
});

t.test('two writers: the stale one is refused instead of interleaving', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const a = await Journal.open(bus, spec('fence', 0));
  const b = await Journal.open(bus, spec('fence', 0));
  await a.append({ type: 'add', key: 'a', amount: 1 });
  await t.rejects(b.append({ type: 'add', key: 'a', amount: 1 }));
});

t.test('control journal: the last event per slot is the choice; swaps are counted', async (t) => {
  const events: ControlEvent[] = [
    { type: 'configured', slot: 'storage.engine', plugin: 'storage.lsm', options: {}, atMs: 1 },
    { type: 'swapped', slot: 'storage.engine', plugin: 'craft0.jsonl-store', options: {}, from: 'storage.lsm', atMs: 2 },
    { type: 'configured', slot: 'queue.log', plugin: 'queue.jetstream', options: {}, atMs: 3 },
  ];
  const state = events.reduce(applyControlEvent, { choices: {}, configured: {}, swaps: 0 } as ControlState);
  t.equal(state.choices['storage.engine']?.id, 'craft0.jsonl-store');
  t.equal(state.configured['storage.engine']?.id, 'storage.lsm');
  t.equal(state.swaps, 1);
});
