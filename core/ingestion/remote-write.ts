/**
 * Prometheus remote write 1.0: `POST /api/v1/write` with a snappy (block format)
 * compressed protobuf `prometheus.WriteRequest`. Decoding uses protobufjs and the native
 * snappy binding; the schema below is the subset of prometheus/prompb/types.proto and
 * remote.proto that remote write 1.0 senders fill (exemplars and native histograms are
 * accepted on the wire and not stored).
 */
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';
import type * as Snappy from 'snappy';
import { METRIC_NAME_LABEL, type Labels, type MetricType, type WireSample } from '../model.js';

const PROTO = `
syntax = "proto3";
package prometheus;
message WriteRequest {
  repeated TimeSeries timeseries = 1;
  reserved 2;
  repeated MetricMetadata metadata = 3;
}
message MetricMetadata {
  enum MetricType {
    UNKNOWN = 0; COUNTER = 1; GAUGE = 2; HISTOGRAM = 3; GAUGEHISTOGRAM = 4; SUMMARY = 5; INFO = 6; STATESET = 7;
  }
  MetricType type = 1;
  string metric_family_name = 2;
  string help = 4;
  string unit = 5;
}
message Sample {
  double value = 1;
  int64 timestamp = 2;
}
message Label {
  string name = 1;
  string value = 2;
}
message Exemplar {
  repeated Label labels = 1;
  double value = 2;
  int64 timestamp = 3;
}
message TimeSeries {
  repeated Label labels = 1;
  repeated Sample samples = 2;
  repeated Exemplar exemplars = 3;
}
`;

/**
 * protobufjs and the snappy binding take ~55 ms to load; most processes and threads that
 * import this module (every ingestion worker thread) never see a remote write, so both are
 * loaded, synchronously, on first use.
 */
const require = createRequire(import.meta.url);
let codec: { type: Protobuf.Type; snappy: typeof Snappy } | undefined;
function loadCodec(): { type: Protobuf.Type; snappy: typeof Snappy } {
  if (codec === undefined) {
    const protobuf = require('protobufjs') as typeof Protobuf;
    codec = { type: protobuf.parse(PROTO, { keepCase: true }).root.lookupType('prometheus.WriteRequest'), snappy: require('snappy') as typeof Snappy };
  }
  return codec;
}

/** The protobuf type of `prometheus.WriteRequest`. */
export const writeRequestType = (): Protobuf.Type => loadCodec().type;

interface DecodedRequest {
  timeseries?: { labels?: { name: string; value: string }[]; samples?: { value: number; timestamp: number | { toNumber(): number } }[] }[];
  metadata?: { type?: number; metric_family_name?: string }[];
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPE_BY_ENUM: Record<number, MetricType | undefined> = { 1: 'counter', 2: 'gauge', 3: 'histogram', 5: 'summary' };

export type RemoteWriteParse = { ok: true; samples: WireSample[]; types: Record<string, MetricType> } | { ok: false; error: string };

const toNumber = (value: number | { toNumber(): number } | undefined): number => (value === undefined ? 0 : typeof value === 'number' ? value : value.toNumber());

/** Decompresses and decodes a remote-write body; validates labels as Prometheus does. */
export function parseRemoteWrite(body: Uint8Array, samplesMax: number): RemoteWriteParse {
  const { type: WriteRequestType, snappy } = loadCodec();
  let raw: Buffer;
  try {
    raw = snappy.uncompressSync(Buffer.from(body.buffer, body.byteOffset, body.byteLength), { asBuffer: true }) as Buffer;
  } catch (error) {
    return { ok: false, error: `snappy decompression failed: ${(error as Error).message}` };
  }
  let request: DecodedRequest;
  try {
    request = WriteRequestType.toObject(WriteRequestType.decode(raw), { longs: Number, defaults: false, arrays: true }) as DecodedRequest;
  } catch (error) {
    return { ok: false, error: `protobuf decoding failed: ${(error as Error).message}` };
  }
  const samples: WireSample[] = [];
  for (const [index, series] of (request.timeseries ?? []).entries()) {
    const labels: Labels = {};
    for (const label of series.labels ?? []) {
      if (label.name !== METRIC_NAME_LABEL && (!LABEL_NAME.test(label.name) || label.name.startsWith('__'))) {
        return { ok: false, error: `timeseries ${index}: invalid label name ${JSON.stringify(label.name)} (names starting with "__" are reserved)` };
      }
      if (label.name in labels) return { ok: false, error: `timeseries ${index}: duplicate label ${label.name}` };
      labels[label.name] = label.value;
    }
    if ((labels[METRIC_NAME_LABEL] ?? '') === '') return { ok: false, error: `timeseries ${index}: missing metric name (__name__ label)` };
    for (const sample of series.samples ?? []) {
      const timestampMs = toNumber(sample.timestamp);
      if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) return { ok: false, error: `timeseries ${index}: timestamp ${timestampMs} is not a non-negative integer (ms)` };
      samples.push([labels, timestampMs, sample.value ?? 0]);
      if (samples.length > samplesMax) return { ok: false, error: `request holds more than ${samplesMax} samples` };
    }
  }
  const types: Record<string, MetricType> = {};
  for (const meta of request.metadata ?? []) {
    const type = TYPE_BY_ENUM[meta.type ?? 0];
    if (type !== undefined && type !== 'gauge' && meta.metric_family_name !== undefined) types[meta.metric_family_name] = type;
  }
  return { ok: true, samples, types };
}

/** Encodes a WriteRequest (tests, and the benchmark's remote-write workload). */
export function encodeRemoteWrite(series: { labels: Labels; samples: [timestampMs: number, value: number][] }[]): Uint8Array {
  const { type: WriteRequestType, snappy } = loadCodec();
  const message = WriteRequestType.fromObject({
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, value]) => ({ name, value })),
      samples: s.samples.map(([timestamp, value]) => ({ timestamp, value })),
    })),
  });
  return snappy.compressSync(Buffer.from(WriteRequestType.encode(message).finish()));
}
