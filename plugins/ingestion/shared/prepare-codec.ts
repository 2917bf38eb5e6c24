/**
 * How requests and prepared results cross thread boundaries as bytes (the ring buffer
 * carries only bytes): a 4-byte header length, a JSON header, then the raw body or the
 * encoded queue parts back to back.
 */
import type { Prepared, RawRequest } from '../../../core/ingestion/protocol.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function frame(header: unknown, tails: Uint8Array[]): Uint8Array {
  const head = encoder.encode(JSON.stringify(header));
  let size = 4 + head.length;
  for (const t of tails) size += t.length;
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  let at = 4 + head.length;
  for (const t of tails) {
    out.set(t, at);
    at += t.length;
  }
  return out;
}

function unframe<H>(bytes: Uint8Array): { header: H; rest: Uint8Array } {
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  return { header: JSON.parse(decoder.decode(bytes.subarray(4, 4 + length))) as H, rest: bytes.subarray(4 + length) };
}

interface RequestHeader {
  id: number;
  method: string;
  url: string;
  authorization: string | null;
  nowMs: number;
}

export function encodeRequest(id: number, request: RawRequest, nowMs: number): Uint8Array {
  return frame({ id, method: request.method, url: request.url, authorization: request.authorization ?? null, nowMs } satisfies RequestHeader, [request.body]);
}

export function decodeRequest(bytes: Uint8Array): { id: number; request: RawRequest; nowMs: number } {
  const { header, rest } = unframe<RequestHeader>(bytes);
  return { id: header.id, nowMs: header.nowMs, request: { method: header.method, url: header.url, authorization: header.authorization ?? undefined, body: rest } };
}

/** `seriesCount`: the append's series hashes follow the parts as float64s (-1: none). */
type PreparedHeader = { id: number; prepared: Prepared; partLengths: number[]; seriesCount: number };

export function encodePrepared(id: number, prepared: Prepared): Uint8Array {
  if (prepared.kind !== 'append') return frame({ id, prepared, partLengths: [], seriesCount: -1 } satisfies PreparedHeader, []);
  const { parts, series, ...rest } = prepared;
  const tails = series === undefined ? parts : [...parts, new Uint8Array(series.buffer, series.byteOffset, series.byteLength)];
  return frame({ id, prepared: { ...rest, parts: [] }, partLengths: parts.map((p) => p.length), seriesCount: series?.length ?? -1 } satisfies PreparedHeader, tails);
}

export function decodePrepared(bytes: Uint8Array): { id: number; prepared: Prepared } {
  const { header, rest } = unframe<PreparedHeader>(bytes);
  if (header.prepared.kind !== 'append') return { id: header.id, prepared: header.prepared };
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const length of header.partLengths) {
    parts.push(rest.slice(at, at + length));
    at += length;
  }
  // A copy: a Float64Array needs an aligned buffer of its own.
  const series = header.seriesCount >= 0 ? new Float64Array(rest.slice(at, at + header.seriesCount * 8).buffer) : undefined;
  return { id: header.id, prepared: { ...header.prepared, parts, ...(series === undefined ? {} : { series }) } };
}
