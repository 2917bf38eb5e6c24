/**
 * Craft #0 store: one JSON object per line in `samples.jsonl`, as the seed's PoC wrote it
 * (`{"name","value","timestamp"}`, plus `labels`). Every select scans the whole file — the
 * cost the storage craft's phases remove. Writes are appended and fsynced before the
 * storage actor commits its queue offsets; the queue positions are appended in the same
 * write as a `{"$positions":{…}}` line. A torn last line (a crash mid-write) is cut off on
 * open; the queue delivers that batch again.
 */
import { bufferedAppender } from '../../core/storage/buffered-appender.js';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { definePlugin } from '../../core/plugins/define.js';
import { rollupSeries } from '../../core/storage/rollup.js';
import { cardinalityOf, compileMatchers, decodeValue, encodeValue, labelNamesOf, labelValuesOf, METRIC_NAME_LABEL, seriesKey, type Labels, type LabelMatcher, type SeriesSamples, type WireSample } from '../../core/model.js';
import type { AppendResult, Appender, CardinalityStats, Querier, QueuePositions, SampleStore, StorageContext, StoreStats } from '../../core/slots/storage.js';

interface Line {
  name?: string;
  value?: number | string | null;
  timestamp?: number;
  labels?: Record<string, string>;
  $positions?: QueuePositions;
}

const SCAN_CHUNK_SAMPLES = 1_000;

function toLine([labels, timestampMs, value]: WireSample): string {
  const rest: Record<string, string> = {};
  let hasRest = false;
  for (const key in labels) {
    if (key === METRIC_NAME_LABEL) continue;
    rest[key] = labels[key]!;
    hasRest = true;
  }
  // JSON has no −0, NaN or ±Inf: −0 is written as the literal -0 (JSON.parse keeps it), the others as strings.
  const encoded = Object.is(value, -0) ? '-0' : JSON.stringify(encodeValue(value));
  return `{"name":${JSON.stringify(labels[METRIC_NAME_LABEL] ?? '')},"value":${encoded},"timestamp":${timestampMs}${hasRest ? `,"labels":${JSON.stringify(rest)}` : ''}}\n`;
}

function fromLine(line: Line): WireSample | undefined {
  if (line.name === undefined || line.timestamp === undefined) return undefined;
  const labels: Labels = { [METRIC_NAME_LABEL]: line.name, ...(line.labels ?? {}) };
  const raw = line.value;
  const value = typeof raw === 'number' ? raw : typeof raw === 'string' ? decodeValue(raw) : NaN;
  return [labels, line.timestamp, value];
}

class JsonLinesStore implements SampleStore {
  private readonly file: string;
  private handle: FileHandle | undefined;
  private applied: QueuePositions = {};
  /** Distinct timestamps per series, so a repeated sample does not count twice. */
  private readonly seen = new Map<string, Set<number>>();
  /** Labels per series key, for cardinality statistics. */
  private readonly labelsByKey = new Map<string, Labels>();
  /** Newest timestamp per series, for server stamps (see core/slots/storage.ts). */
  private readonly newest = new Map<string, number>();
  private samples = 0;
  private bytes = 0;

  constructor(private readonly context: StorageContext) {
    this.file = join(context.dataDir, 'samples.jsonl');
  }

  async open(): Promise<void> {
    await mkdir(this.context.dataDir, { recursive: true });
    await this.cutTornTail();
    for await (const line of this.lines()) {
      if (line.$positions !== undefined) {
        for (const [key, offset] of Object.entries(line.$positions)) this.applied[key] = Math.max(this.applied[key] ?? 0, offset);
        continue;
      }
      const sample = fromLine(line);
      if (sample !== undefined) this.count(sample);
    }
    this.handle = await open(this.file, 'a');
    this.bytes = (await this.handle.stat()).size;
  }

