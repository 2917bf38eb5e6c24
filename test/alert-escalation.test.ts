/**
 * Phase 4 (`alerting.escalation`): the routing tree (against Debian's `amtool config routes
 * test`, Alertmanager 0.25's own router), on-call schedules (rotations across daylight-saving
 * changes against a model built on Intl, overrides, layers, restriction windows), escalation
 * tiers and acknowledgement on a simulated clock, and the property that escalation reaches tier
 * k only when nothing acknowledged the alert within the sum of the earlier tiers' timeouts —
 * with restarts from the journal's folded state.
 */
import t from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import { initialLifecycleState, tierDelayMs } from '../plugins/alerting/shared/lifecycle.js';
import { RoutingTree, type RouteSpec } from '../plugins/alerting/p4-escalation/routing.js';
import { Schedule, type ScheduleSpec } from '../plugins/alerting/p4-escalation/schedule.js';
import { pagerDutyEvent } from '../plugins/alerting/p3-delivery/pagerduty.js';
import { webhookPayload } from '../plugins/alerting/p3-delivery/webhook-payload.js';
import { findBinary } from './helpers/binaries.js';
import { evaluation, lifecycleHarness, type Harness } from './helpers/lifecycle.js';
import { handleAlertingApi } from '../actors/alerting-api.js';

const { registry } = await PluginRegistry.load();
const log = createLogger('test');
const MIN = 60_000;

// ---------------------------------------------------------------- routing tree

const TIMING = { groupBy: ['alertname'], groupWaitMs: 0, groupIntervalMs: MIN, repeatIntervalMs: 60 * MIN };

t.test('routing: first matching child, continue, fallback to the parent, inheritance, Alertmanager paths', async (t) => {
  const tree = new RoutingTree(
    {
      receiver: 'default',
      routes: [
        { matchers: ['severity="page"'], receiver: 'pager', continue: true, groupBy: ['alertname', 'host'], routes: [{ matchers: ['team=~"db|storage"'], receiver: 'db' }] },
        { matchers: ['severity=~"page|warn"'], receiver: 'chat' },
        { matchers: ['severity="warn"'], receiver: 'never' },
      ],
    },
    { receiver: 'default', ...TIMING },
    new Map(),
  );
  const names = (labels: Record<string, string>): string[] => tree.route(labels).map((r) => r.receiver);
  t.same(names({ alertname: 'X' }), ['default'], 'nothing matches: the root');
  t.same(names({ severity: 'page', team: 'db' }), ['db', 'chat'], 'continue goes on to the next sibling');
  t.same(names({ severity: 'page', team: 'web' }), ['pager', 'chat'], 'no child matches: the node itself');
  t.same(names({ severity: 'warn' }), ['chat'], 'the first match without continue stops');
  const [db] = tree.route({ severity: 'page', team: 'db' });
  t.equal(db!.routePath, '{}/{severity="page"}/{team=~"db|storage"}');
  t.same(db!.groupBy, ['alertname', 'host'], 'inherited from the parent');
  t.throws(() => new RoutingTree({ routes: [{ escalation: 'nope' }] }, { receiver: 'd', ...TIMING }, new Map()), /no escalation policy named "nope"/);
});

