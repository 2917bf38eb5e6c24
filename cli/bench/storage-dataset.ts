/**
 * The dataset of `craft bench storage`: what a Prometheus-style scraper writes, generated
 * deterministically from a seed so every engine gets the same samples and a run can be
 * repeated.
 *
 * - Series belong to targets (`instance`) of `SERIES_PER_TARGET` series each; every target is
 *   scraped every `SCRAPE_INTERVAL_MS` at its own offset in the interval, and every sample's
 *   timestamp gets up to ±`SCRAPE_JITTER_MS_MAX` ms of jitter (what a real scraper's clock
 *   adds, and what costs a delta-of-delta encoder bits).
 * - A third of the series are counters (integer increments), a third gauges (a random walk
 *   kept at two decimals), a third constant or rarely changing (`up`, `*_info`, sizes).
 * - Samples come in time order, interleaved across series the way scrapes arrive: every
 *   target's scrape of tick k before any sample of tick k+1.
 * - Every series has the label `cluster="c<index / SERIES_PER_CLUSTER>"`, so `{cluster="c0"}`
 *   selects (up to) the first 1,000 series whatever `--series` is.
 *
 * Each series draws from its own generator, so its samples depend on (seed, index) only:
 * `seriesSamples` regenerates one series to check what a store returns.
 */
import { METRIC_NAME_LABEL, type Labels } from '../../core/model.js';

export const SCRAPE_INTERVAL_MS = 15_000;
/** Largest scrape jitter either way, ms. */
export const SCRAPE_JITTER_MS_MAX = 4;
/** First scrape tick: 2026-01-01T00:00:00Z. */
export const START_MS = 1_767_225_600_000;
export const SERIES_PER_TARGET = 30;
/** Series per value of the `cluster` label: the aggregation query's selection. */
export const SERIES_PER_CLUSTER = 1_000;
export const SERIES_MAX = 10_000;
export const HOURS_MAX = 168;
export const SEED_DEFAULT = 20_260_101;

export const SERIES_KINDS = ['counter', 'gauge', 'constant'] as const;
export type SeriesKind = (typeof SERIES_KINDS)[number];

/** Ten families per kind: name plus one family label; a target has one series of each. */
const FAMILIES: Record<SeriesKind, [name: string, label?: [string, string]][]> = {
  counter: [
    ['http_requests_total', ['code', '200']],
    ['http_requests_total', ['code', '500']],
    ['node_cpu_seconds_total', ['mode', 'user']],
    ['node_cpu_seconds_total', ['mode', 'system']],
    ['node_cpu_seconds_total', ['mode', 'idle']],
    ['node_network_receive_bytes_total', ['device', 'eth0']],
    ['node_network_transmit_bytes_total', ['device', 'eth0']],
    ['node_disk_read_bytes_total', ['device', 'vda']],
    ['node_disk_written_bytes_total', ['device', 'vda']],
    ['process_cpu_seconds_total'],
  ],
  gauge: [
    ['node_load1'],
    ['node_load5'],
    ['node_load15'],
    ['node_hwmon_temp_celsius', ['sensor', 'temp1']],
    ['node_hwmon_temp_celsius', ['sensor', 'temp2']],
    ['node_filesystem_avail_percent', ['mountpoint', '/']],
    ['node_filesystem_avail_percent', ['mountpoint', '/data']],
    ['process_resident_memory_megabytes'],
    ['http_request_duration_seconds_avg', ['handler', '/metrics']],
    ['queue_depth_ratio', ['queue', 'ingest']],
  ],
  constant: [
    ['up'],
    ['node_cpu_count'],
    ['process_max_fds'],
    ['node_uname_info', ['release', '6.1.0-18-amd64']],
    ['build_info', ['version', '2.53.0']],
    ['node_filesystem_size_bytes', ['mountpoint', '/']],
    ['node_memory_MemTotal_bytes'],
    ['process_start_time_seconds'],
    ['config_last_reload_success_timestamp_seconds'],
    ['node_boot_time_seconds'],
  ],
};
const JOBS = ['node', 'api', 'db', 'cache', 'queue'];
/** Chance per scrape that a rarely changing series changes. */
const RARE_CHANGE_PROBABILITY = 1 / 2_000;

