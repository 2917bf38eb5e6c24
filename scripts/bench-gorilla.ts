/**
 * Throughput and size of the Gorilla chunk codec on a day of scrapes for 1 500 series
 * (8 640 000 samples), cut into chunks of 120 samples as Prometheus cuts them.
 *
 *   npx tsc -p . && node dist/scripts/bench-gorilla.js [rounds]
 *
 * Prints bytes per sample for each kind of series (the report docs/storage/chunks.md quotes),
 * then encode and decode throughput in samples per second: the best of `rounds` rounds
 * (default 5) after three warm-up rounds. test/gorilla.test.ts asserts compression on the same
 * dataset, and that the page quotes the report as this prints it.
 */
import { pathToFileURL } from 'node:url';
import { random } from '../cli/bench/storage-dataset.js';
import { ChunkAppender, chunkIterator, decodeChunkInto, decodeChunkRange } from '../plugins/storage/shared/gorilla.js';

/** Scrape interval of the dataset. */
export const SCRAPE_INTERVAL_MS = 15_000;
/** Largest scrape jitter either way. */
export const SCRAPE_JITTER_MS_MAX = 3;
/** Samples a series has: one day of 15 s scrapes. */
export const SERIES_SAMPLES = 5_760;
/** Samples per chunk, as Prometheus cuts head chunks. */
export const CHUNK_SAMPLES = 120;
/** First timestamp of every series: 2023-11-14T22:13:20Z. */
export const START_MS = 1_700_000_000_000;

/**
 * The kinds of series in the dataset:
 * - counter: integer increments of 0 to 10 a scrape, jittered timestamps;
 * - gauge: a random walk of ±0.05 a scrape kept at two decimals, jittered timestamps;
 * - constant: always 1 (like `up`), timestamps on the exact interval, as a scraper that aligns
 *   timestamps writes them;
 * - constant-jittered: always 1, jittered timestamps (what the timestamps alone cost).
 */
export const SERIES_KINDS = ['counter', 'gauge', 'constant', 'constant-jittered'] as const;
export type SeriesKind = (typeof SERIES_KINDS)[number];


/** One series of the dataset, deterministic in (kind, seed). */
export function scrapeSeries(kind: SeriesKind, seed: number, samples = SERIES_SAMPLES): { timestampsMs: Float64Array; values: Float64Array } {
  const next = random(seed);
  const timestampsMs = new Float64Array(samples);
  const values = new Float64Array(samples);
  const jittered = kind !== 'constant';
  let counter = Math.floor(next() * 1_000_000);
  let gaugeHundredths = Math.floor(next() * 10_000);
  for (let index = 0; index < samples; index++) {
    const jitterMs = jittered ? Math.floor(next() * (2 * SCRAPE_JITTER_MS_MAX + 1)) - SCRAPE_JITTER_MS_MAX : 0;
    timestampsMs[index] = START_MS + index * SCRAPE_INTERVAL_MS + jitterMs;
    if (kind === 'counter') {
      counter += Math.floor(next() * 11);
      values[index] = counter;
    } else if (kind === 'gauge') {
      gaugeHundredths += Math.floor(next() * 11) - 5;
      values[index] = gaugeHundredths / 100;
    } else {
      values[index] = 1;
    }
  }
  return { timestampsMs, values };
}

/** Encodes a series as chunks of CHUNK_SAMPLES samples. */
export function encodeSeries(timestampsMs: Float64Array, values: Float64Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < timestampsMs.length; start += CHUNK_SAMPLES) {
    const appender = new ChunkAppender();
    const end = Math.min(timestampsMs.length, start + CHUNK_SAMPLES);
    for (let index = start; index < end; index++) appender.append(timestampsMs[index]!, values[index]!);
    chunks.push(appender.bytes());
  }
  return chunks;
}

/** Series in the dataset: SERIES_KINDS in turn, so each kind has a quarter. */
export const DATASET_SERIES = 1_500;

/** Series `index` of the dataset (0 ≤ index < DATASET_SERIES): its kind and seed follow from it. */
export function datasetSeries(index: number): { kind: SeriesKind; timestampsMs: Float64Array; values: Float64Array } {
  const kind = SERIES_KINDS[index % SERIES_KINDS.length]!;
  return { kind, ...scrapeSeries(kind, index + 1) };
}

/**
 * The size report of the dataset encoded as `chunksOf(index)` gives it: bytes per sample for
 * each kind and for all, as lines of text (docs/storage/chunks.md quotes them, and
 * test/gorilla.test.ts checks that the page shows what this prints).
 */