const amtool = findBinary('AMTOOL', 'amtool');
t.test('routing: the same receivers as Alertmanager 0.25 (amtool config routes test) for random trees and alerts', { skip: amtool === undefined ? 'amtool (Debian prometheus-alertmanager) not installed' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'craft-routes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const LABELS = { severity: ['page', 'warn', 'info'], team: ['db', 'web'], env: ['prod', 'dev'] } as const;
  const matcher = fc.constantFrom(...Object.entries(LABELS).flatMap(([name, values]) => [...values.map((v) => `${name}="${v}"`), ...values.map((v) => `${name}!="${v}"`), `${name}=~"${values[0]}|${values[1]}"`]));
  const node = fc.letrec<{ node: RouteSpec }>((tie) => ({
    node: fc.record({
      matchers: fc.array(matcher, { minLength: 1, maxLength: 2 }),
      continue: fc.boolean(),
      routes: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant<RouteSpec[]>([]), fc.array(tie('node'), { maxLength: 3 })),
    }),
  })).node;
  const alert = fc.record({ severity: fc.constantFrom(...LABELS.severity), team: fc.constantFrom(...LABELS.team), env: fc.constantFrom(...LABELS.env) }, { requiredKeys: [] });
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(node, { minLength: 1, maxLength: 4 }), fc.array(alert, { minLength: 1, maxLength: 4 }), async (children, alerts) => {
      // Every node gets its own receiver, r0 (root), r1, … depth first.
      let n = 0;
      const name = (spec: RouteSpec): RouteSpec => ({ ...spec, receiver: `r${++n}`, routes: (spec.routes ?? []).map(name) });
      const root: RouteSpec = { receiver: 'r0', routes: children.map(name) };
      const receivers = Array.from({ length: n + 1 }, (_, i) => `r${i}`);
      const yaml = (spec: RouteSpec, indent: string): string =>
        `${indent}receiver: ${spec.receiver}\n` +
        (spec.matchers === undefined ? '' : `${indent}matchers: ${JSON.stringify(spec.matchers)}\n`) +
        (spec.continue === true ? `${indent}continue: true\n` : '') +
        ((spec.routes ?? []).length === 0 ? '' : `${indent}routes:\n${spec.routes!.map((r) => `${indent}  - ${yaml(r, `${indent}    `).trimStart()}`).join('')}`);
      const file = join(dir, `am-${run++}.yml`);
      writeFileSync(file, `route:\n${yaml(root, '  ')}receivers:\n${receivers.map((r) => `  - name: ${r}\n`).join('')}`);
      const tree = new RoutingTree(root, { receiver: 'r0', ...TIMING }, new Map());
      for (const labels of alerts) {
        const args = Object.entries({ alertname: 'A', ...labels }).map(([k, v]) => `${k}=${v}`);
        const out = spawnSync(amtool!, ['config', 'routes', 'test', `--config.file=${file}`, ...args], { encoding: 'utf8' });
        if (out.status !== 0) throw new Error(`amtool failed: ${out.stderr}`);
        const theirs = out.stdout.trim().split(',');
        const ours = tree.route({ alertname: 'A', ...labels }).map((r) => r.receiver);
        if (JSON.stringify(ours) !== JSON.stringify(theirs)) throw new Error(`labels ${JSON.stringify(labels)}: ours ${ours.join(',')}, Alertmanager ${theirs.join(',')}\n${yaml(root, '')}`);
      }
    }),
    { numRuns: 25 },
  );
  t.pass('the routing trees agree');
});

// ---------------------------------------------------------------- schedules

t.test('schedule: a daily 09:00 Berlin handoff stays at 09:00 local across the DST change', async (t) => {
  const s = new Schedule({ name: 'p', timeZone: 'Europe/Berlin', layers: [{ users: ['alice', 'bob'], start: '2026-03-27T09:00', rotation: { every: 1, unit: 'days' } }], overrides: [] });
  const at = (iso: string): string | null => s.onCall(Date.parse(iso)).receiver;
  t.equal(at('2026-03-27T08:00:00Z'), 'alice', '09:00 CET = 08:00 UTC');
  t.equal(at('2026-03-28T07:59:59Z'), 'alice');
  t.equal(at('2026-03-28T08:00:00Z'), 'bob');
  t.equal(at('2026-03-29T07:00:00Z'), 'alice', 'after the change 09:00 CEST = 07:00 UTC: the shift was 23 hours');
  t.equal(at('2026-03-29T06:59:59Z'), 'bob');
  t.equal(s.onCall(Date.parse('2026-03-28T12:00:00Z')).untilMs, Date.parse('2026-03-29T07:00:00Z'), 'until the next handoff');
  t.equal(at('2026-03-27T07:59:59Z'), null, 'nobody before the first shift');
});

/** A weekly day layer with a weekday night layer on top, in New York. */
const NEW_YORK_LAYERS: ScheduleSpec['layers'] = [
  { users: ['alice', 'bob'], start: '2026-01-05T09:00', rotation: { every: 1, unit: 'weeks' } },
  { users: ['night'], start: '2026-01-05T00:00', rotation: { every: 1, unit: 'days' }, restrict: { from: '18:00', to: '09:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'] } },
];

