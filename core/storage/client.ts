/**
 * How other actors read from storage over the bus. `craft.storage.select` answers in parts
 * (one NATS message each), which this client merges; non-finite values travel as strings.
 * `StorageClient.querier(min, max)` gives the same `Querier` a store gives in process, so the
 * query engine is written against one interface whether storage is local or remote.
 *
 * Several storage members (one per process, each consuming its share of the queue's partitions):
 * the client keeps the live members from their announcements (`craft.storage.announce`, asked once
 * on first use through `craft.storage.members`), asks each on its own subject and merges —
 * samples, series, label names and values, counts, metadata, cardinality, flushes; rollups too,
 * or from the merged samples when one series is held by more than one member. With one member it
 * asks the shared subject; `info` is always one member's.
 *
 * A member that stops answering (no responders, or silent for MEMBER_SILENCE_MS) is left out and
 * remembered as lost for LOST_MEMBER_MS: its share of the data is missing from answers while it
 * is gone (members hold no replicas), and `lostMembers()` says so — the query API turns it into
 * Prometheus's `warnings`. A member announcing itself again is no longer lost.
 */
import type { Subscription } from '@nats-io/transport-node';
import type { Bus } from '../nats/bus.js';
import { SUBJECTS, storageMemberSubject } from '../subjects.js';
import { decodeValue, encodeValue, seriesKey, type Labels, type LabelMatcher, type SeriesSamples } from '../model.js';
import { mergeMemberSeries, mergeSeriesParts } from '../series-chunks.js';
import { mergeRollupParts, rollupSeries, type SeriesRollup } from './rollup.js';
import { STORAGE_ANNOUNCE_MS } from '../defaults.js';
import { CraftError } from '../errors.js';
import type { CardinalityStats, Querier, QueuePositions, SelectHints, StoreStats } from '../slots/storage.js';

/** How long the first call waits for members to answer who they are. */
const MEMBER_DISCOVERY_MS = 50;
/** A member not heard from for this long is left out. */
const MEMBER_SILENCE_MS = STORAGE_ANNOUNCE_MS * 3.5;
/** How long a member that went away is reported as lost (its data missing from answers), ms. */
export const LOST_MEMBER_MS = 60 * 60_000;

/** Inclusive bounds in ms. */
export interface RangeRequest {
  matchers: LabelMatcher[];
  startMs: number;
  endMs: number;
}

export interface SelectRequest extends RangeRequest {
  hints?: SelectHints;
}

export interface RollupRequest extends RangeRequest {
  stepMs: number;
}

export interface LabelValuesRequest extends RangeRequest {
  name: string;
}

/** How far storage is behind the queue: acknowledged → queryable, per applied batch. */
export interface StorageLag {
  /** 0 when the last fetch found nothing waiting (caught up); else the lag of the newest applied batch. */
  currentMs: number;
  /** Percentiles over the last `LAG_WINDOW_BATCHES` applied batches (receive → applied). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  batches: number;
}

export interface StorageInfo {
  /** The storage member answering (`storage@<process>`). */
  member: string;
  plugin: string;
  kv: string;
  stats: StoreStats;
  positions: QueuePositions;
  /** Batches applied since the actor started, and skipped as already applied. */
  batchesApplied: number;
  batchesSkipped: number;
  /** Queue messages that could not be decoded and were skipped (logged). */
  batchesUndecodable: number;
  /** Samples applied since the actor started, and how many of them were re-stamped (server stamps). */
  samplesApplied: number;
  samplesRestamped: number;
  lag: StorageLag;
  /** Kept for older readers: `lag.currentMs`. */
  lagMs: number;
}

export type WireSeries = { labels: Record<string, string>; timestampsMs: number[]; values: (number | string)[] };

/** Series as JSON can carry them: values a plain array, non-finite ones as strings (core/model.ts). */
export function encodeSeriesValues(series: SeriesSamples[]): WireSeries[] {
  return series.map((s) => ({ labels: s.labels, timestampsMs: s.timestampsMs, values: s.values.every(Number.isFinite) ? Array.from(s.values) : Array.from(s.values, encodeValue) }));
}