export function sizeReport(chunksOf: (index: number) => readonly Uint8Array[]): { lines: string[]; bytesPerSample: Record<SeriesKind | 'all', number> } {
  const bytesByKind = new Map<SeriesKind, number>();
  let chunkCount = 0;
  for (let index = 0; index < DATASET_SERIES; index++) {
    const kind = SERIES_KINDS[index % SERIES_KINDS.length]!;
    const chunks = chunksOf(index);
    chunkCount += chunks.length;
    bytesByKind.set(kind, (bytesByKind.get(kind) ?? 0) + chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  }
  const samplesPerKind = (DATASET_SERIES / SERIES_KINDS.length) * SERIES_SAMPLES;
  const totalSamples = DATASET_SERIES * SERIES_SAMPLES;
  const totalBytes = [...bytesByKind.values()].reduce((sum, bytes) => sum + bytes, 0);
  const bytesPerSample = { all: totalBytes / totalSamples } as Record<SeriesKind | 'all', number>;
  const lines = [`dataset: ${DATASET_SERIES} series × ${SERIES_SAMPLES} samples = ${totalSamples} samples, ${chunkCount} chunks of ≤ ${CHUNK_SAMPLES}`];
  for (const kind of SERIES_KINDS) {
    bytesPerSample[kind] = bytesByKind.get(kind)! / samplesPerKind;
    lines.push(`  ${kind.padEnd(18)} ${bytesPerSample[kind].toFixed(3)} bytes/sample`);
  }
  lines.push(`  ${'all'.padEnd(18)} ${bytesPerSample.all.toFixed(3)} bytes/sample (${totalBytes} bytes)`);
  return { lines, bytesPerSample };
}

/** The fastest of `rounds` runs, after three warm-up runs (the JIT settles after two or three). */
function best(rounds: number, run: () => void): number {
  for (let warmUp = 0; warmUp < 3; warmUp++) run();
  let fastestMs = Number.POSITIVE_INFINITY;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    run();
    fastestMs = Math.min(fastestMs, performance.now() - started);
  }
  return fastestMs;
}

function main(): void {
  const rounds = Number(process.argv[2] ?? 5);
  const series = Array.from({ length: DATASET_SERIES }, (_, index) => datasetSeries(index));
  const totalSamples = DATASET_SERIES * SERIES_SAMPLES;

  let chunks: Uint8Array[][] = [];
  const encodeMs = best(rounds, () => {
    chunks = series.map((s) => encodeSeries(s.timestampsMs, s.values));
  });
  const report = sizeReport((index) => chunks[index]!);

  const timestampsMs = new Float64Array(totalSamples);
  const values = new Float64Array(totalSamples);
  const allChunks = chunks.flat();
  const decodeMs = best(rounds, () => {
    let at = 0;
    for (const chunk of allChunks) at += decodeChunkInto(chunk, timestampsMs, values, at);
    if (at !== totalSamples) throw new Error(`decoded ${at} of ${totalSamples} samples`);
  });

  // A query for the middle half of the day: whole chunks in the middle, partial ones at the edges.
  const minMs = START_MS + (SERIES_SAMPLES * SCRAPE_INTERVAL_MS) / 4;
  const maxMs = START_MS + (SERIES_SAMPLES * SCRAPE_INTERVAL_MS * 3) / 4;
  let rangeSamples = 0;
  const rangeMs = best(rounds, () => {
    let at = 0;
    for (const chunk of allChunks) at += decodeChunkRange(chunk, minMs, maxMs, timestampsMs, values, at);
    rangeSamples = at;
  });

  const iterator = chunkIterator(allChunks[0]!);
  let checksum = 0;
  const iterateMs = best(rounds, () => {
    checksum = 0;
    for (const chunk of allChunks) {
      iterator.reset(chunk);
      while (iterator.next()) checksum += iterator.timestampMs - START_MS;
    }
  });

  for (const line of report.lines) console.log(line);
  const rate = (samples: number, ms: number): string => `${((samples / ms) * 1000 / 1e6).toFixed(1)} M samples/s (${ms.toFixed(0)} ms)`;
  console.log(`encode (append + bytes)       ${rate(totalSamples, encodeMs)}`);
  console.log(`decodeChunkInto               ${rate(totalSamples, decodeMs)}`);
  console.log(`decodeChunkRange (½ the day)  ${rate(totalSamples, rangeMs)} over all samples, ${rangeSamples} in range`);
  console.log(`iterator next()               ${rate(totalSamples, iterateMs)} (checksum ${checksum})`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
