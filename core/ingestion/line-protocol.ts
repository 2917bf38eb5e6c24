/**
 * InfluxDB line protocol (v1 `POST /write`, v2 `POST /api/v2/write`):
 *
 *   measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
 *
 * Escapes: in measurements `\,` and `\ `; in tag keys, tag values and field keys also
 * `\=`; string field values are double-quoted with `\"` and `\\`. Field values are floats
 * (`1`, `1.5`, `-2e3`), integers (`1i`), unsigned integers (`1u`), booleans (`t`, `true`,
 * `F`, …) or strings. Every numeric or boolean field becomes a sample of the series
 * `<measurement>_<field>` with the tags as labels (booleans as 1/0) — or, with the option
 * `influxSingleValueFieldAsMeasurement`, `<measurement>` when `value` is the line's only field. String fields have no
 * numeric value and are skipped (counted in the result). Timestamps are integers in the
 * request's precision (default ns) and stored in ms.
 */
import { METRIC_NAME_LABEL, type Labels, type WireSample } from '../model.js';

export type Precision = 'ns' | 'us' | 'ms' | 's';
export const PRECISIONS: readonly Precision[] = ['ns', 'us', 'ms', 's'];

export type LineProtocolParse =
  | { ok: true; samples: WireSample[]; stringFieldsSkipped: number }
  | { ok: false; error: string; line: number };

export interface ParsedLine {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number | boolean | string | { integer: string } | { unsigned: string }>;
  timestamp: string | undefined;
}

class LineError extends Error {}

const BOOLEAN_TRUE = new Set(['t', 'T', 'true', 'True', 'TRUE']);
const BOOLEAN_FALSE = new Set(['f', 'F', 'false', 'False', 'FALSE']);
const FLOAT = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const INTEGER = /^[-+]?\d+i$/;
const UNSIGNED = /^\d+u$/;
const TIMESTAMP = /^-?\d+$/;

/** Reads up to (not including) an unescaped stop character; returns the unescaped text and where it stopped. */
function readToken(text: string, start: number, stops: string, escapable: string): [string, number] {
  let out = '';
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length && (escapable.includes(text[i + 1]!) || text[i + 1] === '\\')) {
      out += text[i + 1];
      i += 2;
      continue;
    }
    if (stops.includes(c)) break;
    out += c;
    i += 1;
  }
  return [out, i];
}

export function parseLine(text: string): ParsedLine {
  const [measurement, afterMeasurement] = readToken(text, 0, ', ', ', ');
  if (measurement === '') throw new LineError('missing measurement');
  let i = afterMeasurement;
  // Null prototypes: a key like "__proto__" is data here, not an object's prototype.
  const tags: Record<string, string> = Object.create(null) as Record<string, string>;
  while (text[i] === ',') {
    const [key, afterKey] = readToken(text, i + 1, '=, ', ',= ');
    if (text[afterKey] !== '=' || key === '') throw new LineError(`tag ${JSON.stringify(key)} has no value`);
    const [value, afterValue] = readToken(text, afterKey + 1, ', ', ',= ');
    if (value === '') throw new LineError(`tag ${key} has an empty value`);
    tags[key] = value;
    i = afterValue;
  }
  if (text[i] !== ' ') throw new LineError('missing fields');
  while (text[i] === ' ') i++;
  const fields = Object.create(null) as ParsedLine['fields'];
  for (;;) {
    const [key, afterKey] = readToken(text, i, '=, ', ',= ');
    if (key === '' || text[afterKey] !== '=') throw new LineError(`field ${JSON.stringify(key)} has no value`);
    i = afterKey + 1;
    if (text[i] === '"') {
      let value = '';
      i += 1;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i += 1;
        value += text[i];
        i += 1;
      }
      if (i >= text.length) throw new LineError(`field ${key}: unterminated string`);
      i += 1;
      fields[key] = value;
    } else {
      const [raw, afterValue] = readToken(text, i, ', ', '');
      i = afterValue;
      if (FLOAT.test(raw)) fields[key] = Number(raw);
      else if (INTEGER.test(raw)) fields[key] = { integer: raw.slice(0, -1) };
      else if (UNSIGNED.test(raw)) fields[key] = { unsigned: raw.slice(0, -1) };
      else if (BOOLEAN_TRUE.has(raw)) fields[key] = true;
      else if (BOOLEAN_FALSE.has(raw)) fields[key] = false;
      else throw new LineError(`field ${key}: invalid value ${JSON.stringify(raw)}`);
    }
    if (text[i] === ',') {
      i += 1;
      continue;
    }
    break;
  }
  while (text[i] === ' ') i++;
  let timestamp: string | undefined;
  if (i < text.length) {
    const rest = text.slice(i).trimEnd();
    if (!TIMESTAMP.test(rest)) throw new LineError(`invalid timestamp ${JSON.stringify(rest)}`);
    timestamp = rest;
  }
  return { measurement, tags, fields, timestamp };
}

