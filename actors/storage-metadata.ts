/**
 * Metric metadata the storage actor keeps beside the samples: the type each metric name was
 * sent with (seed JSON `type`, remote write's metadata), for the Prometheus API's
 * `/api/v1/metadata`. A name seen without a type is a gauge, the seed's rule.
 *
 * Kept in one JSON file in the storage directory, shared by every store a swap creates, written
 * atomically (temporary file, then rename) at most once per `SAVE_DELAY_MS` and on stop. It is
 * not sample data: losing the last second of it in a crash loses nothing the next batch with
 * a type does not restore.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock, Timer } from '../core/clock.js';
import { METRIC_TYPES, type MetricType } from '../core/model.js';

export const SAVE_DELAY_MS = 1_000;
/** Metric names whose type is remembered, at most (a cardinality guard: names, not series). */
export const METADATA_NAMES_MAX = 100_000;

export interface MetricMetadataEntry {
  type: MetricType;
  help: string;
  unit: string;
}

export class MetricMetadata {
  private readonly types = new Map<string, MetricType>();
  private timer: Timer | undefined;
  private dirty = false;

  constructor(
    private readonly file: string,
    private readonly clock: Clock,
  ) {
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
      for (const [name, type] of Object.entries(saved)) if ((METRIC_TYPES as readonly string[]).includes(type)) this.types.set(name, type as MetricType);
    } catch {
      // No file yet (or an unreadable one): types come back with the next batches that carry them.
    }
  }

  /** Records the types of a batch; schedules a save when something changed. */
  note(types: Record<string, MetricType> | undefined): void {
    if (types === undefined) return;
    for (const [name, type] of Object.entries(types)) {
      if (this.types.get(name) === type) continue;
      if (!this.types.has(name) && this.types.size >= METADATA_NAMES_MAX) continue;
      this.types.set(name, type);
      this.dirty = true;
    }
    if (this.dirty && this.timer === undefined) this.timer = this.clock.setTimeout(() => this.save(), SAVE_DELAY_MS);
  }

  /** Metadata of `names` (the metric names in the store), optionally one metric, at most `limit` names. */
  list(names: string[], metric?: string, limit?: number): Record<string, MetricMetadataEntry[]> {
    const out: Record<string, MetricMetadataEntry[]> = {};
    let count = 0;
    for (const name of names) {
      if (metric !== undefined && name !== metric) continue;
      if (limit !== undefined && limit >= 0 && count >= limit) break;
      out[name] = [{ type: this.types.get(name) ?? 'gauge', help: '', unit: '' }];
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
    writeFileSync(temporary, JSON.stringify(Object.fromEntries(this.types)));
    renameSync(temporary, this.file);
    this.dirty = false;
  }
}