t.test('schedule: overrides beat layers, later layers beat earlier ones, restriction windows let the layer below show', async (t) => {
  const s = new Schedule({
    name: 'p',
    timeZone: 'America/New_York',
    layers: NEW_YORK_LAYERS,
    overrides: [{ user: 'carol', start: '2026-01-07T12:00', end: '2026-01-07T14:00' }],
  });
  const at = (local: string): { receiver: string | null; source: string } => {
    const o = s.onCall(Date.parse(`${local}-05:00`));
    return { receiver: o.receiver, source: o.source };
  };
  t.same(at('2026-01-07T10:00:00'), { receiver: 'alice', source: 'layer 1' }, 'Wednesday daytime: the weekly layer');
  t.same(at('2026-01-07T13:00:00'), { receiver: 'carol', source: 'override' });
  t.same(at('2026-01-07T20:00:00'), { receiver: 'night', source: 'layer 2' }, 'weekday evening: the night layer on top');
  t.same(at('2026-01-08T08:59:00'), { receiver: 'night', source: 'layer 2' }, 'until 09:00 the next morning');
  t.same(at('2026-01-10T20:00:00'), { receiver: 'alice', source: 'layer 1' }, 'Saturday evening: no night layer');
  t.same(at('2026-01-12T10:00:00'), { receiver: 'bob', source: 'layer 1' }, 'the next week: bob');
  t.throws(() => new Schedule({ name: 'x', timeZone: 'UTC', layers: [{ users: ['a'], start: '2026-01-01T00:00', rotation: { every: 1, unit: 'days' } }], overrides: [{ user: 'b', start: '2026-01-02T00:00', end: '2026-01-01T00:00' }] }), /ends before it starts/);
});

t.test('schedule: untilMs is the next change of who is on call, whichever layer or override makes it', async (t) => {
  const s = new Schedule({
    name: 'p',
    timeZone: 'America/New_York',
    layers: NEW_YORK_LAYERS,
    overrides: [{ user: 'carol', start: '2026-01-07T12:00', end: '2026-01-07T14:00' }, { user: 'dave', start: '2026-01-07T13:00', end: '2026-01-07T13:30' }],
  });
  const until = (local: string): string | null => {
    const ms = s.onCall(Date.parse(`${local}-05:00`)).untilMs;
    return ms === null ? null : new Date(ms - 5 * 3_600_000).toISOString().slice(0, 16);
  };
  // The weekly layer's shift runs to Monday; a higher layer's window opens before that.
  t.equal(until('2026-01-06T10:00:00'), '2026-01-06T18:00', 'Tuesday daytime: until the night layer opens at 18:00, not the weekly handoff');
  t.equal(until('2026-01-07T10:00:00'), '2026-01-07T12:00', 'until the override starts');
  t.equal(until('2026-01-07T12:30:00'), '2026-01-07T13:00', 'an override listed later starts inside the first one and beats it');
  t.equal(until('2026-01-07T13:10:00'), '2026-01-07T13:30');
  t.equal(until('2026-01-07T13:40:00'), '2026-01-07T14:00');
  t.equal(until('2026-01-07T20:00:00'), '2026-01-08T09:00', 'the night layer: until its window closes');
  t.equal(until('2026-01-09T20:00:00'), '2026-01-10T09:00', 'Friday night\'s window runs into Saturday morning');
  t.equal(until('2026-01-10T10:00:00'), '2026-01-12T09:00', 'the weekend: no window opens, until the weekly handoff');
  t.equal(s.onCall(Date.parse('2026-01-12T10:00:00-05:00')).receiver, 'bob');
  // Across changes of clocks (Berlin): a window from 02:30 opens when 02:00 jumps to 03:00, and
  // on the night the clocks go back it closes at the fall-back and opens again at the second 02:30.
  const dst = new Schedule({
    name: 'dst',
    timeZone: 'Europe/Berlin',
    layers: [
      { users: ['alice'], start: '2026-01-05T00:00', rotation: { every: 1, unit: 'weeks' } },
      { users: ['night'], start: '2026-01-05T00:00', rotation: { every: 1, unit: 'days' }, restrict: { from: '02:30', to: '06:00' } },
    ],
    overrides: [],
  });
  const at = (iso: string): { receiver: string | null; untilMs: number | null } => {
    const o = dst.onCall(Date.parse(iso));
    return { receiver: o.receiver, untilMs: o.untilMs };
  };
  t.same(at('2026-03-29T00:30:00Z'), { receiver: 'alice', untilMs: Date.parse('2026-03-29T01:00:00Z') }, 'spring forward: 02:30 never happens, the window opens at the jump');
  t.same(at('2026-10-25T00:45:00Z'), { receiver: 'night', untilMs: Date.parse('2026-10-25T01:00:00Z') }, 'fall back: 02:45 CEST, until 03:00 CEST becomes 02:00 CET');
  t.same(at('2026-10-25T01:10:00Z'), { receiver: 'alice', untilMs: Date.parse('2026-10-25T01:30:00Z') }, '02:10 CET: until the second 02:30');
  t.same(at('2026-10-25T01:40:00Z'), { receiver: 'night', untilMs: Date.parse('2026-10-25T05:00:00Z') }, 'then until 06:00 CET');
  const one = new Schedule({ name: 'solo', timeZone: 'UTC', layers: [{ users: ['only'], start: '2026-01-01T00:00', rotation: { every: 1, unit: 'days' } }], overrides: [] });
  t.equal(one.onCall(Date.parse('2026-01-02T12:00:00Z')).untilMs, null, 'a layer of one person never changes');
  const twice = new Schedule({ name: 'aab', timeZone: 'UTC', layers: [{ users: ['a', 'a', 'b'], start: '2026-01-01T00:00', rotation: { every: 1, unit: 'days' } }], overrides: [] });
  t.equal(twice.onCall(Date.parse('2026-01-01T12:00:00Z')).untilMs, Date.parse('2026-01-03T00:00:00Z'), 'a handoff to the same person is no change');
});