const escapeKey = (s: string): string => s.replace(/\\/g, '\\\\').replace(/[,= ]/g, (c) => `\\${c}`);

/** The inverse of `parseLine`, for tests and the benchmark. */
export function formatLine(line: ParsedLine): string {
  const measurement = line.measurement.replace(/\\/g, '\\\\').replace(/[, ]/g, (c) => `\\${c}`);
  const tags = Object.entries(line.tags).map(([k, v]) => `,${escapeKey(k)}=${escapeKey(v)}`).join('');
  const fields = Object.entries(line.fields)
    .map(([k, v]) => {
      const value =
        typeof v === 'string' ? `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
        : typeof v === 'boolean' ? (v ? 'true' : 'false')
        : typeof v === 'number' ? String(v)
        : 'integer' in v ? `${v.integer}i` : `${v.unsigned}u`;
      return `${escapeKey(k)}=${value}`;
    })
    .join(',');
  return `${measurement}${tags} ${fields}${line.timestamp === undefined ? '' : ` ${line.timestamp}`}`;
}

const NAME_INVALID = /[^a-zA-Z0-9_:]/g;
const LABEL_INVALID = /[^a-zA-Z0-9_]/g;
export const metricName = (text: string): string => {
  const name = text.replace(NAME_INVALID, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
};
const labelName = (text: string): string => {
  const name = text.replace(LABEL_INVALID, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
};

const DIVISOR: Record<Precision, bigint> = { ns: 1_000_000n, us: 1_000n, ms: 1n, s: 1n };

function toMs(timestamp: string, precision: Precision): number {
  const value = BigInt(timestamp);
  if (value < 0n) throw new LineError('timestamp must not be negative');
  const ms = precision === 's' ? value * 1_000n : value / DIVISOR[precision];
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) throw new LineError('timestamp out of range');
  return Number(ms);
}

/** Parses a whole body; the first bad line fails the request (nothing of it is queued). */
export function parseLineProtocol(body: string, precision: Precision, nowMs: number, samplesMax: number, singleValueAsMeasurement = false): LineProtocolParse {
  const samples: WireSample[] = [];
  let stringFieldsSkipped = 0;
  const lines = body.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const text = lines[n]!.replace(/\r$/, '');
    if (text.trim() === '' || text.trimStart().startsWith('#')) continue;
    try {
      const line = parseLine(text);
      const timestampMs = line.timestamp === undefined ? nowMs : toMs(line.timestamp, precision);
      const base: Labels = {};
      for (const [key, value] of Object.entries(line.tags)) {
        const name = labelName(key);
        if (name.startsWith('__')) throw new LineError(`tag ${key}: names starting with "__" are reserved`);
        base[name] = value;
      }
      for (const [field, value] of Object.entries(line.fields)) {
        let numeric: number;
        if (typeof value === 'string') {
          stringFieldsSkipped += 1;
          continue;
        } else if (typeof value === 'boolean') numeric = value ? 1 : 0;
        else if (typeof value === 'number') numeric = value;
        else numeric = Number('integer' in value ? value.integer : value.unsigned);
        const lone = singleValueAsMeasurement && field === 'value' && Object.keys(line.fields).length === 1;
        const labels = { [METRIC_NAME_LABEL]: metricName(lone ? line.measurement : `${line.measurement}_${field}`), ...base };
        samples.push(line.timestamp === undefined ? [labels, timestampMs, numeric, 1] : [labels, timestampMs, numeric]);
        if (samples.length > samplesMax) return { ok: false, error: `request holds more than ${samplesMax} samples`, line: n + 1 };
      }
    } catch (error) {
      if (error instanceof LineError || error instanceof SyntaxError || error instanceof RangeError) {
        return { ok: false, error: `line ${n + 1}: ${error.message}`, line: n + 1 };
      }
      throw error;
    }
  }
  return { ok: true, samples, stringFieldsSkipped };
}
