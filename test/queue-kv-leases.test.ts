/**
 * Queue phase 3's group coordinator, `queue.kv-leases`: groups kept in a JetStream KV bucket on a
 * real nats-server. Two coordinators on one bucket agree on every group (watches and revision
 * checks), a lease deleted or expired is a member gone, and a restarted queue actor finds its
 * members where phase 2's forgets them (the measurable difference between the phases).
 */
import t from 'tap';
import fc from 'fast-check';
import { Kvm } from '@nats-io/kv';
import { PluginRegistry } from '../core/plugins/registry.js';
import { createLogger } from '../core/log.js';
import type { Bus } from '../core/nats/bus.js';
import { Bus as NatsBus } from '../core/nats/bus.js';
import type { GroupCoordinator, GroupDescription } from '../core/slots/queue.js';
import { GroupMember } from '../core/queue/member.js';
import { QueueClient, type FetchedDelivery } from '../core/queue/protocol.js';
import { killSubject } from '../core/subjects.js';
import { connectBus, eventually, startNats } from './helpers/nats.js';
import { startPlatform } from './helpers/platform.js';
import { keyToken } from '../plugins/queue/p3-kv-leases.plugin.js';
import type { Test } from 'tap';

const { registry } = await PluginRegistry.load();
const PARTITIONS = 4;

function coordinator(t: Test, bus: Bus, bucket: string, options: Record<string, unknown> = {}): GroupCoordinator {
  const c = registry.instantiate('queue.groups', 'queue.kv-leases', { partitions: PARTITIONS, log: createLogger('test'), bus }, { bucket, sessionTimeoutMs: 60_000, heartbeatIntervalMs: 200, ...options });
  t.teardown(() => c.close?.());
  return c;
}

/** What two coordinators must agree on. */
const essence = (d: GroupDescription | undefined): string => (d === undefined ? 'none' : JSON.stringify({ generation: d.generation, members: d.members, owners: d.owners, target: d.target }));

t.test('keyToken keeps [A-Za-z0-9_-] and escapes everything else as =XX, so distinct names stay distinct keys (property)', async (t) => {
  t.equal(keyToken('storage@host:1'), 'storage=40host=3A1');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
      const ka = keyToken(a);
      if (!/^[A-Za-z0-9_=-]*$/.test(ka)) return false;
      return (a === b) === (ka === keyToken(b));
    }),
  );
});

t.test('two coordinators on one bucket: the second finds the group, each sees what the other did, stale generations are fenced by both', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const a = coordinator(t, bus, 'two');
  await a.open!();
  const x = await a.join('g', 'x', 1_000);
  t.same({ generation: x.generation, assigned: x.assigned }, { generation: 1, assigned: [0, 1, 2, 3] }, 'x alone owns every partition at generation 1');

  const b = coordinator(t, bus, 'two');
  await b.open!();
  t.equal(essence(b.describe('g')), essence(a.describe('g')), 'the second coordinator found the group as the first left it');

  const y = await b.join('g', 'y', 1_100);
  t.equal(y.generation, 2);
  t.ok(await eventually(() => essence(a.describe('g')) === essence(b.describe('g')), 5_000), `the first adopted the join through its watch: ${essence(a.describe('g'))}`);
  t.equal(a.fence('g', 'x', 1, 0), 'ILLEGAL_GENERATION', 'a commit at generation 1 is stale for the first coordinator');
  t.equal(b.fence('g', 'x', 1, 0), 'ILLEGAL_GENERATION', '…and for the second');

  // Concurrent joins through both: the state writes conflict, one coordinator adopts and decides again.
  const [z1, z2] = await Promise.all([a.join('g', 'z1', 1_200), b.join('g', 'z2', 1_200)]);
  t.not(z1.generation, z2.generation, 'two joins, two generations');
  t.ok(await eventually(() => essence(a.describe('g')) === essence(b.describe('g')) && a.describe('g')!.members.length === 4, 5_000), `both agree on four members: ${essence(a.describe('g'))} / ${essence(b.describe('g'))}`);
  t.equal(a.describe('g')!.generation, Math.max(z1.generation, z2.generation));

  // An operator deletes y's lease: y is gone for both; its heartbeat is answered UNKNOWN_MEMBER.
  const kv = await new Kvm(bus.nc).open('two');
  await kv.delete(`g.lease.y`);
  t.ok(await eventually(() => !a.describe('g')!.members.includes('y') && !b.describe('g')!.members.includes('y'), 5_000), 'the deleted lease removed y from both');
  t.equal(await a.heartbeat('g', 'y', [], 1_300), 'UNKNOWN_MEMBER', 'y must join again');
});