/** Local wall-clock parts of an instant in a zone, by Intl (independent of luxon). */
function localParts(ms: number, zone: string): { day: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(ms));
  const get = (type: string): number => Number(parts.find((p) => p.type === type)!.value);
  return { day: Date.UTC(get('year'), get('month') - 1, get('day')) / 86_400_000, minute: get('hour') * 60 + get('minute') };
}

t.test('schedule (property): nothing changes before untilMs and something changes at it, for any layers, windows and overrides', async (t) => {
  const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata'];
  const hhmm = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 30)).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
  const localAt = (dayOffset: number, time: string): string => `${new Date(Date.UTC(2026, 0, 5 + dayOffset)).toISOString().slice(0, 10)}T${time}`;
  const layer = fc.record({
    users: fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 }),
    day: fc.integer({ min: 0, max: 10 }),
    time: hhmm,
    every: fc.integer({ min: 1, max: 3 }),
    unit: fc.constantFrom<'hours' | 'days' | 'weeks'>('hours', 'days', 'weeks'),
    restrict: fc.option(fc.record({ from: hhmm, to: hhmm, days: fc.option(fc.subarray(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const, { minLength: 1 }), { nil: undefined }) }), { nil: undefined }),
  });
  const override = fc.record({ user: fc.constantFrom('a', 'o', 'p'), day: fc.integer({ min: 0, max: 330 }), time: hhmm, hours: fc.integer({ min: 1, max: 72 }) });
  // Instants anywhere in 2026, and many within two days of a change of clocks in one of the zones.
  const changes = ['2026-03-08T07:00:00Z', '2026-03-29T01:00:00Z', '2026-04-04T16:00:00Z', '2026-10-03T16:00:00Z', '2026-10-25T01:00:00Z', '2026-11-01T06:00:00Z'].map(Date.parse);
  const instant = fc.oneof(
    fc.integer({ min: 0, max: 360 * 86_400 }).map((s) => Date.parse('2026-01-03T00:00:00Z') + s * 1_000),
    fc.tuple(fc.constantFrom(...changes), fc.integer({ min: -2 * 86_400, max: 2 * 86_400 })).map(([c, s]) => c + s * 1_000),
  );
  fc.assert(
    fc.property(fc.constantFrom(...zones), fc.array(layer, { minLength: 1, maxLength: 3 }), fc.array(override, { maxLength: 3 }), instant, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 30, maxLength: 30 }), (zone, layers, overrides, atMs, probes) => {
      const spec: ScheduleSpec = {
        name: 's',
        timeZone: zone,
        layers: layers.map((l) => ({
          users: l.users,
          start: localAt(l.day, l.time),
          rotation: { every: l.every, unit: l.unit },
          ...(l.restrict === undefined || l.restrict.from === l.restrict.to ? {} : { restrict: { from: l.restrict.from, to: l.restrict.to, ...(l.restrict.days === undefined ? {} : { days: [...l.restrict.days] }) } }),
        })),
        overrides: overrides.map((o) => {
          const start = localAt(o.day, o.time);
          const end = new Date(Date.parse(`${start}:00Z`) + o.hours * 3_600_000).toISOString().slice(0, 16);
          return { user: o.user, start, end };
        }),
      };
      const s = new Schedule(spec);
      const o = s.onCall(atMs);
      const same = (w: { receiver: string | null; source: string }): boolean => w.receiver === o.receiver && w.source === o.source;
      if (!same(s.who(atMs))) throw new Error('onCall and who disagree');
      const horizon = o.untilMs ?? atMs + 60 * 86_400_000;
      for (const p of [...probes, 0.999999]) {
        const probe = atMs + Math.floor(p * (horizon - atMs));
        if (probe < horizon && !same(s.who(probe))) throw new Error(`${zone} ${JSON.stringify(spec)}: at ${new Date(atMs).toISOString()} ${o.receiver}/${o.source} until ${o.untilMs === null ? 'never' : new Date(o.untilMs).toISOString()}, but ${new Date(probe).toISOString()} has ${JSON.stringify(s.who(probe))}`);
      }
      if (horizon - 1 > atMs && !same(s.who(horizon - 1))) throw new Error('a change just before untilMs');
      if (o.untilMs !== null && o.untilMs < atMs + 400 * 3_600_000 && same(s.who(o.untilMs))) throw new Error(`nothing changes at untilMs ${new Date(o.untilMs).toISOString()}`);
    }),
    { numRuns: 300 },
  );
  t.pass('untilMs is the next change');
});