export interface DatasetSpec {
  series: number;
  hours: number;
  seed: number;
}

/** A deterministic pseudo-random generator (mulberry32) returning [0, 1). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const seriesKind = (index: number): SeriesKind => SERIES_KINDS[index % 3]!;
export const samplesPerSeries = (hours: number): number => Math.floor((hours * 3_600_000) / SCRAPE_INTERVAL_MS);
/** Inclusive time range that holds every sample of the dataset. */
export const datasetRange = (hours: number): [minTimeMs: number, maxTimeMs: number] => [START_MS, START_MS + samplesPerSeries(hours) * SCRAPE_INTERVAL_MS];

export function seriesLabels(index: number): Labels {
  const target = Math.floor(index / SERIES_PER_TARGET);
  const slot = index % SERIES_PER_TARGET;
  const [name, label] = FAMILIES[seriesKind(index)][Math.floor(slot / 3)]!;
  const labels: Labels = {
    [METRIC_NAME_LABEL]: name,
    cluster: `c${Math.floor(index / SERIES_PER_CLUSTER)}`,
    instance: `host-${String(target).padStart(4, '0')}:9100`,
    job: JOBS[target % JOBS.length]!,
  };
  if (label !== undefined) labels[label[0]] = label[1];
  return labels;
}

/** One series' generator: next() gives the jitter and value of its next scrape. */
class SeriesGenerator {
  private readonly next: () => number;
  private value: number;
  /** Counter: largest increment; gauge: largest step in hundredths; constant: 0 = never changes. */
  private readonly step: number;

  constructor(readonly kind: SeriesKind, seed: number) {
    this.next = random(seed);
    const pick = this.next();
    if (kind === 'counter') {
      this.step = [1, 10, 100, 1_000][Math.floor(pick * 4)]!;
      this.value = Math.floor(this.next() * 1_000_000);
    } else if (kind === 'gauge') {
      this.step = [5, 50, 500][Math.floor(pick * 3)]!;
      this.value = Math.floor(this.next() * 10_000);
    } else {
      this.step = pick < 0.5 ? 0 : 1;
      this.value = Math.floor(this.next() * 100_000);
    }
  }

  /** Fills `out` with [jitter ms, value] of the next scrape. */
  scrape(out: Float64Array): void {
    out[0] = Math.floor(this.next() * (2 * SCRAPE_JITTER_MS_MAX + 1)) - SCRAPE_JITTER_MS_MAX;
    const r = this.next();
    if (this.kind === 'counter') {
      this.value += Math.floor(r * (this.step + 1));
      out[1] = this.value;
    } else if (this.kind === 'gauge') {
      // Kept in hundredths so the value is exactly "rounded to two decimals".
      this.value += Math.round((2 * r - 1) * this.step);
      out[1] = this.value / 100;
    } else {
      if (this.step !== 0 && r < RARE_CHANGE_PROBABILITY) this.value = Math.floor(this.next() * 100_000);
      out[1] = this.value;
    }
  }
}

/** Samples of one commit, as parallel arrays; `length` of them are valid. */
export interface Batch {
  series: Int32Array;
  timestampsMs: Float64Array;
  values: Float64Array;
  length: number;
}

export class ScrapeDataset {
  readonly labels: Labels[];
  readonly samplesPerSeries: number;
  readonly totalSamples: number;
  /** Series indexes in the order a tick's scrapes arrive (by target offset). */
  private readonly arrival: Int32Array;
  private readonly offsetMs: Float64Array;

