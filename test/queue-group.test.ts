/**
 * The consumer-group coordinator (plugins/queue/shared/group-coordinator.ts, an xstate machine)
 * on a simulated clock: after any sequence of joins, leaves, crashes, heartbeat losses and
 * commits, a partition never has two owners that believe they may consume it; a commit is
 * accepted only from the partition's owner at the current generation (never from a stale one);
 * and once the survivors have heartbeated past every session timeout, the group is stable with
 * every partition owned by exactly one live member, as the assignor says — for each assignor.
 */
import t from 'tap';
import fc from 'fast-check';
import { createActor } from 'xstate';
import { fenceCommit, groupMachine, heartbeatAnswer, ownedBy } from '../plugins/queue/shared/group-coordinator.js';
import { ASSIGNORS } from '../plugins/queue/shared/assignors.js';

const SESSION_MS = 30_000;

type Op =
  | { kind: 'join'; m: number }
  | { kind: 'leave'; m: number }
  | { kind: 'crash'; m: number }
  | { kind: 'heartbeat'; m: number }
  | { kind: 'commit'; m: number; p: number }
  | { kind: 'advance'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('join' as const), m: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), m: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), m: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), m: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('commit' as const), m: fc.integer({ min: 0, max: 4 }), p: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40_000 }) }) },
);

/** A member as it sees itself: alive or crashed, its generation, what it believes it may consume. */
interface Member {
  alive: boolean;
  joined: boolean;
  generation: number;
  consuming: Set<number>;
}