t.test('schedule (property): calendar rotations equal a model counting local days, in any zone, across DST', async (t) => {
  const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata', 'America/Sao_Paulo'];
  fc.assert(
    fc.property(
      fc.constantFrom(...zones),
      fc.integer({ min: 4, max: 23 }),
      fc.integer({ min: 0, max: 59 }),
      fc.constantFrom<'days' | 'weeks'>('days', 'weeks'),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 0, max: 2 * 365 * 86_400 }),
      (zone, hour, minute, unit, every, users, offsetS) => {
        const start = `2026-01-05T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
        const spec: ScheduleSpec = { name: 's', timeZone: zone, layers: [{ users: Array.from({ length: users }, (_, i) => `u${i}`), start, rotation: { every, unit } }], overrides: [] };
        const s = new Schedule(spec);
        const startMs = s.onCall(0).untilMs!; // before the start nobody is on call, until the start
        const atMs = startMs + offsetS * 1_000;
        const a = localParts(startMs, zone);
        const b = localParts(atMs, zone);
        const days = b.day - a.day - (b.minute < hour * 60 + minute ? 1 : 0);
        const shift = Math.floor(days / (unit === 'weeks' ? 7 * every : every));
        const expected = `u${shift % users}`;
        const got = s.who(atMs).receiver;
        if (got !== expected) throw new Error(`${zone} ${start} ${unit}×${every} at ${new Date(atMs).toISOString()}: got ${got}, model ${expected}`);
      },
    ),
    { numRuns: 500 },
  );
  t.pass('luxon rotations equal the Intl model');
});

// ---------------------------------------------------------------- escalation and acknowledgement

const harness = (options: Record<string, unknown>, startMs = 0): Harness => lifecycleHarness(registry, 'alerting.escalation', options, startMs);

const TIERS = [
  { targets: ['schedule:primary'], timeoutMs: 5 * MIN },
  { targets: ['secondary'], timeoutMs: 10 * MIN },
  { targets: ['lead', 'manager'], timeoutMs: 10 * MIN },
];
const ESCALATION = {
  groupWaitMs: 30_000,
  groupIntervalMs: 5 * MIN,
  repeatIntervalMs: 4 * 60 * MIN,
  route: { receiver: 'default', routes: [{ matchers: ['severity="page"'], escalation: 'page' }] },
  escalationPolicies: [{ name: 'page', tiers: TIERS }],
  schedules: [{ name: 'primary', timeZone: 'UTC', layers: [{ users: ['alice', 'bob'], start: '1970-01-01T00:00', rotation: { every: 1, unit: 'days' } }] }],
};

const seen = (h: Harness): string[] => h.notifications.map((n) => `${Math.round(n.atMs / 1_000)}s ${n.kind ?? 'notify'}${n.tier === undefined ? '' : `@${n.tier}`} ${n.receiver} ${n.status}`);

t.test('escalation: tiers on their timeouts, an acknowledgement stops the rest and is told, the resolution goes to every tier', async (t) => {
  const h = harness(ESCALATION);
  h.lifecycle.observe([evaluation('DiskFull', 0, [{ severity: 'page', host: 'db-1' }])]);
  h.clock.advance(30_000);
  t.same(seen(h), ['30s notify@0 alice firing'], 'tier 0: whoever is on call in the primary schedule, after group_wait');
  t.equal(h.notifications[0]!.groupKey, '{}/{severity="page"}:{alertname="DiskFull"}', "Alertmanager's group key");
  h.clock.advance(5 * MIN - 1);
  t.equal(h.notifications.length, 1, 'not a millisecond early');
  h.clock.advance(1);
  t.same(seen(h).slice(1), ['330s escalate@1 secondary firing'], 'tier 1 after tier 0 timed out');
  h.clock.advance(3 * MIN);
  const acked = h.lifecycle.acknowledge!({ matchers: [{ name: 'host', op: '=', value: 'db-1' }], by: 'sam', comment: 'on it' });
  t.equal(acked.length, 1);
  t.equal(acked[0]!.acknowledgedBy, 'sam');
  t.same(seen(h).slice(2), ['510s acknowledge@0 alice firing', '510s acknowledge@0 secondary firing'], 'everyone told is told of the acknowledgement');
  h.clock.advance(60 * MIN);
  t.equal(h.notifications.length, 4, 'no tier 2, no repeat while acknowledged');
  h.lifecycle.observe([evaluation('DiskFull', h.clock.now(), [])]);
  h.clock.advance(0);
  t.same(seen(h).slice(4), ['4110s notify@0 alice resolved', '4110s notify@0 secondary resolved'], 'the resolution at once, to every receiver told');
  t.equal(h.notifications[4]!.copy, undefined);
  t.equal(h.notifications[5]!.copy, true);
  // The same alert firing again is a new, unacknowledged alert: tier 0 again, then escalation again.
  h.lifecycle.observe([evaluation('DiskFull', h.clock.now(), [{ severity: 'page', host: 'db-1' }])]);
  h.clock.advance(30_000 + 5 * MIN + 10 * MIN);
  t.same(seen(h).slice(6), ['4140s notify@0 alice firing', '4440s escalate@1 secondary firing', '5040s escalate@2 lead firing', '5040s escalate@2 manager firing'], 're-fired: escalates again, to both tier-2 targets');
  t.equal(h.clock.pendingTimers() > 0, true);
  h.lifecycle.stop();
});

t.test('escalation: PagerDuty gets trigger, acknowledge, resolve with one dedup key; the webhook carries the route path', async (t) => {
  const h = harness(ESCALATION);
  h.lifecycle.observe([evaluation('DiskFull', 0, [{ severity: 'page' }])]);
  h.clock.advance(30_000);
  h.lifecycle.acknowledge!({ fingerprints: [h.notifications[0]!.alerts[0]!.fingerprint], by: 'alice' });
  h.lifecycle.observe([evaluation('DiskFull', h.clock.now(), [])]);
  h.clock.advance(0);
  const events = h.notifications.map((n) => pagerDutyEvent(n, 'KEY', 'http://x'));
  t.same(events.map((e) => e.event_action), ['trigger', 'acknowledge', 'resolve']);
  t.equal(new Set(events.map((e) => e.dedup_key)).size, 1);
  t.equal(webhookPayload(h.notifications[0]!, 'http://x').groupKey, '{}/{severity="page"}:{alertname="DiskFull"}');
  h.lifecycle.stop();
});

t.test('escalation: acknowledgement needs phase 4, a firing alert, and an author', async (t) => {
  const h = harness(ESCALATION);
  t.throws(() => h.lifecycle.acknowledge!({ matchers: [{ name: 'alertname', op: '=', value: 'Nope' }], by: 'a' }), /no firing alert matches/);
  t.throws(() => h.lifecycle.acknowledge!({ matchers: [{ name: 'alertname', op: '=', value: 'X' }], by: '' }), /"by"/);
  t.throws(() => h.lifecycle.acknowledge!({ by: 'a' }), /fingerprints or matchers/);
  h.lifecycle.stop();
  const p2 = registry.instantiate('alerting.lifecycle', 'alerting.lifecycle', { log }, {});
  t.ok(p2.acknowledge !== undefined, 'the engine has the method');
  p2.start(initialLifecycleState(), { clock: new ManualClock(0), log, emit: () => undefined });
  t.throws(() => p2.acknowledge!({ fingerprints: ['x'], by: 'a' }), /phase 4/);
  p2.stop();
});

t.test('escalation: a restart neither repeats a tier nor forgets one that fell due while it was down', async (t) => {
  const h = harness(ESCALATION);
  h.lifecycle.observe([evaluation('DiskFull', 0, [{ severity: 'page' }])]);
  h.clock.advance(30_000 + 5 * MIN);
  t.equal(h.notifications.length, 2);
  h.restart();
  h.clock.advance(0);
  t.equal(h.notifications.length, 2, 'nothing repeated after the restart');
  h.lifecycle.stop();
  // Down for 20 minutes: tier 2 fell due meanwhile; it goes out at once (not tier 1 again).
  h.clock.advance(20 * MIN);
  h.restart();
  h.clock.advance(0);
  t.same(seen(h).slice(2), ['1530s escalate@2 lead firing', '1530s escalate@2 manager firing']);
  h.lifecycle.stop();
});

t.test('escalation (property): tier k only when nothing acknowledged the alert within the sum of the earlier timeouts; then exactly on time', async (t) => {
  type Op = { kind: 'advance'; ms: number } | { kind: 'hold'; host: number } | { kind: 'clear'; host: number } | { kind: 'ack'; host: number } | { kind: 'restart' };
  const op = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 12 * MIN }).map((ms): Op => ({ kind: 'advance', ms })) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 }).map((host): Op => ({ kind: 'hold', host })) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }).map((host): Op => ({ kind: 'clear', host })) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 2 }).map((host): Op => ({ kind: 'ack', host })) },
    { weight: 1, arbitrary: fc.constant<Op>({ kind: 'restart' }) },
  );
  const policy = { name: 'page', tiers: TIERS };
  const stats = { escalations: 0, acks: 0, restarts: 0 };
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const h = harness({ ...ESCALATION, groupWaitMs: 10_000, groupIntervalMs: MIN });
      const holding = new Set<number>();
      const evaluate = (): void => h.lifecycle.observe([evaluation('DiskFull', h.clock.now(), [...holding].map((i) => ({ severity: 'page', host: `h${i}` })))]);
      for (const o of ops) {
        if (o.kind === 'advance') h.clock.advance(o.ms);
        else if (o.kind === 'hold') (holding.add(o.host), evaluate());
        else if (o.kind === 'clear') (holding.delete(o.host), evaluate());
        else if (o.kind === 'restart') (h.restart(), (stats.restarts += 1));
        else {
          const fp = Object.values(h.state().alerts).find((a) => a.labels.host === `h${o.host}` && a.state === 'firing')?.fingerprint;
          if (fp !== undefined) h.lifecycle.acknowledge!({ fingerprints: [fp], by: 'p' });
        }
      }
      h.clock.advance(60 * MIN);
      h.lifecycle.stop();
      // Replay the journal: per alert episode (firing → resolved), its first tier-0 notification, acknowledgement, and escalations.
      interface Episode { notifiedAtMs?: number; ackAtMs?: number; endAtMs?: number; tiers: { tier: number; atMs: number }[] }
      const episodes = new Map<string, Episode[]>();
      const current = (fp: string): Episode => {
        const list = episodes.get(fp) ?? [];
        if (list.length === 0 || list.at(-1)!.endAtMs !== undefined) list.push({ tiers: [] });
        episodes.set(fp, list);
        return list.at(-1)!;
      };
      for (const e of h.events) {
        if (e.type === 'alert' && e.alert.state === 'resolved') current(e.alert.fingerprint).endAtMs = e.alert.resolvedAtMs;
        else if (e.type === 'ack') ((current(e.fingerprint).ackAtMs ??= e.atMs), (stats.acks += 1));
        else if (e.type === 'notified') {
          const n = e.notification;
          for (const a of n.alerts) {
            if (a.status !== 'firing') continue;
            const ep = current(a.fingerprint);
            if (n.kind === undefined && n.copy !== true) ep.notifiedAtMs ??= n.atMs;
            if (n.kind === 'escalate') (ep.tiers.push({ tier: n.tier!, atMs: n.atMs }), (stats.escalations += 1));
          }
        }
      }
      for (const [fp, list] of episodes) {
        for (const ep of list) {
          for (const { tier, atMs } of ep.tiers) {
            if (ep.notifiedAtMs === undefined) throw new Error(`${fp}: escalated without a tier-0 notification`);
            if (atMs < ep.notifiedAtMs + tierDelayMs(policy, tier)) throw new Error(`${fp}: tier ${tier} at ${atMs}, before ${ep.notifiedAtMs} + ${tierDelayMs(policy, tier)}`);
            if (ep.ackAtMs !== undefined && ep.ackAtMs <= atMs) throw new Error(`${fp}: tier ${tier} at ${atMs} after the acknowledgement at ${ep.ackAtMs}`);
          }
          // Liveness: every tier that fell due before the alert ended or was acknowledged was reached, on time.
          if (ep.notifiedAtMs === undefined) continue;
          const stop = Math.min(ep.endAtMs ?? Number.POSITIVE_INFINITY, ep.ackAtMs ?? Number.POSITIVE_INFINITY, h.clock.now());
          for (let tier = 1; tier < TIERS.length; tier++) {
            const due = ep.notifiedAtMs + tierDelayMs(policy, tier);
            if (due >= stop) break;
            const reached = ep.tiers.filter((x) => x.tier >= tier);
            if (reached.length === 0) throw new Error(`${fp}: tier ${tier} fell due at ${due} (ended/acked ${stop}) but was never reached`);
            // The clock stands still across a restart here, so even a restarted lifecycle is exactly on time.
            if (reached[0]!.atMs !== due) throw new Error(`${fp}: tier ${tier} due at ${due}, reached at ${reached[0]!.atMs}`);
          }
        }
      }
    }),
    { numRuns: 300 },
  );
  t.ok(stats.escalations > 0 && stats.acks > 0 && stats.restarts > 0, `the histories escalated (${stats.escalations}), acknowledged (${stats.acks}) and restarted (${stats.restarts})`);
});

t.test('escalation: a silence stops an alert\'s clock; when it ends the clock restarts with the whole timeout of the tier reached', async (t) => {
  const h = harness(ESCALATION);
  h.lifecycle.observe([evaluation('DiskFull', 0, [{ severity: 'page', host: 'a' }])]);
  h.clock.advance(30_000);
  t.same(seen(h), ['30s notify@0 alice firing']);
  h.clock.advance(30_000);
  h.lifecycle.silence({ matchers: [{ name: 'host', op: '=', value: 'a' }], startsAtMs: h.clock.now(), endsAtMs: 600_000, createdBy: 'ops', comment: 'maintenance' });
  h.clock.advance(600_000 - h.clock.now() - 1);
  t.equal(h.notifications.length, 1, 'tier 1 (due at 330 s) is not paged while silenced');
  h.clock.advance(1);
  h.clock.advance(5 * MIN - 1);
  t.equal(h.notifications.length, 1, 'the silence ended at 600 s: tier 0 has its whole 5 minutes again');
  h.clock.advance(1);
  t.same(seen(h).slice(1), ['900s escalate@1 secondary firing']);
  h.restart();
  h.clock.advance(10 * MIN);
  t.same(seen(h).slice(2), ['1500s escalate@2 lead firing', '1500s escalate@2 manager firing'], 'the restarted clock survives a restart (journaled)');
  h.lifecycle.stop();
});

t.test('API v2 read side with routing: each alert lists the receivers of the groups it is notified in; groups and the receiver filter follow the routes', async (t) => {
  const h = harness({ groupWaitMs: 0, route: { receiver: 'default', groupBy: ['alertname'], routes: [{ matchers: ['severity="page"'], receiver: 'pager', continue: true }, { matchers: ['team="db"'], receiver: 'db-chat', groupBy: ['alertname', 'host'] }] } });
  h.lifecycle.observe([evaluation('DiskFull', 0, [{ severity: 'page', team: 'db', host: 'a' }, { severity: 'info', host: 'b' }])]);
  h.clock.advance(0);
  const host = { lifecycle: () => h.lifecycle, rules: () => ({}), reloadRules: async () => ({}), config: () => ({ receiver: 'default' }), nowMs: () => h.clock.now(), startedAtMs: 0, version: '0.25.0' };
  const get = async (path: string): Promise<unknown> => JSON.parse((await handleAlertingApi(host, 'GET', new URL(`http://localhost${path}`), undefined)).body);
  type Gettable = { labels: Record<string, string>; receivers: { name: string }[] };
  const alerts = (await get('/api/v2/alerts')) as Gettable[];
  t.same(alerts.map((a) => [a.labels.host, a.receivers.map((r) => r.name)]).sort(), [['a', ['db-chat', 'pager']], ['b', ['default']]], 'a: paged (continue) and the db team’s chat; b: the root receiver');
  const groups = (await get('/api/v2/alerts/groups')) as { labels: Record<string, string>; receiver: { name: string }; alerts: Gettable[] }[];
  t.same(groups.map((g) => [g.receiver.name, g.labels, g.alerts.map((a) => a.labels.host)]).sort(), [['db-chat', { alertname: 'DiskFull', host: 'a' }, ['a']], ['default', { alertname: 'DiskFull' }, ['b']], ['pager', { alertname: 'DiskFull' }, ['a']]], 'one group per route, with the route’s group_by labels');
  t.same(((await get('/api/v2/alerts?receiver=pag.*')) as Gettable[]).map((a) => a.labels.host), ['a'], 'receiver: a regex over whole receiver names');
  t.same(await get('/api/v2/alerts?receiver=pag'), [], 'anchored: "pag" is no receiver');
  t.same(((await get('/api/v2/receivers')) as { name: string }[]).map((r) => r.name), ['db-chat', 'default', 'pager']);
  const bad = await handleAlertingApi(host, 'GET', new URL('http://localhost/api/v2/alerts?filter=%7Bhost%3D'), undefined);
  t.equal(bad.status, 400, 'a bad filter is a 400 naming it');
  t.match(JSON.parse(bad.body).error, /bad filter/);
  h.lifecycle.stop();
});