  constructor(readonly spec: DatasetSpec) {
    if (!Number.isInteger(spec.series) || spec.series < 1 || spec.series > SERIES_MAX) throw new RangeError(`series must be an integer 1–${SERIES_MAX}, got ${spec.series}`);
    if (!(spec.hours > 0 && spec.hours <= HOURS_MAX)) throw new RangeError(`hours must be in (0, ${HOURS_MAX}], got ${spec.hours}`);
    this.samplesPerSeries = samplesPerSeries(spec.hours);
    if (this.samplesPerSeries < 1) throw new RangeError(`hours ${spec.hours} holds no scrape`);
    this.totalSamples = this.samplesPerSeries * spec.series;
    this.labels = Array.from({ length: spec.series }, (_, i) => seriesLabels(i));
    const targets = Math.ceil(spec.series / SERIES_PER_TARGET);
    const offsets = random(spec.seed);
    // Offsets keep the jitter inside the tick, so a series' timestamps strictly increase.
    const targetOffsetMs = Array.from({ length: targets }, () => SCRAPE_JITTER_MS_MAX + Math.floor(offsets() * (SCRAPE_INTERVAL_MS - 2 * SCRAPE_JITTER_MS_MAX)));
    this.offsetMs = Float64Array.from({ length: spec.series }, (_, i) => targetOffsetMs[Math.floor(i / SERIES_PER_TARGET)]!);
    this.arrival = Int32Array.from(
      Array.from({ length: spec.series }, (_, i) => i).sort((a, b) => this.offsetMs[a]! - this.offsetMs[b]! || a - b),
    );
  }

  private generator(index: number): SeriesGenerator {
    return new SeriesGenerator(seriesKind(index), (this.spec.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  }

  /**
   * Every sample in arrival order, `samplesPerCommit` at a time. The stream allocates its
   * generators and buffers when created (so a memory baseline can be taken after it); the
   * batch's arrays are reused between calls of `next`.
   */
  stream(samplesPerCommit: number): BatchStream {
    return new BatchStream(this, Array.from({ length: this.spec.series }, (_, i) => this.generator(i)), samplesPerCommit);
  }

  /** Timestamp of series `index` at `tick` for a given jitter. */
  timestampMs(index: number, tick: number, jitterMs: number): number {
    return START_MS + tick * SCRAPE_INTERVAL_MS + this.offsetMs[index]! + jitterMs;
  }

  /** The series of one tick in the order their scrapes arrive. */
  get arrivalOrder(): Int32Array {
    return this.arrival;
  }

  /** The samples of one series, regenerated (for checking a store's answer). */
  seriesSamples(index: number): { timestampsMs: number[]; values: number[] } {
    const generator = this.generator(index);
    const scrape = new Float64Array(2);
    const timestampsMs: number[] = [];
    const values: number[] = [];
    for (let tick = 0; tick < this.samplesPerSeries; tick++) {
      generator.scrape(scrape);
      timestampsMs.push(this.timestampMs(index, tick, scrape[0]!));
      values.push(scrape[1]!);
    }
    return { timestampsMs, values };
  }
}

/** The samples of a dataset in arrival order, one commit's worth per `next()`. */
export class BatchStream {
  private readonly batch: Batch;
  private readonly scrape = new Float64Array(2);
  private tick = 0;
  private position = 0;

  constructor(private readonly dataset: ScrapeDataset, private readonly generators: SeriesGenerator[], samplesPerCommit: number) {
    this.batch = { series: new Int32Array(samplesPerCommit), timestampsMs: new Float64Array(samplesPerCommit), values: new Float64Array(samplesPerCommit), length: 0 };
  }

  /** The next batch (its arrays are overwritten by the following call), or undefined at the end. */
  next(): Batch | undefined {
    const { batch, scrape, dataset } = this;
    const arrival = dataset.arrivalOrder;
    batch.length = 0;
    while (batch.length < batch.series.length && this.tick < dataset.samplesPerSeries) {
      const index = arrival[this.position]!;
      this.generators[index]!.scrape(scrape);
      batch.series[batch.length] = index;
      batch.timestampsMs[batch.length] = dataset.timestampMs(index, this.tick, scrape[0]!);
      batch.values[batch.length] = scrape[1]!;
      batch.length += 1;
      this.position += 1;
      if (this.position === arrival.length) {
        this.position = 0;
        this.tick += 1;
      }
    }
    return batch.length === 0 ? undefined : batch;
  }
}
