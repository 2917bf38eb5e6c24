/**
 * The seed's JSON ingestion formats and its validation rules, word for word where the seed
 * defined the message (see SEED-NOTES.md):
 *
 *   batch   {"metrics":[{"name","value","type"?,"tags"?,"timestamp"?}]}   → 200 {"success":true,"metrics_processed":N}
 *   single  {"name","value"}                                              → 202 {"status":"accepted"}   (Craft #0)
 */
import { METRIC_NAME_LABEL, METRIC_TYPES, type IngestBatch, type Labels, type MetricType, type WireSample } from '../model.js';

export interface SeedLimits {
  batchMetricsMax: number;
  metricNameLengthMax: number;
}

export type SeedParse =
  | { ok: true; form: 'batch' | 'single'; samples: WireSample[]; types: Record<string, MetricType> }
  | { ok: false; error: string; metricIndex?: number };

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function invalid(message: string, metricIndex?: number): SeedParse {
  return metricIndex === undefined ? { ok: false, error: message } : { ok: false, error: `Invalid metric: ${message}`, metricIndex };
}

/** Validates one metric object; returns the sample or the seed's message. */
function metricToSample(
  metric: unknown,
  index: number | undefined,
  limits: SeedLimits,
  nowMs: number,
  types: Record<string, MetricType>,
): WireSample | SeedParse {
  if (typeof metric !== 'object' || metric === null || Array.isArray(metric)) return invalid('Metric must be an object', index);
  const m = metric as Record<string, unknown>;
  if (typeof m.name !== 'string' || m.name === '') return invalid('Metric name must be a non-empty string', index);
  if (m.name.length > limits.metricNameLengthMax) return invalid(`Metric name too long (max ${limits.metricNameLengthMax} characters)`, index);
  if (typeof m.value !== 'number' || !Number.isFinite(m.value)) return invalid('Metric value must be a finite number', index);
  let timestampMs = nowMs;
  let stamped = true;
  if (m.timestamp !== undefined && m.timestamp !== null) {
    stamped = false;
    if (typeof m.timestamp !== 'number' || !Number.isSafeInteger(m.timestamp) || m.timestamp < 0) {
      return invalid('Metric timestamp must be a non-negative integer (ms since epoch)', index);
    }
    timestampMs = m.timestamp;
  }
  const labels: Labels = { [METRIC_NAME_LABEL]: m.name };
  if (m.tags !== undefined && m.tags !== null) {
    if (typeof m.tags !== 'object' || Array.isArray(m.tags)) return invalid('Metric tags must be an object of strings', index);
    for (const [key, value] of Object.entries(m.tags as Record<string, unknown>)) {
      if (typeof value !== 'string') return invalid(`Tag "${key}" must be a string`, index);
      if (!LABEL_NAME.test(key) || key.startsWith('__')) return invalid(`Tag name "${key}" is not a valid label name`, index);
      labels[key] = value;
    }
  }
  const type = typeof m.type === 'string' && (METRIC_TYPES as readonly string[]).includes(m.type) ? (m.type as MetricType) : 'gauge';
  if (type !== 'gauge') types[m.name] = type;
  return stamped ? [labels, timestampMs, m.value, 1] : [labels, timestampMs, m.value];
}

/** Validates a parsed JSON body in either seed form. */
export function parseSeedBody(body: unknown, limits: SeedLimits, nowMs: number): SeedParse {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, error: 'invalid JSON format' };
  const record = body as Record<string, unknown>;
  const types = Object.create(null) as Record<string, MetricType>;
  if (!('metrics' in record)) {
    if (!('name' in record) || !('value' in record)) return { ok: false, error: 'invalid JSON format' };
    const sample = metricToSample(record, undefined, limits, nowMs, types);
    if (!Array.isArray(sample)) return sample;
    return { ok: true, form: 'single', samples: [sample], types };
  }
  const metrics = record.metrics;
  if (!Array.isArray(metrics)) return { ok: false, error: 'metrics must be an array' };
  if (metrics.length === 0) return { ok: false, error: 'Batch cannot be empty' };
  if (metrics.length > limits.batchMetricsMax) return { ok: false, error: `Batch size exceeds maximum (${limits.batchMetricsMax} metrics)` };
  const samples: WireSample[] = new Array(metrics.length);
  for (let i = 0; i < metrics.length; i++) {
    const sample = metricToSample(metrics[i], i, limits, nowMs, types);
    if (!Array.isArray(sample)) return sample;
    samples[i] = sample;
  }
  return { ok: true, form: 'batch', samples, types };
}

export function toBatch(client: string, receivedAtMs: number, samples: WireSample[], types: Record<string, MetricType>): IngestBatch {
  return Object.keys(types).length === 0 ? { client, receivedAtMs, samples } : { client, receivedAtMs, samples, types };
}