for (const assignor of ASSIGNORS) {
  t.test(`${assignor}: one owner per partition, fenced commits, stable after the storm (property)`, async (t) => {
    let accepted = 0;
    let fenced = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { minLength: 10, maxLength: 80 }), (partitions, ops) => {
        let now = 0;
        const group = createActor(groupMachine, { input: { assignor, partitions, sessionTimeoutMs: SESSION_MS } });
        group.start();
        const ctx = () => group.getSnapshot().context;
        const members = new Map<string, Member>();
        const name = (m: number): string => `m${m}`;
        const heartbeat = (id: string, member: Member): void => {
          // A member gives up what it was told to revoke, then reports what it still holds.
          group.send({ type: 'HEARTBEAT', member: id, atMs: now, holding: [...member.consuming] });
          const answer = heartbeatAnswer(ctx(), id);
          if ('error' in answer) {
            member.joined = false;
            member.consuming.clear();
            return;
          }
          member.generation = answer.generation;
          for (const p of answer.revoke) member.consuming.delete(p);
          for (const p of answer.assigned) member.consuming.add(p);
          // Revocations acknowledged at once (the next heartbeat would say so): report again.
          if (answer.revoke.length > 0) {
            group.send({ type: 'HEARTBEAT', member: id, atMs: now, holding: [...member.consuming] });
            const again = heartbeatAnswer(ctx(), id);
            if (!('error' in again)) for (const p of again.assigned) member.consuming.add(p);
          }
        };
        const checkOwners = (): void => {
          // No partition is consumed by two live members within their sessions.
          const seen = new Map<number, string>();
          for (const [id, member] of members) {
            if (!member.alive || !member.joined || ctx().members[id] === undefined) continue;
            for (const p of member.consuming) {
              if (seen.has(p)) throw new Error(`partition ${p} consumed by ${seen.get(p)} and ${id}`);
              seen.set(p, id);
              if (ctx().owners[p] !== id) throw new Error(`${id} consumes ${p}, owned by ${ctx().owners[p]}`);
            }
          }
        };
        for (const o of ops) {
          const id = name('m' in o ? o.m : 0);
          const member = members.get(id);
          if (o.kind === 'advance') {
            now += o.ms;
            group.send({ type: 'TICK', atMs: now });
          } else if (o.kind === 'join') {
            if (member?.alive === true && member.joined) continue;
            group.send({ type: 'JOIN', member: id, atMs: now });
            const m: Member = { alive: true, joined: true, generation: ctx().generation, consuming: new Set() };
            members.set(id, m);
            heartbeat(id, m);
          } else if (o.kind === 'leave') {
            if (member === undefined || !member.alive || !member.joined) continue;
            group.send({ type: 'LEAVE', member: id, atMs: now });
            member.joined = false;
            member.consuming.clear();
          } else if (o.kind === 'crash') {
            // A crashed member stops heartbeating; it may come back and commit what it thought it owned.
            if (member !== undefined) member.alive = !member.alive;
          } else if (o.kind === 'heartbeat') {
            if (member === undefined || !member.alive || !member.joined) continue;
            heartbeat(id, member);
          } else if (o.kind === 'commit') {
            // Mostly a partition the member believes it consumes (a crashed one too: a zombie's commit).
            if (member === undefined) continue;
            const mine = [...member.consuming];
            const p = mine.length > 0 && o.p % 4 !== 3 ? mine[o.p % mine.length]! : o.p % partitions;
            const verdict = fenceCommit(ctx(), id, member.generation, p);
            if (verdict === 'OK') {
              accepted += 1;
              if (member.generation !== ctx().generation) throw new Error('a stale generation committed');
              if (ctx().owners[p] !== id) throw new Error('a non-owner committed');
            } else fenced += 1;
          }
          checkOwners();
        }
        // The storm is over: the crashed stay down; the rest heartbeat until everything settles.
        now += SESSION_MS + 1;
        group.send({ type: 'TICK', atMs: now });
        for (let round = 0; round < 3; round++) for (const [id, member] of members) if (member.alive && member.joined) heartbeat(id, member);
        checkOwners();
        const live = [...members].filter(([id, m]) => m.alive && m.joined && ctx().members[id] !== undefined).map(([id]) => id);
        const phase = group.getSnapshot().value;
        if (live.length === 0) {
          if (phase !== 'empty') throw new Error(`no live member but the group is ${String(phase)}`);
          return;
        }
        if (phase !== 'stable') throw new Error(`the group is ${String(phase)} after the storm`);
        for (let p = 0; p < partitions; p++) {
          const owner = ctx().owners[p];
          if (owner === undefined || !live.includes(owner)) throw new Error(`partition ${p} owned by ${owner} (live: ${live})`);
          if (!members.get(owner)!.consuming.has(p)) throw new Error(`partition ${p}'s owner ${owner} does not know it`);
        }
        const counts = live.map((id) => ownedBy(ctx(), id).length);
        if (Math.max(...counts) - Math.min(...counts) > 1) throw new Error(`unbalanced: ${counts}`);
        group.stop();
      }),
      { numRuns: 300 },
    );
    t.ok(accepted > 0 && fenced > 0, `commits accepted (${accepted}) and fenced (${fenced}) over the runs`);
  });
}

