/**
 * Consumer groups over NATS (Craft #2 phase 2): the queue actor's `queue.consumer-groups`
 * coordinator and `GroupMember` clients, on a real nats-server. Members join, heartbeat,
 * crash (stop heartbeating) and leave; the properties: once stable, every partition is owned by
 * exactly one live member; a commit from a stale generation is refused; nothing produced is
 * lost across rebalances (at least once).
 */
import t from 'tap';
import fc from 'fast-check';
import { Bus } from '../core/nats/bus.js';
import { GroupMember } from '../core/queue/member.js';
import { QueueClient, isFenced, type FetchedDelivery } from '../core/queue/protocol.js';
import type { GroupDescription } from '../core/slots/queue.js';
import { eventually } from './helpers/nats.js';
import { startPlatform } from './helpers/platform.js';
import type { Test } from 'tap';

const PARTITIONS = 6;
const SESSION_MS = 800;
const HEARTBEAT_MS = 150;

/** Phase 2 keeps groups in the coordinator's memory, phase 3 in a KV bucket; the properties hold for both. */
const COORDINATORS = ['queue.consumer-groups', 'queue.kv-leases'] as const;

async function queuePlatform(t: Test, assignor: string, coordinator: string = COORDINATORS[0]) {
  const platform = await startPlatform(t, {
    actors: ['control', 'queue'],
    queue: { partitions: PARTITIONS },
    plugins: { 'queue.log': 'craft0.memory-queue', 'queue.groups': { id: coordinator, options: { assignor, sessionTimeoutMs: SESSION_MS, heartbeatIntervalMs: HEARTBEAT_MS } } },
  });
  const bus = await Bus.connect(platform.natsUrl, 'members', platform.natsIdentity('admin'));
  t.teardown(() => bus.close());
  return { platform, bus, queue: new QueueClient(bus) };
}

async function groupState(queue: QueueClient, group: string): Promise<GroupDescription | undefined> {
  return (await queue.info()).groupStates.find((g) => g.group === group);
}

/** Stable, with exactly these members, every partition owned by exactly one of them. */
function settledOn(state: GroupDescription | undefined, live: string[]): boolean {
  if (state === undefined || state.phase !== 'stable') return false;
  if (JSON.stringify(state.members) !== JSON.stringify([...live].sort())) return false;
  for (let p = 0; p < PARTITIONS; p++) if (!live.includes(state.owners[p]!) || state.owners[p] !== state.target[p]) return live.length === 0;
  return true;
}

