/**
 * The supervisor's decision against OTP semantics: example tests for each strategy and
 * restart type, and a property test comparing `decide` with an independent reference
 * model over random crash sequences.
 */
import t from 'tap';
import fc from 'fast-check';
import { backoffDelayMs, decide, type ChildInfo, type ExitReason, type RestartType, type Strategy, type SupervisorPolicy } from '../core/supervision/policy.js';

const policy = (strategy: Strategy, intensity = 3, periodMs = 1_000): SupervisorPolicy => ({ strategy, intensity, periodMs, backoff: { minMs: 10, maxMs: 1_000, jitter: 0 } });
const crash: ExitReason = { kind: 'crash', error: 'boom' };
const children = (types: RestartType[]): ChildInfo[] => types.map((restart, i) => ({ id: `c${i}`, restart, running: true }));

t.test('one_for_one restarts only the child that crashed', async (t) => {
  const d = decide({ policy: policy('one_for_one'), children: children(['permanent', 'permanent', 'permanent']), restartTimesMs: [], exitedId: 'c1', reason: crash, nowMs: 0, random: 0.5 });
  t.match(d, { kind: 'restart', stop: [], start: ['c1'], remove: [] });
});

t.test('one_for_all stops the others in reverse order and restarts all in order', async (t) => {
  const d = decide({ policy: policy('one_for_all'), children: children(['permanent', 'permanent', 'permanent']), restartTimesMs: [], exitedId: 'c1', reason: crash, nowMs: 0, random: 0.5 });
  t.match(d, { kind: 'restart', stop: ['c2', 'c0'], start: ['c0', 'c1', 'c2'] });
});

t.test('rest_for_one restarts the crashed child and those started after it', async (t) => {
  const d = decide({ policy: policy('rest_for_one'), children: children(['permanent', 'permanent', 'permanent', 'permanent']), restartTimesMs: [], exitedId: 'c1', reason: crash, nowMs: 0, random: 0.5 });
  t.match(d, { kind: 'restart', stop: ['c3', 'c2'], start: ['c1', 'c2', 'c3'] });
});

t.test('restart types: transient restarts only after a crash, temporary never', async (t) => {
  const kids = children(['transient', 'temporary']);
  t.match(decide({ policy: policy('one_for_one'), children: kids, restartTimesMs: [], exitedId: 'c0', reason: { kind: 'normal' }, nowMs: 0, random: 0 }), { kind: 'leave', remove: false });
  t.match(decide({ policy: policy('one_for_one'), children: kids, restartTimesMs: [], exitedId: 'c0', reason: crash, nowMs: 0, random: 0 }), { kind: 'restart', start: ['c0'] });
  t.match(decide({ policy: policy('one_for_one'), children: kids, restartTimesMs: [], exitedId: 'c1', reason: crash, nowMs: 0, random: 0 }), { kind: 'leave', remove: true });
});

t.test('one_for_all drops temporary siblings instead of restarting them', async (t) => {
  const d = decide({ policy: policy('one_for_all'), children: children(['permanent', 'temporary', 'permanent']), restartTimesMs: [], exitedId: 'c0', reason: crash, nowMs: 0, random: 0 });
  t.match(d, { kind: 'restart', stop: ['c2', 'c1'], start: ['c0', 'c2'], remove: ['c1'] });
});

t.test('intensity: the (intensity+1)th restart inside the period escalates', async (t) => {
  let times: readonly number[] = [];
  for (let i = 0; i < 3; i++) {
    const d = decide({ policy: policy('one_for_one', 3, 1_000), children: children(['permanent']), restartTimesMs: times, exitedId: 'c0', reason: crash, nowMs: i * 100, random: 0 });
    t.equal(d.kind, 'restart');
    if (d.kind === 'restart') times = d.restartTimesMs;
  }
  t.equal(decide({ policy: policy('one_for_one', 3, 1_000), children: children(['permanent']), restartTimesMs: times, exitedId: 'c0', reason: crash, nowMs: 300, random: 0 }).kind, 'escalate');
  // Outside the period the old restarts no longer count.
  t.equal(decide({ policy: policy('one_for_one', 3, 1_000), children: children(['permanent']), restartTimesMs: times, exitedId: 'c0', reason: crash, nowMs: 1_250, random: 0 }).kind, 'restart');
});

t.test('backoff doubles per restart in the period, is capped, and stays within the jitter band', async (t) => {
  const backoff = { minMs: 10, maxMs: 100, jitter: 0 };
  t.same([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(backoff, n, 0.5)), [10, 20, 40, 80, 100, 100]);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 50 }), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (n, random, jitter) => {
      const delay = backoffDelayMs({ minMs: 10, maxMs: 1_000, jitter }, n, random);
      return delay >= Math.floor(10 * (1 - jitter)) && delay <= Math.ceil(1_000 * (1 + jitter));
    }),
  );
});