/** The inverse of encodeSeriesValues. */
export function decodeSeriesValues(series: WireSeries[]): SeriesSamples[] {
  return series.map((s) => ({ labels: s.labels, timestampsMs: s.timestampsMs, values: Float64Array.from(s.values, (v) => (typeof v === 'number' ? v : decodeValue(v))) }));
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class StorageClient {
  /** Member → when it was last heard from (ms). */
  private readonly heard = new Map<string, number>();
  /** Member → when it was found gone (ms). */
  private readonly lost = new Map<string, number>();
  private announcements: Subscription | undefined;
  private discovery: Promise<void> | undefined;

  constructor(private readonly bus: Bus) {}

  /** The live storage members, sorted (known after the first call; announcements keep the set current). */
  async members(): Promise<string[]> {
    if (this.announcements === undefined) {
      this.announcements = this.bus.listen<{ member?: unknown }>(SUBJECTS.storageAnnounce, (body) => {
        if (typeof body?.member === 'string') {
          this.heard.set(body.member, Date.now());
          this.lost.delete(body.member);
        }
      });
      this.discovery = this.bus
        .scatter<{ member: string }>(SUBJECTS.storageMembers, {}, MEMBER_DISCOVERY_MS)
        .then((found) => {
          for (const { member } of found) this.heard.set(member, Date.now());
        })
        .catch(() => undefined);
    }
    await this.discovery;
    const now = Date.now();
    for (const [member, atMs] of this.heard) if (now - atMs > MEMBER_SILENCE_MS) this.forget(member, now);
    return [...this.heard.keys()].sort();
  }

  private forget(member: string, nowMs: number): void {
    this.heard.delete(member);
    if (!this.lost.has(member)) this.lost.set(member, nowMs);
  }

  /**
   * Members this client knew that went away within the last LOST_MEMBER_MS, with when: their
   * share of the data is missing from answers until they are back (a member this client never
   * knew — gone before its first call — is not among them).
   */
  /** `lostMembers()` as sentences for an answer's warnings (none when every member is there). */
  async lostMemberWarnings(): Promise<string[]> {
    const lost = await this.lostMembers().catch(() => []);
    return lost.map(({ member, sinceMs }) => `storage member ${member} has not answered since ${new Date(sinceMs).toISOString()}: the series and samples it holds are missing from this answer`);
  }

  async lostMembers(): Promise<{ member: string; sinceMs: number }[]> {
    await this.members();
    const now = Date.now();
    for (const [member, sinceMs] of this.lost) if (now - sinceMs > LOST_MEMBER_MS || this.heard.has(member)) this.lost.delete(member);
    return [...this.lost].map(([member, sinceMs]) => ({ member, sinceMs })).sort((a, b) => a.member.localeCompare(b.member));
  }

  /** Stops listening for member announcements. */
  close(): void {
    this.announcements?.unsubscribe();
  }

  /**
   * Asks every live member on its own subject (undefined: one member or none known — ask the
   * shared subject). A member nobody answers for is gone: forgotten, its share left out.
   */
  private async fanOut<T>(subject: string, ask: (subject: string) => Promise<T>): Promise<T[] | undefined> {
    const members = await this.members();
    if (members.length <= 1) return undefined;
    const answers = await Promise.all(
      members.map((member) =>
        ask(storageMemberSubject(member, subject)).catch((error: unknown) => {
          if (!(error instanceof CraftError && error.code === 'CRAFT_NO_RESPONDERS')) throw error;
          this.forget(member, Date.now());
          return undefined;
        }),
      ),
    );
    return answers.filter((a): a is Awaited<T> => a !== undefined) as T[];
  }

  async select(request: SelectRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SeriesSamples[]> {
    const ask = async (subject: string): Promise<SeriesSamples[]> => mergeSeriesParts((await this.bus.requestParts<WireSeries[]>(subject, request, { timeoutMs })).map(decodeSeriesValues));
    const perMember = await this.fanOut(SUBJECTS.storageSelect, ask);
    return perMember === undefined ? ask(SUBJECTS.storageSelect) : mergeMemberSeries(perMember);
  }

  async rollup(request: RollupRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SeriesRollup[]> {
    const perMember = await this.fanOut(SUBJECTS.storageRollup, (subject) => this.bus.requestParts<SeriesRollup[]>(subject, request, { timeoutMs }));
    if (perMember === undefined) return mergeRollupParts(await this.bus.requestParts<SeriesRollup[]>(SUBJECTS.storageRollup, request, { timeoutMs }));
    // Window summaries of one series from two members cannot be combined exactly (an exact sum
    // is not the sum of two rounded ones): such series are summarised here from the samples.
    const holders = new Map<string, number>();
    for (const parts of perMember) for (const key of new Set(parts.flat().map((r) => seriesKey(r.labels)))) holders.set(key, (holders.get(key) ?? 0) + 1);
    if ([...holders.values()].every((n) => n === 1)) return mergeRollupParts(perMember.flat());
    const { stepMs, ...range } = request;
    return rollupSeries(await this.select(range, timeoutMs), request.startMs, request.endMs, stepMs);
  }

  async series(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Labels[]> {
    const perMember = await this.fanOut(SUBJECTS.storageSeries, (subject) => this.bus.request<Labels[]>(subject, request, { timeoutMs }));
    if (perMember === undefined) return this.bus.request(SUBJECTS.storageSeries, request, { timeoutMs });
    const byKey = new Map<string, Labels>();
    for (const labels of perMember.flat()) byKey.set(seriesKey(labels), labels);
    return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, labels]) => labels);
  }

  async labelNames(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    const perMember = await this.fanOut(SUBJECTS.storageLabels, (subject) => this.bus.request<string[]>(subject, request, { timeoutMs }));
    return perMember === undefined ? this.bus.request(SUBJECTS.storageLabels, request, { timeoutMs }) : [...new Set(perMember.flat())].sort();
  }

  async labelValues(request: LabelValuesRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
    const perMember = await this.fanOut(SUBJECTS.storageLabelValues, (subject) => this.bus.request<string[]>(subject, request, { timeoutMs }));
    return perMember === undefined ? this.bus.request(SUBJECTS.storageLabelValues, request, { timeoutMs }) : [...new Set(perMember.flat())].sort();
  }

  async deleteSeries(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ deleted: number }> {
    const perMember = await this.fanOut(SUBJECTS.storageDelete, (subject) => this.bus.request<{ deleted: number }>(subject, request, { timeoutMs }));
    return perMember === undefined ? this.bus.request(SUBJECTS.storageDelete, request, { timeoutMs }) : { deleted: perMember.reduce((n, r) => n + r.deleted, 0) };
  }

  /**
   * With several members: their counts added (a series held by two members counts twice, a label
   * value held by two counts twice in `values`), ranked again; each member sends its own top
   * `limit`, so an item just outside every member's top may be missing from the merged top.
   */
  async cardinality(limit = 10, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CardinalityStats> {
    const perMember = await this.fanOut(SUBJECTS.storageCardinality, (subject) => this.bus.request<CardinalityStats>(subject, { limit }, { timeoutMs }));
    if (perMember === undefined) return this.bus.request(SUBJECTS.storageCardinality, { limit }, { timeoutMs });
    const names = new Map<string, { name: string; series: number; values: number }>();
    const pairs = new Map<string, { name: string; value: string; series: number }>();
    for (const member of perMember) {
      for (const n of member.labelNames) {
        const had = names.get(n.name);
        names.set(n.name, { name: n.name, series: (had?.series ?? 0) + n.series, values: (had?.values ?? 0) + n.values });
      }
      for (const p of member.labelPairs) {
        const key = JSON.stringify([p.name, p.value]);
        pairs.set(key, { name: p.name, value: p.value, series: (pairs.get(key)?.series ?? 0) + p.series });
      }
    }
    const ranked = <T extends { series: number; name: string }>(items: Iterable<T>, tie: (a: T, b: T) => number): T[] => [...items].sort((a, b) => b.series - a.series || tie(a, b)).slice(0, limit);
    return {
      series: perMember.reduce((n, m) => n + m.series, 0),
      labelNames: ranked(names.values(), (a, b) => a.name.localeCompare(b.name)),
      labelPairs: ranked(pairs.values(), (a, b) => a.name.localeCompare(b.name) || a.value.localeCompare(b.value)),
    };
  }

  /** Flushes every member; with several, their stats added. */
  async flush(timeoutMs = 120_000): Promise<StoreStats> {
    const perMember = await this.fanOut(SUBJECTS.storageFlush, (subject) => this.bus.request<StoreStats>(subject, {}, { timeoutMs }));
    if (perMember === undefined) return this.bus.request(SUBJECTS.storageFlush, {}, { timeoutMs });
    const sum = perMember.reduce((s, m) => ({ series: s.series + m.series, samples: s.samples + m.samples, chunks: s.chunks + m.chunks, bytes: s.bytes + m.bytes }), { series: 0, samples: 0, chunks: 0, bytes: 0 });
    return { ...sum, bytesPerSample: sum.samples === 0 ? 0 : sum.bytes / sum.samples };
  }

  /** With several members: the sums of theirs (a series held by two members counts twice). */
  async count(request: RangeRequest, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ series: number; samples: number }> {
    const perMember = await this.fanOut(SUBJECTS.storageCount, (subject) => this.bus.request<{ series: number; samples: number }>(subject, request, { timeoutMs }));
    if (perMember === undefined) return this.bus.request(SUBJECTS.storageCount, request, { timeoutMs });
    return perMember.reduce((sum, c) => ({ series: sum.series + c.series, samples: sum.samples + c.samples }), { series: 0, samples: 0 });
  }

  /**
   * Metric types, as `tenant` sent them (else every distinct type a metric was sent with). With
   * several members: every member's metrics, an entry given by two once; `limit` metrics at most.
   */
  async metadata(request: { metric?: string; limit?: number; tenant?: string } = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Record<string, { type: string; help: string; unit: string }[]>> {
    type Entries = Record<string, { type: string; help: string; unit: string }[]>;
    const perMember = (await this.fanOut(SUBJECTS.storageMetadata, (subject) => this.bus.request<Entries>(subject, request, { timeoutMs }))) ?? [await this.bus.request<Entries>(SUBJECTS.storageMetadata, request, { timeoutMs })];
    const merged: Entries = {};
    for (const metric of [...new Set(perMember.flatMap((m) => Object.keys(m)))].sort()) {
      if (request.limit !== undefined && request.limit >= 0 && Object.keys(merged).length >= request.limit) break;
      const seen = new Set<string>();
      merged[metric] = perMember.flatMap((m) => m[metric] ?? []).filter((entry) => {
        const key = JSON.stringify([entry.type, entry.help, entry.unit]);
        return !seen.has(key) && (seen.add(key), true);
      });
      // Members answer no entry for a metric nobody sent a type for: a gauge, the seed's rule.
      if (merged[metric]!.length === 0) merged[metric] = [{ type: 'gauge', help: '', unit: '' }];
    }
    return merged;
  }

  /** One member's view (its plugin, positions and lag): the shared subject answers. */
  info(): Promise<StorageInfo> {
    return this.bus.request<StorageInfo>(SUBJECTS.storageInfo, {});
  }

  /** Every live member's view, by member id (one entry when a single member answers). */
  async infoAll(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<StorageInfo[]> {
    const perMember = (await this.fanOut(SUBJECTS.storageInfo, (subject) => this.bus.request<StorageInfo>(subject, {}, { timeoutMs }))) ?? [await this.info()];
    return perMember.sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  }

  /** A `Querier` of `[minTimeMs, maxTimeMs]` whose calls go to the storage actor. */
  querier(minTimeMs: number, maxTimeMs: number): Querier {
    const range = (matchers: LabelMatcher[] = []): RangeRequest => ({ matchers, startMs: minTimeMs, endMs: maxTimeMs });
    return {
      select: (matchers, hints) => this.select(hints === undefined ? range(matchers) : { ...range(matchers), hints }),
      series: (matchers) => this.series(range(matchers)),
      labelNames: (matchers) => this.labelNames(range(matchers)),
      labelValues: (name, matchers) => this.labelValues({ ...range(matchers), name }),
      rollup: (matchers, stepMs) => this.rollup({ ...range(matchers), stepMs }),
    };
  }
}
