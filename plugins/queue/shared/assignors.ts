/**
 * Partition assignors for consumer groups (Craft #2, used by the group phases), with Kafka's
 * standard definitions — one topic, partitions 0…P−1, members sorted by id:
 *
 * - **range**: member i of M gets a contiguous range; the first P mod M members get
 *   ⌊P/M⌋ + 1 partitions, the others ⌊P/M⌋. P=4, M=3 → a:[0,1] b:[2] c:[3].
 * - **round-robin**: partition p goes to member p mod M. P=4, M=3 → a:[0,3] b:[1] c:[2].
 *   (The seed's notes give range's result as their round-robin example: these are the
 *   standard definitions, and the tests pin them.)
 * - **sticky**: balanced (counts differ by at most one) while keeping every previous ownership
 *   it can: it moves exactly the minimum number of partitions any balanced assignment must move.
 * - **cooperative-sticky**: sticky's result, reached in two rebalances — first only the
 *   partitions that move are revoked (everyone else keeps consuming), then they are assigned.
 */

export type Assignment = Map<string, number[]>;

const sortedMembers = (members: Iterable<string>): string[] => [...new Set(members)].sort();

function empty(members: string[]): Assignment {
  return new Map(members.map((m) => [m, []]));
}

export function rangeAssign(memberIds: Iterable<string>, partitions: number): Assignment {
  const members = sortedMembers(memberIds);
  const out = empty(members);
  if (members.length === 0) return out;
  const base = Math.floor(partitions / members.length);
  const extra = partitions % members.length;
  let next = 0;
  members.forEach((m, i) => {
    const count = base + (i < extra ? 1 : 0);
    for (let k = 0; k < count; k++) out.get(m)!.push(next++);
  });
  return out;
}

export function roundRobinAssign(memberIds: Iterable<string>, partitions: number): Assignment {
  const members = sortedMembers(memberIds);
  const out = empty(members);
  if (members.length === 0) return out;
  for (let p = 0; p < partitions; p++) out.get(members[p % members.length]!)!.push(p);
  return out;
}

/**
 * How many partitions each member should own in a balanced assignment that keeps the most of
 * `previous`: ⌈P/M⌉ for the members that owned the most (up to P mod M of them), ⌊P/M⌋ for the rest.
 */
function quotas(members: string[], partitions: number, kept: Map<string, number[]>): Map<string, number> {
  const base = Math.floor(partitions / members.length);
  let extra = partitions % members.length;
  const byOwned = [...members].sort((a, b) => kept.get(b)!.length - kept.get(a)!.length || (a < b ? -1 : 1));
  const out = new Map<string, number>();
  for (const m of byOwned) out.set(m, base + (extra-- > 0 ? 1 : 0));
  return out;
}

/** What each live member owned and may keep (valid partitions, each kept by one member only, ascending), and all of those. */
function keepable(members: string[], partitions: number, previous: Assignment): { kept: Map<string, number[]>; taken: Set<number> } {
  const taken = new Set<number>();
  const kept = new Map<string, number[]>();
  for (const m of members) {
    const mine = [...(previous.get(m) ?? [])].filter((p) => Number.isInteger(p) && p >= 0 && p < partitions && !taken.has(p)).sort((a, b) => a - b);
    for (const p of mine) taken.add(p);
    kept.set(m, mine);
  }
  return { kept, taken };
}

export function stickyAssign(memberIds: Iterable<string>, partitions: number, previous: Assignment): Assignment {
  const members = sortedMembers(memberIds);
  const out = empty(members);
  if (members.length === 0) return out;
  const { kept, taken } = keepable(members, partitions, previous);
  const quota = quotas(members, partitions, kept);
  const free: number[] = [];
  for (const m of members) {
    const mine = kept.get(m)!;
    const keep = mine.slice(0, quota.get(m)!);
    out.set(m, keep);
    free.push(...mine.slice(quota.get(m)!));
  }
  for (let p = 0; p < partitions; p++) if (!taken.has(p)) free.push(p);
  free.sort((a, b) => a - b);
  // Fill the members below their quota, fewest first.
  for (const m of [...members].sort((a, b) => out.get(a)!.length - out.get(b)!.length || (a < b ? -1 : 1))) {
    const mine = out.get(m)!;
    while (mine.length < quota.get(m)!) mine.push(free.shift()!);
    mine.sort((a, b) => a - b);
  }
  return out;
}

/** The minimum number of partitions any balanced assignment of `partitions` to `members` must move, given `previous`. */
export function minimumMoves(memberIds: Iterable<string>, partitions: number, previous: Assignment): number {
  const members = sortedMembers(memberIds);
  if (members.length === 0) return 0;
  const { kept } = keepable(members, partitions, previous);
  // Each member keeps at most its quota; quotas go to the biggest owners first (that maximises what is kept).
  const quota = quotas(members, partitions, kept);
  let keptTotal = 0;
  for (const m of members) keptTotal += Math.min(kept.get(m)!.length, quota.get(m)!);
  return partitions - keptTotal;
}

/** Partitions whose owner differs between two assignments (unowned before counts as moved). */
export function moved(before: Assignment, after: Assignment): number {
  const owner = new Map<number, string>();
  for (const [m, ps] of before) for (const p of ps) owner.set(p, m);
  let count = 0;
  for (const [m, ps] of after) for (const p of ps) if (owner.get(p) !== m) count += 1;
  return count;
}

/**
 * Cooperative-sticky: the sticky target, and the first of its two rebalances — each member
 * gives up only the partitions it will not keep (`revoke`) and keeps consuming the rest
 * (`keep`); the second rebalance hands out `target`.
 */
export function cooperativeStickyAssign(memberIds: Iterable<string>, partitions: number, previous: Assignment): { target: Assignment; keep: Assignment; revoke: Assignment } {
  const target = stickyAssign(memberIds, partitions, previous);
  const keep: Assignment = new Map();
  const revoke: Assignment = new Map();
  for (const [m, ps] of target) {
    const owned = previous.get(m) ?? [];
    const final = new Set(ps);
    keep.set(m, owned.filter((p) => final.has(p)));
    revoke.set(m, owned.filter((p) => !final.has(p)));
  }
  return { target, keep, revoke };
}

export const ASSIGNORS = ['range', 'round-robin', 'sticky', 'cooperative-sticky'] as const;
export type AssignorName = (typeof ASSIGNORS)[number];