for (const [coordinator, assignor] of [[COORDINATORS[0], 'range'], [COORDINATORS[0], 'cooperative-sticky'], [COORDINATORS[1], 'cooperative-sticky']] as const) {
  t.test(`${coordinator}, ${assignor}: members share the partitions; a crashed member's move within its session; nothing produced is lost`, async (t) => {
    const { queue, bus } = await queuePlatform(t, assignor, coordinator);
    const members = ['a', 'b', 'c'].map((id) => new GroupMember(bus, { group: 'g', member: id }));
    for (const m of members) await m.start();
    t.teardown(() => Promise.all(members.map((m) => m.stop({ leave: false }).catch(() => undefined))));
    t.ok(await eventually(async () => settledOn(await groupState(queue, 'g'), ['a', 'b', 'c']), 5_000), 'stable: 3 members, each partition owned once');
    const owned = (): number[] => members.flatMap((m) => m.partitions).sort((x, y) => x - y);
    t.ok(await eventually(() => JSON.stringify(owned()) === '[0,1,2,3,4,5]', 5_000), `the members consume disjoint partitions covering all six (${JSON.stringify(owned())})`);

    // Produce from many clients (so every partition gets messages) while members consume.
    const consumed = new Set<string>();
    let running = true;
    const loops = members.map(async (m) => {
      while (running && !m.stopped) {
        const deliveries: FetchedDelivery[] = await m.poll({ waitMs: 50 }).catch(() => []);
        for (const d of deliveries) consumed.add(new TextDecoder().decode(d.payload));
        await m.commit(deliveries).catch(() => false);
      }
    });
    const produced: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = `m${i}`;
      await queue.append(`client-${i % 17}`, new TextEncoder().encode(id));
      produced.push(id);
      if (i === 100) {
        // b crashes: no leave, no more heartbeats; its partitions move once its session runs out.
        const b = members[1]!;
        const staleGeneration = b.generation;
        await b.stop({ leave: false });
        t.ok(await eventually(async () => settledOn(await groupState(queue, 'g'), ['a', 'c']), SESSION_MS * 4), `b expired; a and c own everything: ${JSON.stringify(await groupState(queue, 'g'))}`);
        const refused = await queue.commit({ group: 'g', member: 'b', generation: staleGeneration, commits: [{ epoch: 1, partition: 0, offset: 1 }] }).then(() => false, (e: unknown) => isFenced(e));
        t.ok(refused, 'a commit from the dead member is fenced');
      }
      if (i === 200) {
        const d = new GroupMember(bus, { group: 'g', member: 'd' });
        members.push(d);
        await d.start();
        loops.push((async () => {
          while (running && !d.stopped) {
            const deliveries = await d.poll({ waitMs: 50 }).catch(() => []);
            for (const x of deliveries) consumed.add(new TextDecoder().decode(x.payload));
            await d.commit(deliveries).catch(() => false);
          }
        })());
      }
    }
    t.ok(await eventually(() => produced.every((id) => consumed.has(id)), 10_000), `all ${produced.length} produced messages consumed (${consumed.size})`);
    t.ok(await eventually(async () => settledOn(await groupState(queue, 'g'), ['a', 'c', 'd']), 5_000), 'stable again with a, c, d');
    running = false;
    await Promise.all(loops);
  });
}

// Found in a loaded CI run (the queue-rebalance scenario's audit group missed 10 % of the samples):
// a fetch the queue answered after the member stopped waiting carried deliveries nobody received,
// and the member's later cumulative commits skipped them. Such a fetch is made here on purpose —
// the member waits 100 ms, the queue's long-poll 1 s, and messages arrive in between.
t.test('a fetch whose answer the member never got loses nothing: the member joins again and gets those deliveries', async (t) => {
  const { queue, bus } = await queuePlatform(t, 'cooperative-sticky');
  const member = new GroupMember(bus, { group: 'lost', member: 'm', fetchTimeoutMs: 100 });
  await member.start();
  t.teardown(() => member.stop().catch(() => undefined));
  t.ok(await eventually(async () => settledOn(await groupState(queue, 'lost'), ['m']), 5_000), 'm owns every partition');
  const encode = (id: string): Uint8Array => new TextEncoder().encode(id);
  const lost = member.poll({ waitMs: 1_000 }).then(() => 'answered', (e: { code?: string }) => e.code);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const early = Array.from({ length: 12 }, (_, i) => `early-${i}`);
  for (const [i, id] of early.entries()) await queue.append(`client-${i}`, encode(id));
  t.equal(await lost, 'CRAFT_TIMEOUT', 'the member gave up on the fetch');
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // the queue answered it meanwhile, to nobody
  const late = Array.from({ length: 12 }, (_, i) => `late-${i}`);
  for (const [i, id] of late.entries()) await queue.append(`client-${i}`, encode(id));
  const consumed = new Set<string>();
  const everything = [...early, ...late];
  const done = await eventually(async () => {
    const deliveries = await member.poll({ waitMs: 50 }).catch(() => []);
    for (const d of deliveries) consumed.add(new TextDecoder().decode(d.payload));
    await member.commit(deliveries).catch(() => false);
    return everything.every((id) => consumed.has(id));
  }, 10_000);
  t.ok(done, `every message consumed, those of the unanswered fetch too (missing: ${everything.filter((id) => !consumed.has(id)).join(', ') || 'none'})`);
});

