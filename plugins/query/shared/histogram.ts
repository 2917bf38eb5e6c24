/**
 * histogram_quantile over classic histograms: series that differ only in `le` are the buckets
 * of one histogram (cumulative counts with upper bounds); the quantile is interpolated
 * linearly inside the bucket its rank falls in, with Prometheus's repairs: buckets of equal
 * bound are added together, counts that go down are raised to the running maximum, and a
 * histogram without a +Inf bucket gives NaN.
 */
import { METRIC_NAME_LABEL, type Labels } from '../../../core/model.js';
import { SeriesSet, byStep, labelsKey, type Grid, type VectorValue } from './values.js';

interface Bucket {
  upperBound: number;
  count: number;
}

/** Go's strconv.ParseFloat as far as `le` values go: decimals, exponents, Inf/NaN spellings. */
export function parseGoFloat(text: string): number | undefined {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (/^[+-]?(inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(text)) return NaN;
  return undefined;
}

export function bucketQuantile(q: number, input: Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...input].sort((a, b) => a.upperBound - b.upperBound);
  if (sorted.at(-1)!.upperBound !== Infinity) return NaN;
  const buckets: Bucket[] = [];
  for (const b of sorted) {
    const last = buckets.at(-1);
    if (last !== undefined && last.upperBound === b.upperBound) last.count += b.count;
    else buckets.push({ ...b });
  }
  let max = -Infinity;
  for (const b of buckets) {
    if (b.count > max) max = b.count;
    else if (b.count < max) b.count = max;
  }
  if (buckets.length < 2) return NaN;
  const observations = buckets.at(-1)!.count;
  if (observations === 0) return NaN;
  let rank = q * observations;
  let b = 0;
  while (b < buckets.length - 1 && !(buckets[b]!.count >= rank)) b++;
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.upperBound;
  if (b === 0 && buckets[0]!.upperBound <= 0) return buckets[0]!.upperBound;
  let bucketStart = 0;
  const bucketEnd = buckets[b]!.upperBound;
  let count = buckets[b]!.count;
  if (b > 0) {
    bucketStart = buckets[b - 1]!.upperBound;
    count -= buckets[b - 1]!.count;
    rank -= buckets[b - 1]!.count;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

export function histogramQuantile(phi: Float64Array, input: VectorValue, grid: Grid): VectorValue {
  // Histograms by their labels without `le` (the name stays in the key, as Prometheus keys them).
  const histogramOf: number[] = [];
  const bounds: (number | undefined)[] = [];
  const outputs: Labels[] = [];
  const index = new Map<string, number>();
  for (const s of input.series) {
    const bound = s.labels.le === undefined ? undefined : parseGoFloat(s.labels.le);
    bounds.push(bound);
    const rest = { ...s.labels };
    delete rest.le;
    const key = labelsKey(rest);
    let h = index.get(key);
    if (h === undefined) {
      h = outputs.length;
      delete rest[METRIC_NAME_LABEL];
      outputs.push(rest);
      index.set(key, h);
    }
    histogramOf.push(h);
  }
  const table = byStep(input.series, grid.count);
  const out = new SeriesSet();
  const buckets = new Map<number, Bucket[]>();
  for (let step = 0; step < grid.count; step++) {
    buckets.clear();
    for (let at = table.offsets[step]!; at < table.offsets[step + 1]!; at++) {
      const series = table.seriesIndex[at]!;
      const upperBound = bounds[series];
      if (upperBound === undefined) continue;
      const h = histogramOf[series]!;
      let list = buckets.get(h);
      if (list === undefined) buckets.set(h, (list = []));
      list.push({ upperBound, count: table.values[at]! });
    }
    for (const [h, list] of buckets) out.add(outputs[h]!, step, bucketQuantile(phi[step]!, list));
  }
  return { kind: 'vector', series: out.series() };
}