/**
 * A reference model of OTP supervisor semantics written independently of `decide`: it keeps
 * its own restart log and applies the rules from the OTP design principles literally.
 */
function reference(
  strategy: Strategy,
  intensity: number,
  periodMs: number,
  types: RestartType[],
  events: { child: number; kind: 'crash' | 'normal'; atMs: number }[],
): { restarted: string[][]; escalatedAt: number | null } {
  let alive = types.map((restart, i) => ({ id: `c${i}`, restart, running: true }));
  const log: number[] = [];
  const restarted: string[][] = [];
  for (let e = 0; e < events.length; e++) {
    const { child, kind, atMs } = events[e]!;
    const target = alive.find((c) => c.id === `c${child}`);
    if (target === undefined) {
      restarted.push([]);
      continue;
    }
    const restartIt = target.restart === 'permanent' || (target.restart === 'transient' && kind === 'crash');
    if (!restartIt) {
      if (target.restart === 'temporary') alive = alive.filter((c) => c !== target);
      else target.running = false;
      restarted.push([]);
      continue;
    }
    const recent = log.filter((t) => atMs - t < periodMs);
    if (recent.length + 1 > intensity) return { restarted, escalatedAt: e };
    log.length = 0;
    log.push(...recent, atMs);
    const index = alive.indexOf(target);
    const group = strategy === 'one_for_one' ? [target] : strategy === 'one_for_all' ? alive : alive.slice(index);
    const kept = group.filter((c) => c === target || c.restart !== 'temporary');
    alive = alive.filter((c) => !group.includes(c) || kept.includes(c));
    for (const c of kept) c.running = true;
    restarted.push(kept.map((c) => c.id));
  }
  return { restarted, escalatedAt: null };
}

t.test('property: any crash sequence yields the restarts OTP prescribes', async (t) => {
  const restartType = fc.constantFrom<RestartType>('permanent', 'transient', 'temporary');
  fc.assert(
    fc.property(
      fc.constantFrom<Strategy>('one_for_one', 'one_for_all', 'rest_for_one'),
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 1, max: 2_000 }),
      fc.array(restartType, { minLength: 1, maxLength: 6 }),
      fc.array(fc.record({ child: fc.nat(5), kind: fc.constantFrom<'crash' | 'normal'>('crash', 'normal'), gapMs: fc.nat(800) }), { maxLength: 30 }),
      (strategy, intensity, periodMs, types, raw) => {
        let atMs = 0;
        const events = raw.map((r) => ({ child: r.child % types.length, kind: r.kind, atMs: (atMs += r.gapMs) }));
        const expected = reference(strategy, intensity, periodMs, types, events);
        const pol: SupervisorPolicy = { strategy, intensity, periodMs, backoff: { minMs: 1, maxMs: 10, jitter: 0 } };
        let kids: ChildInfo[] = types.map((restart, i) => ({ id: `c${i}`, restart, running: true }));
        let times: readonly number[] = [];
        for (let e = 0; e < events.length; e++) {
          const { child, kind, atMs: now } = events[e]!;
          const d = decide({ policy: pol, children: kids, restartTimesMs: times, exitedId: `c${child}`, reason: kind === 'crash' ? { kind: 'crash', error: 'x' } : { kind: 'normal' }, nowMs: now, random: 0 });
          if (d.kind === 'escalate') {
            if (expected.escalatedAt !== e) return false;
            // Escalation stops every other running child, last started first.
            const stopped = kids.filter((c) => c.running && c.id !== `c${child}`).map((c) => c.id).reverse();
            return JSON.stringify(d.stop) === JSON.stringify(stopped);
          }
          if (expected.escalatedAt === e) return false;
          if (d.kind === 'ignore' || d.kind === 'leave') {
            if (expected.restarted[e]!.length !== 0) return false;
            if (d.kind === 'leave') kids = d.remove ? kids.filter((c) => c.id !== `c${child}`) : kids.map((c) => (c.id === `c${child}` ? { ...c, running: false } : c));
            continue;
          }
          if (JSON.stringify(d.start) !== JSON.stringify(expected.restarted[e])) return false;
          // Whatever is stopped is running and stops in reverse start order.
          const order = kids.map((c) => c.id);
          const positions = d.stop.map((id) => order.indexOf(id));
          if (positions.some((p, i) => i > 0 && p > positions[i - 1]!)) return false;
          if (d.stop.includes(`c${child}`)) return false;
          kids = kids.filter((c) => !d.remove.includes(c.id)).map((c) => (d.start.includes(c.id) ? { ...c, running: true } : c));
          times = d.restartTimesMs;
          // Invariant: never more than `intensity` restarts counted inside one period.
          if (times.filter((tm) => now - tm < periodMs).length > intensity) return false;
        }
        return expected.escalatedAt === null;
      },
    ),
    { numRuns: 2_000 },
  );
  t.pass('2000 random crash sequences agree with the reference model');
});
