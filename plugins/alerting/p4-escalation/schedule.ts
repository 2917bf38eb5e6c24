/**
 * On-call schedules (phase 4): who is on call at an instant.
 *
 *   schedules:
 *     - name: primary
 *       timeZone: Europe/Berlin              every time below is local to it (IANA name)
 *       layers:                              later layers take precedence where they have someone
 *         - users: [alice, bob, carol]       each a receiver (a person's channels)
 *           start: '2026-01-05T09:00'        the first shift starts here; handoffs at this local time
 *           rotation: { every: 1, unit: weeks }     hours | days | weeks
 *         - users: [dave]
 *           start: '2026-01-05T09:00'
 *           rotation: { every: 1, unit: days }
 *           restrict: { from: '18:00', to: '09:00', days: [mon, tue, wed, thu, fri] }   only these local hours
 *       overrides:                           beat every layer while they last (the last listed wins)
 *         - { user: erin, start: '2026-12-24T00:00', end: '2026-12-27T00:00' }
 *
 * Shift k of a layer covers [start + k·rotation, start + (k+1)·rotation) and belongs to
 * `users[k mod n]`. Days and weeks are calendar days and weeks in the schedule's time zone, so a
 * 09:00 handoff stays at 09:00 local across daylight-saving changes (that shift is 23 or 25 hours
 * long); hours are elapsed hours. A `restrict` window (local, `to` before `from` wraps past
 * midnight; `days` names the day the window opens) leaves the layer empty outside it, and the
 * layer below shows through.
 */
import { z } from 'zod';
import { DateTime, IANAZone } from 'luxon';
import type { OnCall } from '../../../core/slots/alerting.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const LOCAL_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;
const localDateTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/, 'a local date and time like 2026-01-05T09:00');

export const scheduleSchema = z
  .object({
    name: z.string().min(1),
    timeZone: z.string().default('UTC').refine((zone) => IANAZone.isValidZone(zone), 'not an IANA time zone (like Europe/Berlin or UTC)'),
    layers: z
      .array(
        z
          .object({
            users: z.array(z.string().min(1)).min(1),
            start: localDateTime,
            rotation: z.object({ every: z.number().int().positive().default(1), unit: z.enum(['hours', 'days', 'weeks']) }).strict().default({ every: 1, unit: 'weeks' }),
            restrict: z
              .object({ from: z.string().regex(LOCAL_TIME, 'a local time like 09:00'), to: z.string().regex(LOCAL_TIME, 'a local time like 18:00'), days: z.array(z.enum(DAYS)).min(1).optional() })
              .strict()
              .optional(),
          })
          .strict(),
      )
      .min(1),
    overrides: z.array(z.object({ user: z.string().min(1), start: localDateTime, end: localDateTime }).strict()).default([]),
  })
  .strict();
export type ScheduleSpec = z.infer<typeof scheduleSchema>;

interface Layer {
  users: string[];
  startMs: number;
  start: DateTime;
  unit: 'hours' | 'days' | 'weeks';
  every: number;
  restrict?: { fromMin: number; toMin: number; days?: Set<number> };
}

const NOMINAL_MS = { hours: 3_600_000, days: 86_400_000, weeks: 7 * 86_400_000 } as const;
/** How many instants where nothing changes `onCall` steps over looking for the next change. */
const UNTIL_EDGES_MAX = 2_000;
const minutesOf = (text: string): number => Number(text.slice(0, 2)) * 60 + Number(text.slice(3, 5));

export class Schedule {
  readonly name: string;
  readonly timeZone: string;
  private readonly zone: IANAZone;
  private readonly layers: Layer[];
  private readonly overrides: { user: string; startMs: number; endMs: number }[];