t.test('a lease not renewed within the session is expired by the coordinator, deleted from the bucket, and seen gone by the other', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const a = coordinator(t, bus, 'expiry', { sessionTimeoutMs: 1_000 });
  const b = coordinator(t, bus, 'expiry', { sessionTimeoutMs: 1_000 });
  await a.open!();
  await b.open!();
  await a.join('g', 'x', 10_000);
  await a.join('g', 'y', 10_000);
  await a.heartbeat('g', 'y', undefined, 10_900); // y renews (a lease write: more than half an interval since its join)
  await a.tick(11_500); // x: 1,500 ms since its lease; y: 600 ms
  t.same(a.describe('g')!.members, ['y'], 'x expired');
  const kv = await new Kvm(bus.nc).open('expiry');
  t.equal((await kv.get('g.lease.x'))?.operation, 'DEL', "x's lease is deleted in the bucket");
  t.ok(await eventually(() => essence(b.describe('g')) === essence(a.describe('g')), 5_000), 'the other coordinator adopted the expiry');
});

t.test('a stored member whose lease is gone is left when the state is adopted: its partitions get a new target (regression)', async (t) => {
  // Found by the property below in a CI run: a coordinator's leave lost a race for the state,
  // adopted the winner's (which still had the member), dropped the member — whose lease it had
  // just deleted — with its partitions' targets, and then ignored the member's LEAVE: partitions
  // with no target while a member was there.
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const a = coordinator(t, bus, 'gone');
  await a.open!();
  await a.join('g', 'm1', 1_000);
  await a.join('g', 'm0', 1_100);
  t.same(new Set(Object.values(a.describe('g')!.target)), new Set(['m0', 'm1']), 'both have partitions');
  const before = a.describe('g')!.generation;
  const kv = await new Kvm(bus.nc).open('gone');
  await kv.delete('g.lease.m0');
  const b = coordinator(t, bus, 'gone');
  await b.open!();
  const d = b.describe('g')!;
  t.same(d.members, ['m1'], 'the member without a lease is gone');
  t.same(Object.keys(d.target).length, PARTITIONS, 'every partition has a target');
  t.ok(Object.values(d.target).every((m) => m === 'm1'), 'and it is the member left');
  t.ok(d.generation > before, 'a new generation');
});

t.test('property: any joins, leaves and heartbeats spread over two coordinators leave both agreeing, one owner per partition, generations rising', async (t) => {
  const { url } = await startNats(t);
  const bus = await connectBus(t, url);
  const a = coordinator(t, bus, 'prop');
  const b = coordinator(t, bus, 'prop');
  await a.open!();
  await b.open!();
  let round = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.record({ via: fc.constantFrom(0, 1), op: fc.constantFrom('join', 'leave', 'heartbeat'), who: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 10 }), async (ops) => {
      const group = `g${round++}`;
      const model = new Set<string>();
      let now = 1_000;
      let generation = 0;
      for (const { via, op, who } of ops) {
        const c = via === 0 ? a : b;
        const member = `m${who}`;
        now += 150;
        if (op === 'join') {
          const view = await c.join(group, member, now);
          if (view.generation <= generation) throw new Error(`a join answered generation ${view.generation} after ${generation}`);
          generation = view.generation;
          model.add(member);
        } else if (op === 'leave') {
          await c.leave(group, member, now);
          model.delete(member);
        } else {
          const answer = await c.heartbeat(group, member, undefined, now);
          if ((answer === 'UNKNOWN_MEMBER') === model.has(member)) throw new Error(`heartbeat of ${member} answered ${JSON.stringify(answer)} with members ${[...model]}`);
        }
      }
      const agreed = await eventually(() => essence(a.describe(group)) === essence(b.describe(group)), 5_000, 20);
      if (!agreed) throw new Error(`coordinators disagree: ${essence(a.describe(group))} / ${essence(b.describe(group))}`);
      const d = a.describe(group)!;
      if (d.members.join() !== [...model].sort().join()) throw new Error(`members ${d.members} ≠ model ${[...model]}`);
      for (let p = 0; p < PARTITIONS; p++) {
        if (model.size > 0 && !model.has(d.target[p]!)) throw new Error(`partition ${p} targets ${d.target[p]}`);
        if (d.owners[p] !== undefined && !model.has(d.owners[p]!)) throw new Error(`partition ${p} owned by ${d.owners[p]}, not a member`);
      }
    }),
    { numRuns: 15 },
  );
  t.pass('held for every generated history');
});