t.test('members as xstate machines (group-member.ts) with the coordinator: disjoint consumption, rejoin after fencing, stable after the storm (property)', async (t) => {
  const { memberMachine, holding } = await import('../core/queue/member-machine.js');
  let rejoins = 0;
  fc.assert(
    fc.property(fc.constantFrom(...ASSIGNORS), fc.integer({ min: 1, max: 8 }), fc.array(op, { minLength: 10, maxLength: 80 }), (assignor, partitions, ops) => {
      let now = 0;
      const group = createActor(groupMachine, { input: { assignor, partitions, sessionTimeoutMs: SESSION_MS } });
      group.start();
      const ctx = () => group.getSnapshot().context;
      const members = new Map<string, { actor: ReturnType<typeof createActor<typeof memberMachine>>; alive: boolean }>();
      const beat = (id: string): void => {
        const m = members.get(id)!;
        for (let round = 0; round < 2; round++) {
          group.send({ type: 'HEARTBEAT', member: id, atMs: now, holding: holding(m.actor.getSnapshot().context) });
          const answer = heartbeatAnswer(ctx(), id);
          if ('error' in answer) {
            // The coordinator forgot it (expired): rejoin.
            m.actor.send({ type: 'UNKNOWN' });
            group.send({ type: 'JOIN', member: id, atMs: now });
            rejoins += 1;
            continue;
          }
          m.actor.send({ type: 'ANSWER', ...answer });
          if (m.actor.getSnapshot().value === 'revoking') m.actor.send({ type: 'REVOKED' });
        }
      };
      const check = (): void => {
        const seen = new Map<number, string>();
        for (const [id, m] of members) {
          if (!m.alive || ctx().members[id] === undefined || m.actor.getSnapshot().status !== 'active') continue;
          for (const p of m.actor.getSnapshot().context.consuming) {
            if (seen.has(p)) throw new Error(`partition ${p} consumed by ${seen.get(p)} and ${id}`);
            seen.set(p, id);
            if (ctx().owners[p] !== id) throw new Error(`${id} consumes ${p} owned by ${ctx().owners[p]}`);
          }
        }
      };
      for (const o of ops) {
        const id = `m${'m' in o ? o.m : 0}`;
        const m = members.get(id);
        if (o.kind === 'advance') {
          now += o.ms;
          group.send({ type: 'TICK', atMs: now });
        } else if (o.kind === 'join') {
          if (m !== undefined && m.actor.getSnapshot().status === 'active') continue;
          const actor = createActor(memberMachine, { input: { id } });
          actor.start();
          actor.send({ type: 'JOIN' });
          members.set(id, { actor, alive: true });
          group.send({ type: 'JOIN', member: id, atMs: now });
          beat(id);
        } else if (o.kind === 'leave') {
          if (m === undefined || !m.alive || m.actor.getSnapshot().status !== 'active') continue;
          m.actor.send({ type: 'LEAVE' });
          group.send({ type: 'LEAVE', member: id, atMs: now });
        } else if (o.kind === 'crash') {
          if (m !== undefined) m.alive = !m.alive;
        } else if (o.kind === 'heartbeat') {
          if (m === undefined || !m.alive || m.actor.getSnapshot().status !== 'active') continue;
          beat(id);
        } else if (o.kind === 'commit') {
          if (m === undefined || m.actor.getSnapshot().status !== 'active') continue;
          const c = m.actor.getSnapshot().context;
          const p = c.consuming.length > 0 ? c.consuming[o.p % c.consuming.length]! : o.p % partitions;
          const verdict = fenceCommit(ctx(), id, c.generation, p);
          if (verdict === 'OK' && (ctx().owners[p] !== id || c.generation !== ctx().generation)) throw new Error('a stale or foreign commit was accepted');
          if (verdict !== 'OK' && m.alive) m.actor.send({ type: 'FENCED' });
          if (verdict !== 'OK' && m.alive && ctx().members[id] !== undefined) beat(id);
        }
        check();
      }
      now += SESSION_MS + 1;
      group.send({ type: 'TICK', atMs: now });
      for (let round = 0; round < 3; round++) for (const [id, m] of members) if (m.alive && m.actor.getSnapshot().status === 'active') beat(id);
      check();
      const live = [...members].filter(([id, m]) => m.alive && m.actor.getSnapshot().status === 'active' && ctx().members[id] !== undefined).map(([id]) => id);
      if (live.length > 0) {
        if (group.getSnapshot().value !== 'stable') throw new Error(`not stable: ${String(group.getSnapshot().value)}`);
        for (let p = 0; p < partitions; p++) {
          const owner = ctx().owners[p]!;
          if (!live.includes(owner) || !members.get(owner)!.actor.getSnapshot().context.consuming.includes(p)) throw new Error(`partition ${p}: owner ${owner} does not consume it`);
        }
      }
      group.stop();
    }),
    { numRuns: 300 },
  );
  t.ok(rejoins > 0, `members rejoined after being forgotten (${rejoins} times)`);
});