  constructor(spec: ScheduleSpec) {
    this.name = spec.name;
    this.timeZone = spec.timeZone;
    this.zone = IANAZone.create(spec.timeZone);
    const at = (text: string, what: string): DateTime => {
      const time = DateTime.fromISO(text, { zone: spec.timeZone });
      if (!time.isValid) throw new Error(`schedule ${spec.name}: ${what} ${JSON.stringify(text)} is not a time in ${spec.timeZone} (${time.invalidExplanation ?? time.invalidReason})`);
      return time;
    };
    this.layers = spec.layers.map((layer, i) => {
      const start = at(layer.start, `layer ${i + 1} start`);
      return {
        users: layer.users,
        start,
        startMs: start.toMillis(),
        unit: layer.rotation.unit,
        every: layer.rotation.every,
        ...(layer.restrict === undefined
          ? {}
          : { restrict: { fromMin: minutesOf(layer.restrict.from), toMin: minutesOf(layer.restrict.to), ...(layer.restrict.days === undefined ? {} : { days: new Set(layer.restrict.days.map((d) => DAYS.indexOf(d) + 1)) }) } }),
      };
    });
    this.overrides = spec.overrides.map((o, i) => {
      const startMs = at(o.start, `override ${i + 1} start`).toMillis();
      const endMs = at(o.end, `override ${i + 1} end`).toMillis();
      if (endMs <= startMs) throw new Error(`schedule ${spec.name}: override ${i + 1} ends before it starts`);
      return { user: o.user, startMs, endMs };
    });
  }

  /** Every user named anywhere in the schedule (each must be a receiver). */
  users(): string[] {
    return [...new Set([...this.layers.flatMap((l) => l.users), ...this.overrides.map((o) => o.user)])];
  }

  /** The index of the shift of `layer` that holds `atMs` (-1 before the layer starts) and when the next one starts. */
  shift(layer: Layer, atMs: number): { index: number; endsAtMs: number } {
    if (atMs < layer.startMs) return { index: -1, endsAtMs: layer.startMs };
    const boundary = (k: number): number => layer.start.plus({ [layer.unit]: layer.every * k }).toMillis();
    // A guess from the nominal length, then exact steps (a calendar day is 23, 24 or 25 hours).
    let k = Math.max(0, Math.floor((atMs - layer.startMs) / (NOMINAL_MS[layer.unit] * layer.every)) - 1);
    while (boundary(k + 1) <= atMs) k += 1;
    while (k > 0 && boundary(k) > atMs) k -= 1;
    return { index: k, endsAtMs: boundary(k + 1) };
  }

  /** Whether the layer's restriction window (if any) is open at `atMs`, and when that next changes. */
  private windowOpen(layer: Layer, atMs: number): boolean {
    const r = layer.restrict;
    if (r === undefined) return true;
    const local = DateTime.fromMillis(atMs, { zone: this.timeZone });
    const minute = local.hour * 60 + local.minute;
    const wraps = r.toMin <= r.fromMin;
    const inside = wraps ? minute >= r.fromMin || minute < r.toMin : minute >= r.fromMin && minute < r.toMin;
    if (!inside) return false;
    if (r.days === undefined) return true;
    // The day the window opened: before midnight for the early part of a wrapping window.
    const opened = wraps && minute < r.toMin ? local.minus({ days: 1 }) : local;
    return r.days.has(opened.weekday);
  }

