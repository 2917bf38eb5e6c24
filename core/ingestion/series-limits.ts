/**
 * Named limits on what one series may look like, checked on every write path (seed JSON, remote
 * write, Influx line protocol) before anything is queued. A request with one series over a limit
 * is refused whole (400), naming the limit, its value, the series and the sample's index;
 * nothing of it is stored. Defaults are Mimir's (labels per series 30, label names 1,024 bytes,
 * label values 2,048), the metric name the seed's 255.
 *
 * Lengths are counted in UTF-16 code units (what JavaScript's `length` gives: for ASCII, bytes).
 */
import type { WireSample } from '../model.js';
import { METRIC_NAME_LABEL } from '../model.js';

export interface SeriesShapeLimits {
  /** Labels a series may have, `__name__` included. */
  labelsPerSeriesMax: number;
  labelNameLengthMax: number;
  labelValueLengthMax: number;
  metricNameLengthMax: number;
}

/** Why a write was refused, as the `reason` label of `craft_ingestion_rejected_total`. */
export type RejectReason = 'labels_per_series' | 'label_name_length' | 'label_value_length' | 'metric_name_length' | 'series_per_tenant' | 'new_series_per_minute' | 'series_total';
export const REJECT_REASONS: readonly RejectReason[] = ['labels_per_series', 'label_name_length', 'label_value_length', 'metric_name_length', 'series_per_tenant', 'new_series_per_minute', 'series_total'];

export interface SeriesRefusal {
  reason: RejectReason;
  /** The configuration name of the limit (`ingestion.<limit>`). */
  limit: string;
  max: number;
  actual: number;
  sampleIndex: number;
  /** The series, shortened to 256 characters. */
  series: string;
  message: string;
}

const SERIES_SHOWN_MAX = 256;

/** A series as PromQL writes it, shortened (a 100 KB label value is not echoed back whole). */
export function seriesText(labels: Record<string, string>): string {
  const name = labels[METRIC_NAME_LABEL] ?? '';
  const pairs: string[] = [];
  let length = name.length;
  for (const key in labels) {
    if (key === METRIC_NAME_LABEL) continue;
    const value = labels[key]!;
    const pair = `${key.length > 64 ? `${key.slice(0, 64)}…` : key}=${JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)}`;
    pairs.push(pair);
    length += pair.length + 1;
    if (length > SERIES_SHOWN_MAX) break;
  }
  const text = `${name}{${pairs.join(',')}}`;
  return text.length > SERIES_SHOWN_MAX ? `${text.slice(0, SERIES_SHOWN_MAX - 1)}…` : text;
}

/** The first series over a shape limit, or undefined when every series is within them. */
export function checkSeriesShape(samples: readonly WireSample[], limits: SeriesShapeLimits): SeriesRefusal | undefined {
  for (let i = 0; i < samples.length; i++) {
    const labels = samples[i]![0];
    let count = 0;
    for (const key in labels) {
      count += 1;
      const value = labels[key]!;
      if (key === METRIC_NAME_LABEL) {
        if (value.length > limits.metricNameLengthMax) return refusal('metric_name_length', 'metricNameLengthMax', limits.metricNameLengthMax, value.length, i, labels, `metric name of ${value.length} characters is over metricNameLengthMax=${limits.metricNameLengthMax}`);
        continue;
      }
      if (key.length > limits.labelNameLengthMax) return refusal('label_name_length', 'labelNameLengthMax', limits.labelNameLengthMax, key.length, i, labels, `label name of ${key.length} characters is over labelNameLengthMax=${limits.labelNameLengthMax}`);
      if (value.length > limits.labelValueLengthMax) return refusal('label_value_length', 'labelValueLengthMax', limits.labelValueLengthMax, value.length, i, labels, `label ${key.length > 64 ? `${key.slice(0, 64)}…` : key} has a value of ${value.length} characters, over labelValueLengthMax=${limits.labelValueLengthMax}`);
    }
    if (count > limits.labelsPerSeriesMax) return refusal('labels_per_series', 'labelsPerSeriesMax', limits.labelsPerSeriesMax, count, i, labels, `series has ${count} labels (__name__ included), over labelsPerSeriesMax=${limits.labelsPerSeriesMax}`);
  }
  return undefined;
}

function refusal(reason: RejectReason, limit: string, max: number, actual: number, sampleIndex: number, labels: Record<string, string>, message: string): SeriesRefusal {
  return { reason, limit, max, actual, sampleIndex, series: seriesText(labels), message };
}

/** The JSON body of a refusal: what is over which limit, for which series, at which sample. */
export function refusalBody(refusal: SeriesRefusal): Record<string, unknown> {
  return { error: `${refusal.message}: ${refusal.series} (sample ${refusal.sampleIndex}); nothing of this request was stored`, reason: refusal.reason, limit: refusal.limit, max: refusal.max, actual: refusal.actual, series: refusal.series, sample_index: refusal.sampleIndex };
}