/** Consumes with every member; returns what was consumed and how to stop. */
function consumeAll(members: GroupMember[]): { consumed: Set<string>; stop: () => Promise<void> } {
  const consumed = new Set<string>();
  let running = true;
  const loops = members.map(async (m) => {
    while (running && !m.stopped) {
      const deliveries: FetchedDelivery[] = await m.poll({ waitMs: 100 }).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return [];
      });
      for (const d of deliveries) consumed.add(new TextDecoder().decode(d.payload));
      await m.commit(deliveries).catch(() => false);
    }
  });
  return {
    consumed,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

for (const plugin of ['queue.consumer-groups', 'queue.kv-leases']) {
  t.test(`${plugin}: the queue actor is killed between two rounds of consuming and restarts`, async (t) => {
    const platform = await startPlatform(t, {
      actors: ['control', 'queue'],
      queue: { partitions: PARTITIONS },
      // Heartbeats 5 s apart: the state right after the restart is the coordinator's own, before any member speaks.
      plugins: { 'queue.log': 'queue.jetstream', 'queue.groups': { id: plugin, options: { sessionTimeoutMs: 15_000, heartbeatIntervalMs: 5_000 } } },
    });
    const bus = await NatsBus.connect(platform.natsUrl, 'members', platform.natsIdentity('admin'));
    t.teardown(() => bus.close());
    const queue = new QueueClient(bus);
    const members = ['a', 'b'].map((id) => new GroupMember(bus, { group: 'g', member: id }));
    for (const m of members) await m.start();
    t.teardown(() => Promise.all(members.map((m) => m.stop().catch(() => undefined))));
    const state = async (): Promise<GroupDescription | undefined> => (await queue.info()).groupStates.find((g) => g.group === 'g');
    t.ok(await eventually(async () => (await state())?.phase === 'stable' && (await state())!.members.length === 2, 5_000), 'stable with a and b');
    const before = (await state())!;
    const first = consumeAll(members);
    const produced: string[] = [];
    const produce = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const id = `m${produced.length}`;
        await queue.append(`client-${produced.length % 11}`, new TextEncoder().encode(id));
        produced.push(id);
      }
    };
    await produce(60);
    t.ok(await eventually(() => produced.every((id) => first.consumed.has(id)), 10_000), 'the first 60 consumed');
    await first.stop(); // no fetch in flight at the kill: a member that lost one must join again, whatever the coordinator
    bus.publish(killSubject('queue'), {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    t.ok(await eventually(async () => (await queue.info().then(() => true, () => false)), 15_000), 'the queue actor answers again');
    const after = await state();
    const second = consumeAll(members);
    await produce(60);
    t.ok(await eventually(() => produced.slice(60).every((id) => second.consumed.has(id)), 20_000), `the next 60 consumed (${second.consumed.size})`);
    await second.stop();
    const joins = members.map((m) => m.joins);
    if (plugin === 'queue.kv-leases') {
      t.same(after?.members, ['a', 'b'], 'the restarted coordinator found both members in the bucket');
      t.equal(after?.generation, before.generation, 'at the same generation');
      t.same(joins, [1, 1], 'nobody was fenced or joined again');
    } else {
      t.same(after?.members ?? [], [], 'the restarted coordinator knew no member');
      t.ok(joins.every((n) => n >= 2), `every member joined again (joins ${joins})`);
    }
    t.comment(`${plugin}: generation ${before.generation} → ${after?.generation ?? '—'} right after the restart; joins ${joins}`);
  });
}