  /** Who is on call at `atMs` and from where: the last override holding it, else the highest layer with someone. */
  who(atMs: number): { receiver: string | null; source: string } {
    let override: { user: string } | undefined;
    for (const o of this.overrides) if (o.startMs <= atMs && atMs < o.endMs) override = o;
    if (override !== undefined) return { receiver: override.user, source: 'override' };
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      const { index } = this.shift(layer, atMs);
      if (index < 0 || !this.windowOpen(layer, atMs)) continue;
      return { receiver: layer.users[index % layer.users.length]!, source: `layer ${i + 1}` };
    }
    return { receiver: null, source: 'nobody' };
  }

  /**
   * Who is on call at `atMs`, from where, and until when: the first instant after `atMs` at which
   * the answer of `who` changes — a handoff, a restriction window opening or closing in any layer
   * (a higher one may open in the middle of a lower one's shift), a layer starting, an override
   * starting or ending. Instants where nothing changes (the same person hands over to themself)
   * are stepped over, up to UNTIL_EDGES_MAX of them; beyond that `untilMs` is the last instant
   * looked at (on call at least until then). Null when it never changes.
   */
  onCall(atMs: number): OnCall {
    const now = this.who(atMs);
    let t = atMs;
    for (let step = 0; step < UNTIL_EDGES_MAX; step++) {
      const edge = this.nextEdge(t);
      if (!Number.isFinite(edge)) return { schedule: this.name, ...now, untilMs: null };
      const then = this.who(edge);
      if (then.receiver !== now.receiver || then.source !== now.source) return { schedule: this.name, ...now, untilMs: edge };
      t = edge;
    }
    return { schedule: this.name, ...now, untilMs: t };
  }

  /**
   * The first instant after `atMs` at which the answer may change (Infinity when none): an
   * override starting or ending; for each layer not hidden by an unrestricted started layer above
   * it, its start, its handoffs (a layer of one person has none) and its window's opening and
   * closing local times; and, when windows exist, the zone's next change of UTC offset (a window
   * may open or close there: local time jumps over or back across it).
   */
  private nextEdge(atMs: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const o of this.overrides) {
      if (o.startMs > atMs) next = Math.min(next, o.startMs);
      if (o.endMs > atMs) next = Math.min(next, o.endMs);
    }
    let windows = false;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      if (atMs < layer.startMs) next = Math.min(next, layer.startMs);
      else if (layer.users.length > 1) next = Math.min(next, this.shift(layer, atMs).endsAtMs);
      const r = layer.restrict;
      if (r !== undefined) {
        windows = true;
        for (const minute of [r.fromMin, r.toMin]) next = Math.min(next, this.nextLocalTime(atMs, minute));
      } else if (atMs >= layer.startMs) break; // always someone here: the layers below cannot show
    }
    if (windows) next = Math.min(next, this.nextOffsetChange(atMs, Number.isFinite(next) ? next : atMs + 2 * 86_400_000));
    return next;
  }

  /** The zone's first change of UTC offset in `(atMs, byMs]` (Infinity when none), to the millisecond. */
  private nextOffsetChange(atMs: number, byMs: number): number {
    const offset = (ms: number): number => this.zone.offset(ms);
    const before = offset(atMs);
    if (offset(byMs) === before) return Number.POSITIVE_INFINITY;
    let lo = atMs;
    let hi = byMs;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offset(mid) === before) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /**
   * The first instant after `atMs` whose local time is `minute` past midnight: today's, else the
   * next day's. On a day the clocks go back a local time may occur twice (both count); on a day
   * they go forward it may not occur at all (the offset change is the edge then).
   */
  private nextLocalTime(atMs: number, minute: number): number {
    const hour = Math.floor(minute / 60);
    const min = minute % 60;
    let day = DateTime.fromMillis(atMs, { zone: this.timeZone }).startOf('day');
    let best = Number.POSITIVE_INFINITY;
    for (let d = 0; d < 3 && !Number.isFinite(best); d++, day = day.plus({ days: 1 })) {
      const wall = Date.UTC(day.year, day.month - 1, day.day, hour, min);
      const offsets = new Set([this.zone.offset(day.toMillis()), this.zone.offset(day.plus({ days: 1 }).toMillis() - 1)]);
      for (const offset of offsets) {
        const ms = wall - offset * 60_000;
        if (ms <= atMs || ms >= best) continue;
        const local = DateTime.fromMillis(ms, { zone: this.timeZone });
        if (local.hour === hour && local.minute === min) best = ms;
      }
    }
    return best;
  }
}