  /** A crash mid-append can leave a last line without its newline: cut it off. */
  private async cutTornTail(): Promise<void> {
    let size: number;
    try {
      size = (await stat(this.file)).size;
    } catch {
      return;
    }
    if (size === 0) return;
    const handle = await open(this.file, 'r');
    try {
      const window = Buffer.alloc(Math.min(size, 1 << 20));
      let end = size;
      for (;;) {
        const start = Math.max(0, end - window.length);
        const { bytesRead } = await handle.read(window, 0, end - start, start);
        const at = window.subarray(0, bytesRead).lastIndexOf(0x0a);
        if (at >= 0) {
          const keep = start + at + 1;
          if (keep < size) {
            this.context.log.warn('cutting torn last line of samples.jsonl', { bytes: size - keep });
            await truncate(this.file, keep);
          }
          return;
        }
        if (start === 0) {
          await truncate(this.file, 0);
          return;
        }
        end = start;
      }
    } finally {
      await handle.close();
    }
  }

  private async *lines(): AsyncGenerator<Line> {
    let stream;
    try {
      await stat(this.file);
      stream = createReadStream(this.file, { encoding: 'utf8' });
    } catch {
      return;
    }
    const reader = createInterface({ input: stream, crlfDelay: Infinity });
    for await (const text of reader) {
      if (text === '') continue;
      yield JSON.parse(text) as Line;
    }
  }

  /** Counts a sample; returns whether it was new (false: it replaced one). */
  private count([labels, timestampMs]: WireSample, key = seriesKey(labels)): boolean {
    let set = this.seen.get(key);
    if (set === undefined) {
      set = new Set();
      this.seen.set(key, set);
      this.labelsByKey.set(key, labels);
    }
    if (timestampMs > (this.newest.get(key) ?? -Infinity)) this.newest.set(key, timestampMs);
    if (set.has(timestampMs)) return false;
    set.add(timestampMs);
    this.samples += 1;
    return true;
  }

  appender(): Appender {
    return bufferedAppender((samples, positions) => this.write(samples, positions));
  }


  private async write(samples: WireSample[], positions: QueuePositions): Promise<AppendResult> {
    const result: AppendResult = { added: 0, replaced: 0, restamped: 0, seriesCreated: 0 };
    // Server stamps move past the series' newest sample, counting this batch's earlier ones.
    const newest = new Map<string, number>();
    const lines: WireSample[] = [];
    for (const sample of samples) {
      const key = seriesKey(sample[0]);
      const newestMs = newest.get(key) ?? this.newest.get(key) ?? -Infinity;
      let timestampMs = sample[1];
      if (sample[3] === 1 && timestampMs <= newestMs) {
        timestampMs = newestMs + 1;
        result.restamped += 1;
      }
      if (timestampMs > newestMs) newest.set(key, timestampMs);
      lines.push([sample[0], timestampMs, sample[2]]);
    }
    let text = '';
    for (const sample of lines) text += toLine(sample);
    if (Object.keys(positions).length > 0) text += `{"$positions":${JSON.stringify(positions)}}\n`;
    if (text === '') return result;
    const handle = this.handle!;
    await handle.appendFile(text, 'utf8');
    await handle.datasync();
    this.bytes += Buffer.byteLength(text);
    const seriesBefore = this.seen.size;
    for (const sample of lines) {
      if (this.count(sample)) result.added += 1;
      else result.replaced += 1;
    }
    result.seriesCreated = this.seen.size - seriesBefore;
    for (const [key, offset] of Object.entries(positions)) this.applied[key] = Math.max(this.applied[key] ?? 0, offset);
    return result;
  }

  positions(): QueuePositions {
    return { ...this.applied };
  }

  querier(minTimeMs: number, maxTimeMs: number): Querier {
    const labelsOf = async (matchers: LabelMatcher[]): Promise<Labels[]> => (await this.select(matchers, minTimeMs, maxTimeMs)).map((s) => s.labels);
    return {
      select: (matchers) => this.select(matchers, minTimeMs, maxTimeMs),
      series: labelsOf,
      labelNames: async (matchers = []) => labelNamesOf(await labelsOf(matchers)),
      labelValues: async (name, matchers = []) => labelValuesOf(await labelsOf(matchers), name),
      rollup: async (matchers, stepMs) => rollupSeries(await this.select(matchers, minTimeMs, maxTimeMs), minTimeMs, maxTimeMs, stepMs),
    };
  }

