/**
 * The platform's default store: raw samples in LevelDB (the `level` package, an LSM tree
 * with a write-ahead log, memtable and SSTables underneath).
 *
 * Layout (all keys are bytes):
 *   S<series key>            → series id (uint32)           series dictionary
 *   I<id:u32>                → labels JSON                  id → labels
 *   X<id:u32>                → newest timestamp (8 bytes)   so in-order writes need no lookup
 *   D<id:u32><t:u64>         → value (float64)              samples, time-ordered per series
 *   Mpositions / Mstats      → JSON                         queue positions, counters
 *
 * A batch of samples, the positions it came from and the counters are one LevelDB batch,
 * written with sync (fsync), so they are durable together before offsets are committed.
 */
import { mkdir, rm } from 'node:fs/promises';
import { Level } from 'level';
import { definePlugin } from '../../core/plugins/define.js';
import { compileMatchers, pinnedMetricName, seriesKey, METRIC_NAME_LABEL, type Labels, type LabelMatcher, type SeriesSamples, type WireSample } from '../../core/model.js';
import type { QueuePositions, SampleStore, StorageContext, StoreStats } from '../../core/slots/storage.js';

const SCAN_CHUNK_SAMPLES = 1_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const TAG = { series: 0x53, info: 0x49, newest: 0x58, data: 0x44, meta: 0x4d } as const;
const TWO_32 = 4_294_967_296;

function idKey(tag: number, id: number): Uint8Array {
  const key = new Uint8Array(5);
  key[0] = tag;
  new DataView(key.buffer).setUint32(1, id);
  return key;
}

/** Order-preserving 8 bytes for a timestamp (negative values sort first). */
function writeTime(view: DataView, at: number, timestampMs: number): void {
  const high = Math.floor(timestampMs / TWO_32);
  view.setUint32(at, (high + 0x80000000) >>> 0);
  view.setUint32(at + 4, timestampMs - high * TWO_32);
}

function readTime(view: DataView, at: number): number {
  return (view.getUint32(at) - 0x80000000) * TWO_32 + view.getUint32(at + 4);
}

function dataKey(id: number, timestampMs: number): Uint8Array {
  const key = new Uint8Array(13);
  const view = new DataView(key.buffer);
  key[0] = TAG.data;
  view.setUint32(1, id);
  writeTime(view, 5, timestampMs);
  return key;
}

function float64(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, value);
  return bytes;
}

const metaKey = (name: string): Uint8Array => encoder.encode(`M${name}`);
const seriesDictKey = (key: string): Uint8Array => encoder.encode(`S${key}`);

interface SeriesEntry {
  id: number;
  labels: Labels;
  newestMs: number;
}

type Op = { type: 'put'; key: Uint8Array; value: Uint8Array };

class LevelStore implements SampleStore {
  private db!: Level<Uint8Array, Uint8Array>;
  private readonly series = new Map<string, SeriesEntry>();
  private readonly byId = new Map<number, SeriesEntry>();
  private readonly byName = new Map<string, SeriesEntry[]>();
  private applied: QueuePositions = {};
  private samples = 0;
  private nextId = 1;

  constructor(private readonly context: StorageContext) {}

