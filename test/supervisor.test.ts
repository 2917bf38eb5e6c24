/**
 * The supervisor runtime with in-memory children and a manual clock: order of start and
 * stop, restarts after crashes, backoff timing, escalation, and start failures.
 */
import t from 'tap';
import { Supervisor, type SupervisorEvent } from '../core/supervision/supervisor.js';
import { ManualClock } from '../core/clock.js';
import type { ChildHandle, ChildSpec, NodeStatus } from '../core/supervision/child.js';
import type { ExitReason, RestartType, Strategy } from '../core/supervision/policy.js';

class FakeChild implements ChildHandle {
  readonly exited: Promise<ExitReason>;
  private resolveExit!: (reason: ExitReason) => void;
  running = true;
  constructor(readonly id: string, private readonly journal: string[]) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }
  crash(): void {
    this.running = false;
    this.resolveExit({ kind: 'crash', error: `${this.id} crashed` });
  }
  exitNormally(): void {
    this.running = false;
    this.resolveExit({ kind: 'normal' });
  }
  async stop(): Promise<void> {
    this.journal.push(`stop ${this.id}`);
    this.running = false;
    this.resolveExit({ kind: 'shutdown' });
  }
  status(): NodeStatus {
    return { id: this.id, kind: 'actor', state: this.running ? 'running' : 'stopped', restarts: 0 };
  }
}

function setup(strategy: Strategy, types: RestartType[], intensity = 3, failStart?: (id: string, attempt: number) => boolean) {
  const journal: string[] = [];
  const live = new Map<string, FakeChild>();
  const attempts = new Map<string, number>();
  const specs: ChildSpec[] = types.map((restart, i) => ({
    id: `c${i}`,
    restart,
    shutdownMs: 100,
    async start() {
      const id = `c${i}`;
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      if (failStart?.(id, attempt) === true) throw new Error(`${id} cannot start`);
      journal.push(`start ${id}`);
      const child = new FakeChild(id, journal);
      live.set(id, child);
      return child;
    },
  }));
  const clock = new ManualClock(1_000);
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor('root', { strategy, intensity, periodMs: 1_000, backoff: { minMs: 100, maxMs: 1_000, jitter: 0 } }, specs, {
    clock,
    random: () => 0.5,
    onEvent: (e) => events.push(e),
  });
  return { supervisor, journal, live, clock, events };
}

const settle = () => new Promise((r) => setImmediate(r));
async function advance(clock: ManualClock, ms: number): Promise<void> {
  await settle();
  await settle();
  clock.advance(ms);
  for (let i = 0; i < 5; i++) await settle();
}

t.test('children start in order and stop in reverse order', async (t) => {
  const { supervisor, journal } = setup('one_for_one', ['permanent', 'permanent', 'permanent']);
  await supervisor.start();
  await supervisor.stop();
  t.same(journal, ['start c0', 'start c1', 'start c2', 'stop c2', 'stop c1', 'stop c0']);
  t.same(await supervisor.exited, { kind: 'shutdown' });
});

t.test('one_for_one: a crashed child is restarted after the backoff', async (t) => {
  const { supervisor, journal, live, clock } = setup('one_for_one', ['permanent', 'permanent']);
  await supervisor.start();
  live.get('c0')!.crash();
  await advance(clock, 99);
  t.same(journal.slice(2), [], 'not restarted before the backoff delay');
  await advance(clock, 1);
  t.same(journal.slice(2), ['start c0']);
  t.equal(supervisor.status().children?.[0]?.restarts, 1);
  await supervisor.stop();
});

t.test('rest_for_one: later siblings are stopped (reverse) and restarted (in order)', async (t) => {
  const { supervisor, journal, live, clock } = setup('rest_for_one', ['permanent', 'permanent', 'permanent']);
  await supervisor.start();
  live.get('c1')!.crash();
  await advance(clock, 100);
  t.same(journal.slice(3), ['stop c2', 'start c1', 'start c2']);
  await supervisor.stop();
});

t.test('transient child exiting normally is not restarted', async (t) => {
  const { supervisor, journal, live, clock } = setup('one_for_one', ['transient']);
  await supervisor.start();
  live.get('c0')!.exitNormally();
  await advance(clock, 10_000);
  t.same(journal, ['start c0']);
  await supervisor.stop();
});

t.test('exceeding the intensity stops the rest and fails upward', async (t) => {
  const { supervisor, live, clock, events } = setup('one_for_one', ['permanent', 'permanent'], 2);
  await supervisor.start();
  for (let i = 0; i < 3; i++) {
    live.get('c0')!.crash();
    await advance(clock, 300);
  }
  const exit = await supervisor.exited;
  t.equal(exit.kind, 'crash');
  t.match(exit, { error: /restart intensity exceeded/ });
  t.ok(events.some((e) => e.type === 'supervisor.escalated'));
  t.notOk(live.get('c1')!.running, 'the sibling was stopped');
});

t.test('a restart that fails to start counts as a crash and is retried within intensity', async (t) => {
  const { supervisor, journal, live, clock } = setup('one_for_one', ['permanent'], 5, (id, attempt) => id === 'c0' && (attempt === 2 || attempt === 3));
  await supervisor.start();
  live.get('c0')!.crash();
  await advance(clock, 100); // attempt 2 fails
  await advance(clock, 200); // attempt 3 fails
  await advance(clock, 400); // attempt 4 succeeds
  t.same(journal, ['start c0', 'start c0']);
  t.equal(supervisor.status().state, 'running');
  await supervisor.stop();
});

t.test('stopping while a restart waits for its backoff does not hang', async (t) => {
  const { supervisor, live } = setup('one_for_one', ['permanent']);
  await supervisor.start();
  live.get('c0')!.crash();
  await settle();
  await supervisor.stop();
  t.equal(supervisor.status().state, 'stopped');
});