  /** Full scan: every line is read and tested. A later line for the same series and time wins. */
  private async select(matchers: LabelMatcher[], startMs: number, endMs: number): Promise<SeriesSamples[]> {
    const matches = compileMatchers(matchers);
    const bySeries = new Map<string, { labels: Labels; points: Map<number, number> }>();
    for await (const line of this.lines()) {
      const sample = fromLine(line);
      if (sample === undefined) continue;
      const [labels, t, v] = sample;
      if (t < startMs || t > endMs || !matches(labels)) continue;
      const key = seriesKey(labels);
      let entry = bySeries.get(key);
      if (entry === undefined) {
        entry = { labels, points: new Map() };
        bySeries.set(key, entry);
      }
      entry.points.set(t, v);
    }
    return [...bySeries.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, { labels, points }]) => {
        const timestampsMs = [...points.keys()].sort((a, b) => a - b);
        return { labels, timestampsMs, values: Float64Array.from(timestampsMs, (t) => points.get(t)!) };
      });
  }

  /** Rewrites the whole file without the deleted samples (the PoC has no other way), then reopens. */
  async deleteSeries(matchers: LabelMatcher[], minTimeMs: number, maxTimeMs: number): Promise<number> {
    const matches = compileMatchers(matchers);
    const temp = `${this.file}.rewrite`;
    const out = await open(temp, 'w');
    let deleted = 0;
    try {
      let text = '';
      for await (const line of this.lines()) {
        const sample = line.$positions === undefined ? fromLine(line) : undefined;
        if (sample !== undefined && sample[1] >= minTimeMs && sample[1] <= maxTimeMs && matches(sample[0])) {
          deleted += 1;
          continue;
        }
        // Sample lines through toLine again: JSON.stringify would turn −0 into 0.
        text += sample === undefined ? `${JSON.stringify(line)}\n` : toLine(sample);
        if (text.length > 1 << 20) {
          await out.appendFile(text, 'utf8');
          text = '';
        }
      }
      await out.appendFile(`${text}{"$positions":${JSON.stringify(this.applied)}}\n`, 'utf8');
      await out.datasync();
    } finally {
      await out.close();
    }
    if (deleted === 0) {
      await rm(temp, { force: true });
      return 0;
    }
    const before = this.samples;
    await this.handle?.close();
    await rename(temp, this.file);
    this.seen.clear();
    this.labelsByKey.clear();
    this.newest.clear();
    this.samples = 0;
    this.applied = {};
    await this.open();
    // Lines, not samples, were dropped (a replaced sample has several lines): count what is gone.
    return before - this.samples;
  }

  async *scan(): AsyncIterable<WireSample[]> {
    let chunk: WireSample[] = [];
    for await (const line of this.lines()) {
      const sample = fromLine(line);
      if (sample === undefined) continue;
      chunk.push(sample);
      if (chunk.length >= SCAN_CHUNK_SAMPLES) {
        yield chunk;
        chunk = [];
      }
    }
    if (chunk.length > 0) yield chunk;
  }

  stats(): StoreStats {
    return { series: this.seen.size, samples: this.samples, chunks: 0, bytes: this.bytes, bytesPerSample: this.samples === 0 ? 0 : this.bytes / this.samples };
  }

  cardinality(limit: number): CardinalityStats {
    return cardinalityOf([...this.labelsByKey.values()].map((labels) => ({ labels })), limit);
  }

  async flush(): Promise<void> {
    // Every write is already appended and fsynced: nothing is held back.
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    if (options.destroy === true) await rm(this.context.dataDir, { recursive: true, force: true });
  }
}

export default definePlugin({
  id: 'craft0.jsonl-store',
  craft: 0,
  phase: 0,
  slot: 'storage.engine',
  version: '1.0.0',
  summary: 'One JSON line per sample in a file, fsynced per batch; every query scans the whole file',
  durable: true,
  create: (context) => new JsonLinesStore(context),
});