  async open(): Promise<void> {
    await mkdir(this.context.dataDir, { recursive: true });
    this.db = new Level<Uint8Array, Uint8Array>(this.context.dataDir, { keyEncoding: 'view', valueEncoding: 'view' });
    await this.db.open();
    for await (const [key, value] of this.db.iterator({ gte: Uint8Array.of(TAG.info), lt: Uint8Array.of(TAG.info + 1) })) {
      const id = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1);
      const entry: SeriesEntry = { id, labels: JSON.parse(decoder.decode(value)) as Labels, newestMs: -Infinity };
      this.remember(entry);
      this.nextId = Math.max(this.nextId, id + 1);
    }
    for await (const [key, value] of this.db.iterator({ gte: Uint8Array.of(TAG.newest), lt: Uint8Array.of(TAG.newest + 1) })) {
      const id = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1);
      const entry = this.byId.get(id);
      if (entry !== undefined) entry.newestMs = readTime(new DataView(value.buffer, value.byteOffset, value.byteLength), 0);
    }
    const positions = await this.db.get(metaKey('positions'));
    if (positions !== undefined) this.applied = JSON.parse(decoder.decode(positions)) as QueuePositions;
    const stats = await this.db.get(metaKey('stats'));
    if (stats !== undefined) this.samples = (JSON.parse(decoder.decode(stats)) as { samples: number }).samples;
  }

  private remember(entry: SeriesEntry): void {
    this.series.set(seriesKey(entry.labels), entry);
    this.byId.set(entry.id, entry);
    const name = entry.labels[METRIC_NAME_LABEL] ?? '';
    const list = this.byName.get(name);
    if (list === undefined) this.byName.set(name, [entry]);
    else list.push(entry);
  }

  async write(samples: WireSample[], positions: QueuePositions): Promise<void> {
    const ops: Op[] = [];
    const created = new Map<string, SeriesEntry>();
    const newest = new Map<SeriesEntry, number>();
    // A sample newer than its series' newest stored time is new; older ones may exist: look those up.
    const maybeExisting: Uint8Array[] = [];
    const inBatch = new Map<string, Op>();
    let added = 0;
    for (const [labels, timestampMs, value] of samples) {
      const key = seriesKey(labels);
      let entry = this.series.get(key) ?? created.get(key);
      if (entry === undefined) {
        entry = { id: this.nextId++, labels, newestMs: -Infinity };
        created.set(key, entry);
        ops.push({ type: 'put', key: seriesDictKey(key), value: idKey(0, entry.id).subarray(1) });
        ops.push({ type: 'put', key: idKey(TAG.info, entry.id), value: encoder.encode(JSON.stringify(labels)) });
      }
      const dedupeKey = `${entry.id}:${timestampMs}`;
      const existing = inBatch.get(dedupeKey);
      if (existing !== undefined) {
        existing.value = float64(value);
        continue;
      }
      const op: Op = { type: 'put', key: dataKey(entry.id, timestampMs), value: float64(value) };
      inBatch.set(dedupeKey, op);
      ops.push(op);
      if (timestampMs > entry.newestMs) added += 1;
      else maybeExisting.push(op.key);
      if (timestampMs > (newest.get(entry) ?? entry.newestMs)) newest.set(entry, timestampMs);
    }
    if (maybeExisting.length > 0) {
      const found = await this.db.getMany(maybeExisting);
      for (const value of found) if (value === undefined) added += 1;
    }
    for (const [entry, timestampMs] of newest) {
      const bytes = new Uint8Array(8);
      writeTime(new DataView(bytes.buffer), 0, timestampMs);
      ops.push({ type: 'put', key: idKey(TAG.newest, entry.id), value: bytes });
    }
    const nextApplied = { ...this.applied };
    for (const [key, offset] of Object.entries(positions)) nextApplied[key] = Math.max(nextApplied[key] ?? 0, offset);
    ops.push({ type: 'put', key: metaKey('positions'), value: encoder.encode(JSON.stringify(nextApplied)) });
    ops.push({ type: 'put', key: metaKey('stats'), value: encoder.encode(JSON.stringify({ samples: this.samples + added, series: this.series.size + created.size })) });
    await this.db.batch(ops, { sync: true });
    // Only after the write is durable does the in-memory view move on.
    for (const entry of created.values()) this.remember(entry);
    for (const [entry, timestampMs] of newest) entry.newestMs = Math.max(entry.newestMs, timestampMs);
    this.samples += added;
    this.applied = nextApplied;
  }

  positions(): QueuePositions {
    return { ...this.applied };
  }

  private candidates(matchers: LabelMatcher[]): SeriesEntry[] {
    const name = pinnedMetricName(matchers);
    const pool = name === undefined ? [...this.byId.values()] : this.byName.get(name) ?? [];
    const matches = compileMatchers(matchers);
    return pool.filter((entry) => matches(entry.labels));
  }

  async select(matchers: LabelMatcher[], startMs: number, endMs: number): Promise<SeriesSamples[]> {
    const out: SeriesSamples[] = [];
    for (const entry of this.candidates(matchers)) {
      const timestampsMs: number[] = [];
      const values: number[] = [];
      const iterator = this.db.iterator({ gte: dataKey(entry.id, startMs), lte: dataKey(entry.id, endMs) });
      try {
        for (;;) {
          const entries = await iterator.nextv(1_000);
          if (entries.length === 0) break;
          for (const [key, value] of entries) {
            timestampsMs.push(readTime(new DataView(key.buffer, key.byteOffset, key.byteLength), 5));
            values.push(new DataView(value.buffer, value.byteOffset, value.byteLength).getFloat64(0));
          }
        }
      } finally {
        await iterator.close();
      }
      if (timestampsMs.length > 0) out.push({ labels: entry.labels, timestampsMs, values });
    }
    return out;
  }

  async *scan(): AsyncIterable<WireSample[]> {
    const iterator = this.db.iterator({ gte: Uint8Array.of(TAG.data), lt: Uint8Array.of(TAG.data + 1) });
    try {
      for (;;) {
        const entries = await iterator.nextv(SCAN_CHUNK_SAMPLES);
        if (entries.length === 0) break;
        yield entries.map(([key, value]): WireSample => {
          const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
          return [this.byId.get(view.getUint32(1))!.labels, readTime(view, 5), new DataView(value.buffer, value.byteOffset, value.byteLength).getFloat64(0)];
        });
      }
    } finally {
      await iterator.close();
    }
  }

  stats(): StoreStats {
    return { series: this.series.size, samples: this.samples, bytes: 0 };
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    if (this.db !== undefined && this.db.status === 'open') await this.db.close();
    if (options.destroy === true) await rm(this.context.dataDir, { recursive: true, force: true });
  }
}

export default definePlugin({
  id: 'storage.level',
  craft: 3,
  phase: 0,
  slot: 'storage.engine',
  version: '1.0.0',
  summary: 'Platform default: raw samples in LevelDB keyed by series id and time, synced per batch',
  durable: true,
  create: (context) => new LevelStore(context),
});