// Found in CI (the queue-rebalance scenario's leave took 3 s to settle): a poll in flight while a
// member left was answered after its leave; committing what it brought was fenced (unknown
// member), and the member joined again — a member nobody runs, in the group until its session ran
// out. A stopped member never joins again.
t.test('a member that left stays gone: a poll in flight across its leave, and a commit after it, do not bring it back', async (t) => {
  const { queue, bus } = await queuePlatform(t, 'cooperative-sticky');
  const a = new GroupMember(bus, { group: 'left', member: 'a' });
  const b = new GroupMember(bus, { group: 'left', member: 'b' });
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]).catch(() => undefined));
  t.ok(await eventually(async () => settledOn(await groupState(queue, 'left'), ['a', 'b']), 5_000), 'a and b own every partition');
  const inFlight = a.poll({ waitMs: 1_000 }).catch(() => [] as FetchedDelivery[]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (let i = 0; i < 12; i++) await queue.append(`client-${i}`, new TextEncoder().encode(`m${i}`));
  await a.stop({ leave: true });
  const deliveries = await inFlight;
  const joinsBefore = a.joins;
  await a.commit(deliveries.length > 0 ? deliveries : [{ epoch: 1, partition: 0, offset: 0, payload: new Uint8Array() }]).catch(() => false);
  t.equal(a.joins, joinsBefore, 'the fenced commit did not make a join');
  t.ok(await eventually(async () => settledOn(await groupState(queue, 'left'), ['b']), 2_000), `b alone, at once — not after a's session: ${JSON.stringify(await groupState(queue, 'left'))}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.same((await groupState(queue, 'left'))?.members, ['b'], 'and a stays out');
});

for (const coordinator of COORDINATORS) t.test(`${coordinator} property: after any joins, leaves, crashes and heartbeat losses, once stable every partition has exactly one live owner and stale commits are refused`, async (t) => {
  const { queue, bus } = await queuePlatform(t, 'cooperative-sticky', coordinator);
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.record({ op: fc.constantFrom('join', 'leave', 'crash'), who: fc.integer({ min: 0, max: 4 }) }), { minLength: 1, maxLength: 8 }), async (ops) => {
      const group = `p${round++}`;
      const live = new Map<string, GroupMember>();
      const all: GroupMember[] = [];
      const stale: { member: string; generation: number }[] = [];
      try {
        for (const { op, who } of ops) {
          const id = `m${who}`;
          const member = live.get(id);
          if (op === 'join' && member === undefined) {
            const m = new GroupMember(bus, { group, member: id });
            all.push(m);
            await m.start();
            live.set(id, m);
          } else if (op !== 'join' && member !== undefined) {
            stale.push({ member: id, generation: member.generation });
            await member.stop({ leave: op === 'leave' });
            live.delete(id);
          }
        }
        const ids = [...live.keys()];
        const settled = await eventually(async () => {
          const state = await groupState(queue, group);
          return ids.length === 0 ? state === undefined || state.members.length === 0 : settledOn(state, ids);
        }, SESSION_MS * 6);
        if (!settled) throw new Error(`not settled on ${ids.join(',')}: ${JSON.stringify(await groupState(queue, group))}`);
        for (const s of stale) {
          const refused = await queue.commit({ group, member: s.member, generation: s.generation, commits: [{ epoch: 1, partition: 0, offset: 1 }] }).then(() => false, (e: unknown) => isFenced(e));
          if (!refused) throw new Error(`a commit of ${s.member} at generation ${s.generation} was accepted`);
        }
      } finally {
        for (const m of all) await m.stop({ leave: true }).catch(() => undefined);
      }
    }),
    { numRuns: coordinator === COORDINATORS[0] ? 12 : 8 },
  );
  t.pass('held for every generated history');
});
