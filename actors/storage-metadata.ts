/**
 * Metric metadata the storage actor keeps beside the samples: the type each metric name was
 * sent with (seed JSON `type`, remote write's metadata), per client — the tenant when tokens are
 * configured — for the Prometheus API's `/api/v1/metadata`. A tenant sees the type it sent; a
 * listing for everybody gives each distinct type a metric was sent with (Prometheus's list of
 * entries per metric). A name nobody sent a type for is a gauge, the seed's rule.
 *
 * Kept in one JSON file in the storage directory, shared by every store a swap creates, written
 * atomically (temporary file, then rename) at most once per `SAVE_DELAY_MS` and on stop. It is
 * not sample data: losing the last second of it in a crash loses nothing the next batch with
 * a type does not restore. A file of the older format (one type per name, no client) is read
 * as types every client sent.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock, Timer } from '../core/clock.js';
import { METRIC_TYPES, type MetricType } from '../core/model.js';

export const SAVE_DELAY_MS = 1_000;
/** (metric name, client) pairs whose type is remembered, at most (a cardinality guard: names, not series). */
export const METADATA_ENTRIES_MAX = 100_000;
/** The client of types that hold for every client: sent without tokens (the client id is then no tenant), or read from a file of the older format. */
export const ANY_CLIENT = '';

export interface MetricMetadataEntry {
  type: MetricType;
  help: string;
  unit: string;
}

const isType = (type: unknown): type is MetricType => (METRIC_TYPES as readonly unknown[]).includes(type);

export class MetricMetadata {
  /** name → client → type. */
  private readonly types = new Map<string, Map<string, MetricType>>();
  private entries = 0;
  private timer: Timer | undefined;
  private dirty = false;

  constructor(
    private readonly file: string,
    private readonly clock: Clock,
  ) {
    let saved: unknown;
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return; // No file yet (or an unreadable one): types come back with the next batches that carry them.
    }
    if (saved === null || typeof saved !== 'object') return;
    const byClient = (saved as { byClient?: unknown }).byClient;
    if (byClient !== undefined && byClient !== null && typeof byClient === 'object') {
      for (const [name, clients] of Object.entries(byClient)) for (const [client, type] of Object.entries(clients as object)) if (isType(type)) this.set(name, client, type);
    } else {
      for (const [name, type] of Object.entries(saved)) if (isType(type)) this.set(name, ANY_CLIENT, type);
    }
  }

  private set(name: string, client: string, type: MetricType): boolean {
    let clients = this.types.get(name);
    if (clients?.get(client) === type) return false;
    if (clients?.has(client) !== true) {
      if (this.entries >= METADATA_ENTRIES_MAX) return false;
      this.entries += 1;
    }
    if (clients === undefined) this.types.set(name, (clients = new Map()));
    clients.set(client, type);
    return true;
  }

  /** Records the types a client's batch carries; schedules a save when something changed. */
  note(client: string, types: Record<string, MetricType> | undefined): void {
    if (types === undefined) return;
    for (const [name, type] of Object.entries(types)) if (this.set(name, client, type)) this.dirty = true;
    if (this.dirty && this.timer === undefined) this.timer = this.clock.setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  /** The types of one metric: what `client` sent (else what holds for every client), or every distinct one; none when nobody sent one. */
  private typesOf(name: string, client: string | undefined): MetricType[] {
    const clients = this.types.get(name);
    if (clients === undefined) return [];
    if (client !== undefined) {
      const type = clients.get(client) ?? clients.get(ANY_CLIENT);
      return type === undefined ? [] : [type];
    }
    return [...new Set(clients.values())].sort();
  }

  /**
   * Metadata of `names` (the metric names in the store), optionally one metric, at most `limit`
   * names; as one client sees it, or everybody. A name nobody sent a type for is a gauge — or,
   * with `unknownAs: 'none'`, has no entries (so that several members' answers can be merged:
   * the reader fills in the gauge only when no member knows better).
   */
  list(names: string[], metric?: string, limit?: number, client?: string, unknownAs: 'gauge' | 'none' = 'gauge'): Record<string, MetricMetadataEntry[]> {
    const out: Record<string, MetricMetadataEntry[]> = {};
    let count = 0;
    for (const name of names) {
      if (metric !== undefined && name !== metric) continue;
      if (limit !== undefined && limit >= 0 && count >= limit) break;
      const types = this.typesOf(name, client);
      out[name] = (types.length === 0 && unknownAs === 'gauge' ? ['gauge' as const] : types).map((type) => ({ type, help: '', unit: '' }));
      count += 1;
    }
    return out;
  }

  save(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (!this.dirty) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const temporary = `${this.file}.tmp`;
    const byClient = Object.fromEntries([...this.types].map(([name, clients]) => [name, Object.fromEntries(clients)]));
    writeFileSync(temporary, JSON.stringify({ byClient }));
    renameSync(temporary, this.file);
    this.dirty = false;
  }
}
