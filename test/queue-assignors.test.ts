/**
 * Consumer-group assignors (plugins/queue/shared/assignors.ts): the documented range and
 * round-robin assignments; every assignor owns each partition exactly once and balances; sticky
 * moves exactly the minimum number of partitions — checked against a brute force over every
 * balanced assignment of small groups; cooperative-sticky revokes only what moves.
 */
import t from 'tap';
import fc from 'fast-check';
import { cooperativeStickyAssign, minimumMoves, moved, rangeAssign, roundRobinAssign, stickyAssign, type Assignment } from '../plugins/queue/shared/assignors.js';

const obj = (a: Assignment): Record<string, number[]> => Object.fromEntries([...a].sort(([x], [y]) => (x < y ? -1 : 1)));

t.test('range and round-robin: the standard definitions', async (t) => {
  t.same(obj(rangeAssign(['c', 'a', 'b'], 4)), { a: [0, 1], b: [2], c: [3] });
  t.same(obj(roundRobinAssign(['c', 'a', 'b'], 4)), { a: [0, 3], b: [1], c: [2] });
  t.same(obj(rangeAssign(['a', 'b'], 5)), { a: [0, 1, 2], b: [3, 4] });
  t.same(obj(roundRobinAssign(['a', 'b'], 5)), { a: [0, 2, 4], b: [1, 3] });
  t.same(obj(rangeAssign(['a', 'b', 'c'], 2)), { a: [0], b: [1], c: [] }, 'more members than partitions: some idle');
  t.same(obj(rangeAssign([], 4)), {});
});

const members = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 5 });

function check(assignment: Assignment, partitions: number): void {
  const owners = new Map<number, number>();
  for (const ps of assignment.values()) for (const p of ps) owners.set(p, (owners.get(p) ?? 0) + 1);
  for (let p = 0; p < partitions; p++) if (owners.get(p) !== 1) throw new Error(`partition ${p} owned ${owners.get(p) ?? 0} times: ${JSON.stringify(obj(assignment))}`);
  if (owners.size !== partitions) throw new Error('a partition out of range was assigned');
  const counts = [...assignment.values()].map((ps) => ps.length);
  if (Math.max(...counts) - Math.min(...counts) > 1) throw new Error(`unbalanced: ${JSON.stringify(obj(assignment))}`);
}

t.test('every assignor: each partition owned exactly once, balanced; range contiguous, round-robin p mod M (property)', async (t) => {
  fc.assert(
    fc.property(members, fc.integer({ min: 0, max: 40 }), (ms, p) => {
      const range = rangeAssign(ms, p);
      const rr = roundRobinAssign(ms, p);
      check(range, p);
      check(rr, p);
      const sorted = [...ms].sort();
      let next = 0;
      for (const m of sorted) for (const q of range.get(m)!) if (q !== next++) throw new Error('range is not contiguous in member order');
      sorted.forEach((m, i) => rr.get(m)!.forEach((q) => {
        if (q % sorted.length !== i) throw new Error('round-robin is not p mod M');
      }));
    }),
  );
  t.pass();
});

/** Every balanced assignment of P partitions to the members (small P and M only). */
function bruteForceMinimum(ms: string[], partitions: number, previous: Assignment): number {
  const owner = new Map<number, string>();
  for (const [m, ps] of previous) for (const p of ps) if (!owner.has(p)) owner.set(p, m);
  let best = Number.POSITIVE_INFINITY;
  const pick: number[] = new Array(partitions).fill(0);
  const total = ms.length ** partitions;
  for (let code = 0; code < total; code++) {
    let c = code;
    const counts = new Array(ms.length).fill(0);
    for (let p = 0; p < partitions; p++) {
      pick[p] = c % ms.length;
      c = Math.floor(c / ms.length);
      counts[pick[p]!] += 1;
    }
    if (Math.max(...counts) - Math.min(...counts) > 1) continue;
    let moves = 0;
    for (let p = 0; p < partitions; p++) if (owner.get(p) !== ms[pick[p]!]) moves += 1;
    best = Math.min(best, moves);
  }
  return best;
}

const previousOf = (all: string[], partitions: number): fc.Arbitrary<Assignment> =>
  fc.array(fc.option(fc.constantFrom(...all), { nil: undefined }), { minLength: partitions, maxLength: partitions }).map((owners) => {
    const out: Assignment = new Map();
    owners.forEach((m, p) => {
      if (m === undefined) return;
      out.set(m, [...(out.get(m) ?? []), p]);
    });
    return out;
  });

t.test('sticky moves exactly the minimum any balanced assignment must (brute force, property)', async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 4 }),
      fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 0, max: 1_000 }),
      (before, now, partitions, seed) => {
        const previous = fc.sample(previousOf(before, partitions), { numRuns: 1, seed })[0]!;
        const result = stickyAssign(now, partitions, previous);
        check(result, partitions);
        const moves = moved(previous, result);
        const minimum = bruteForceMinimum([...now].sort(), partitions, previous);
        if (moves !== minimum) throw new Error(`sticky moved ${moves}, the minimum is ${minimum}: before ${JSON.stringify(obj(previous))} now ${now} → ${JSON.stringify(obj(result))}`);
        if (minimumMoves(now, partitions, previous) !== minimum) throw new Error('minimumMoves disagrees with the brute force');
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

t.test('cooperative-sticky: the sticky target; only moving partitions are revoked, the rest keep consuming (property)', async (t) => {
  fc.assert(
    fc.property(members, members, fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 1_000 }), (before, now, partitions, seed) => {
      const previous = rangeAssign(before, partitions);
      void seed;
      const { target, keep, revoke } = cooperativeStickyAssign(now, partitions, previous);
      check(target, partitions);
      if (JSON.stringify(obj(target)) !== JSON.stringify(obj(stickyAssign(now, partitions, previous)))) throw new Error('target differs from sticky');
      for (const m of now) {
        const owned = previous.get(m) ?? [];
        const final = new Set(target.get(m)!);
        const kept = keep.get(m)!;
        const revoked = revoke.get(m)!;
        if (kept.length + revoked.length !== owned.length) throw new Error('keep and revoke do not split what the member owned');
        if (kept.some((p) => !final.has(p)) || revoked.some((p) => final.has(p))) throw new Error('a kept partition moves, or a revoked one stays');
      }
      // Members whose partitions do not change revoke nothing: they keep consuming through the rebalance.
      for (const m of now) if (JSON.stringify(previous.get(m) ?? []) === JSON.stringify(target.get(m)) && revoke.get(m)!.length > 0) throw new Error('an unaffected member revoked');
    }),
    { numRuns: 300 },
  );
  t.pass();
});
