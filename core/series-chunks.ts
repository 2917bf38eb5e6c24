/**
 * Splits a select result into parts that each fit one NATS message, splitting a single
 * large series across parts where needed. The receiver merges parts by series key.
 */
import { NATS_PAYLOAD_BYTES_MAX } from './defaults.js';
import { seriesKey, type SeriesSamples } from './model.js';

/** Bytes a sample takes in JSON at most (two numbers and separators), used for sizing. */
const SAMPLE_JSON_BYTES_MAX = 48;

export function chunkSeries(series: SeriesSamples[], partBytesMax = NATS_PAYLOAD_BYTES_MAX / 2): SeriesSamples[][] {
  const parts: SeriesSamples[][] = [];
  let part: SeriesSamples[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (part.length > 0) parts.push(part);
    part = [];
    bytes = 0;
  };
  for (const s of series) {
    const labelBytes = JSON.stringify(s.labels).length + 64;
    let start = 0;
    do {
      const room = Math.max(1, Math.floor((partBytesMax - bytes - labelBytes) / SAMPLE_JSON_BYTES_MAX));
      if (room <= 1 && part.length > 0) {
        flush();
        continue;
      }
      const end = Math.min(s.timestampsMs.length, start + room);
      part.push({ labels: s.labels, timestampsMs: s.timestampsMs.slice(start, end), values: s.values.slice(start, end) });
      bytes += labelBytes + (end - start) * SAMPLE_JSON_BYTES_MAX;
      start = end;
      if (bytes >= partBytesMax) flush();
    } while (start < s.timestampsMs.length);
  }
  flush();
  return parts.length === 0 ? [[]] : parts;
}

/** Joins parts back into one list of series (parts of one series are concatenated in order). */
/** Pieces of each series (by series key, first seen first), from several lists. */
function piecesByKey(lists: SeriesSamples[][]): Map<string, SeriesSamples[]> {
  const byKey = new Map<string, SeriesSamples[]>();
  for (const list of lists) {
    for (const s of list) {
      const key = seriesKey(s.labels);
      const pieces = byKey.get(key);
      if (pieces === undefined) byKey.set(key, [s]);
      else pieces.push(s);
    }
  }
  return byKey;
}

export function mergeSeriesParts(parts: SeriesSamples[][]): SeriesSamples[] {
  return [...piecesByKey(parts).values()].map((pieces) => (pieces.length === 1 ? pieces[0]! : concatSeries(pieces)));
}

/**
 * Series from several storage members: a series held by more than one (written through
 * partitions that moved between them) gets every sample once, in time order — at a timestamp
 * two members both hold, the first member's value. Sorted by series key.
 */
export function mergeMemberSeries(members: SeriesSamples[][]): SeriesSamples[] {
  const out: [string, SeriesSamples][] = [];
  for (const [key, pieces] of piecesByKey(members)) {
    if (pieces.length === 1) {
      out.push([key, pieces[0]!]);
      continue;
    }
    const points: { t: number; order: number; i: number }[] = [];
    pieces.forEach((piece, order) => {
      for (let i = 0; i < piece.timestampsMs.length; i++) points.push({ t: piece.timestampsMs[i]!, order, i });
    });
    points.sort((a, b) => a.t - b.t || a.order - b.order);
    const timestampsMs: number[] = [];
    const values = new Float64Array(points.length);
    let n = 0;
    for (const p of points) {
      if (n > 0 && timestampsMs[n - 1] === p.t) continue;
      timestampsMs.push(p.t);
      // Copied as bits (a subarray set), so a staleness marker's NaN payload survives.
      values.set(pieces[p.order]!.values.subarray(p.i, p.i + 1), n++);
    }
    out.push([key, { labels: pieces[0]!.labels, timestampsMs, values: values.subarray(0, n) }]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, s]) => s);
}

/** One series from pieces of it in time order (values stay in a typed array: see SeriesSamples). */
export function concatSeries(pieces: SeriesSamples[]): SeriesSamples {
  const length = pieces.reduce((n, p) => n + p.values.length, 0);
  const values = new Float64Array(length);
  const timestampsMs: number[] = [];
  let at = 0;
  for (const piece of pieces) {
    values.set(piece.values, at);
    at += piece.values.length;
    for (const t of piece.timestampsMs) timestampsMs.push(t);
  }
  return { labels: pieces[0]!.labels, timestampsMs, values };
}
