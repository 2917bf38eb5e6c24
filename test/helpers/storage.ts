/**
 * Test helpers for stores: open any `storage.engine` plugin on any `storage.kv` engine the
 * way the storage actor does, and a reference model of the storage semantics
 * (core/slots/storage.ts) that every plugin must equal.
 */
import { join } from 'node:path';
import type { PluginRegistry } from '../../core/plugins/registry.js';
import { createLogger } from '../../core/log.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { compileMatchers, isStaleNaN, labelNamesOf, labelValuesOf, seriesKey, type Labels, type LabelMatcher, type SeriesSamples, type WireSample } from '../../core/model.js';
import type { SampleStore, StorageContext } from '../../core/slots/storage.js';

export function storageContext(registry: PluginRegistry, kvId: string, dataDir: string, clock: Clock = systemClock, kvOptions: Record<string, unknown> = {}): StorageContext {
  const log = createLogger('test');
  return {
    dataDir,
    log,
    clock,
    openKv: async (name) => {
      const kv = registry.instantiate('storage.kv', kvId, { dataDir: join(dataDir, name), log }, kvOptions);
      await kv.open();
      return kv;
    },
  };
}

export async function openStore(registry: PluginRegistry, engineId: string, kvId: string, dataDir: string, options: Record<string, unknown> = {}, clock: Clock = systemClock): Promise<SampleStore> {
  const store = registry.instantiate('storage.engine', engineId, storageContext(registry, kvId, dataDir, clock), options);
  await store.open();
  return store;
}

/**
 * Appends samples and commits them with positions, as the storage actor does. With `refs`
 * (series key → reference), it also passes back the reference each series got before, as a
 * scrape loop does, across commits, deletes and reopens of the same store.
 */
export async function appendAll(store: SampleStore, samples: WireSample[], positions: Record<string, number> = {}, refs?: Map<string, number>): ReturnType<ReturnType<SampleStore['appender']>['commit']> {
  const appender = store.appender();
  for (const [labels, t, v, stamped] of samples) {
    if (refs === undefined) appender.append(labels, t, v, stamped === 1);
    else {
      const key = seriesKey(labels);
      refs.set(key, appender.append(labels, t, v, stamped === 1, refs.get(key)));
    }
  }
  return appender.commit(positions);
}

/** The semantics of core/slots/storage.ts as a map of series → (time → value). */
export class StorageModel {
  readonly series = new Map<string, { labels: Labels; points: Map<number, number> }>();

  append(samples: WireSample[]): void {
    for (const [labels, stampMs, value, stamped] of samples) {
      const key = seriesKey(labels);
      let entry = this.series.get(key);
      if (entry === undefined) {
        entry = { labels, points: new Map() };
        this.series.set(key, entry);
      }
      let t = stampMs;
      if (stamped === 1) {
        const newest = Math.max(-Infinity, ...entry.points.keys());
        if (t <= newest) t = newest + 1;
      }
      entry.points.set(t, value);
    }
  }

  delete(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): number {
    const matches = compileMatchers(matchers);
    let deleted = 0;
    for (const [key, entry] of this.series) {
      if (!matches(entry.labels)) continue;
      for (const t of [...entry.points.keys()]) {
        if (t >= minTimeMs && t <= maxTimeMs) {
          entry.points.delete(t);
          deleted += 1;
        }
      }
      if (entry.points.size === 0) this.series.delete(key);
    }
    return deleted;
  }

  get samples(): number {
    let n = 0;
    for (const entry of this.series.values()) n += entry.points.size;
    return n;
  }

  select(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): SeriesSamples[] {
    const matches = compileMatchers(matchers);
    const out: SeriesSamples[] = [];
    for (const key of [...this.series.keys()].sort()) {
      const entry = this.series.get(key)!;
      if (!matches(entry.labels)) continue;
      const timestampsMs = [...entry.points.keys()].filter((t) => t >= minTimeMs && t <= maxTimeMs).sort((a, b) => a - b);
      if (timestampsMs.length > 0) out.push({ labels: entry.labels, timestampsMs, values: Float64Array.from(timestampsMs, (t) => entry.points.get(t)!) });
    }
    return out;
  }

  labelNames(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): string[] {
    return labelNamesOf(this.select(matchers, minTimeMs, maxTimeMs).map((s) => s.labels));
  }

  labelValues(name: string, matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): string[] {
    return labelValuesOf(this.select(matchers, minTimeMs, maxTimeMs).map((s) => s.labels), name);
  }
}

/** Same series (in order), same timestamps, same values — NaN equal to NaN, staleness markers kept. */
export function sameSeries(actual: SeriesSamples[], expected: SeriesSamples[]): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} series, expected ${expected.length}: ${actual.map((s) => seriesKey(s.labels)).join(' ')} vs ${expected.map((s) => seriesKey(s.labels)).join(' ')}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (seriesKey(a.labels) !== seriesKey(e.labels)) return `series ${i}: ${seriesKey(a.labels)}, expected ${seriesKey(e.labels)}`;
    if (a.timestampsMs.length !== e.timestampsMs.length) return `${seriesKey(a.labels)}: ${a.timestampsMs.length} samples, expected ${e.timestampsMs.length} (${a.timestampsMs.join(',')} vs ${e.timestampsMs.join(',')})`;
    for (let j = 0; j < a.timestampsMs.length; j++) {
      if (a.timestampsMs[j] !== e.timestampsMs[j]) return `${seriesKey(a.labels)}[${j}]: t=${a.timestampsMs[j]}, expected ${e.timestampsMs[j]}`;
      const av = a.values[j]!;
      const ev = e.values[j]!;
      if (!Object.is(av, ev) || isStaleNaN(av) !== isStaleNaN(ev)) return `${seriesKey(a.labels)} at ${a.timestampsMs[j]}: ${av}, expected ${ev}`;
    }
  }
  return undefined;
}
