/**
 * An incremental HTTP/1.1 request parser (RFC 9112) for the event-driven phase's own server:
 * bytes go in as they arrive, whole requests come out in order. It understands what an
 * ingestion endpoint needs — request line, header fields, a body framed by Content-Length
 * or by chunked transfer coding, keep-alive, `Expect: 100-continue` — and refuses the rest
 * with the status a server owes: 400 malformed, 413 body over the limit, 431 header section
 * over the limit, 501 a transfer coding other than chunked, 505 a version other than 1.x.
 * After an error the connection cannot be trusted to be in sync: the caller answers and closes.
 *
 * Ambiguous framing is refused rather than guessed (request smuggling): Content-Length with
 * Transfer-Encoding, or several different Content-Length values, is a 400.
 */

export interface HttpRequestHead {
  method: string;
  /** Request target as sent, e.g. `/write?precision=s`. */
  url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /** Value of the Authorization field (latin1, as node:http gives it), if any. */
  authorization: string | undefined;
  /** Whether the client lets the connection stay open after this request. */
  keepAlive: boolean;
  expectContinue: boolean;
}

export interface HttpRequest extends HttpRequestHead {
  body: Uint8Array;
}

export type ParseStep =
  | { kind: 'request'; request: HttpRequest }
  /** Nothing complete yet; `continue` is set once, when the client waits for `100 Continue`. */
  | { kind: 'more'; sendContinue: boolean }
  | { kind: 'error'; status: 400 | 413 | 431 | 501 | 505; message: string };

export interface ParserLimits {
  headerBytesMax: number;
  bodyBytesMax: number;
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const EMPTY = Buffer.alloc(0);
const HEX = /^[0-9a-fA-F]{1,8}$/;

type State =
  | { kind: 'head' }
  | { kind: 'length'; head: HttpRequestHead; remaining: number }
  | { kind: 'chunk-size'; head: HttpRequestHead; chunks: Buffer[]; size: number }
  | { kind: 'chunk-data'; head: HttpRequestHead; chunks: Buffer[]; size: number; remaining: number }
  | { kind: 'chunk-end'; head: HttpRequestHead; chunks: Buffer[]; size: number }
  | { kind: 'trailers'; head: HttpRequestHead; chunks: Buffer[]; size: number };

const fail = (status: 400 | 413 | 431 | 501 | 505, message: string): ParseStep => ({ kind: 'error', status, message });

export class Http1Parser {
  private buffer: Buffer = EMPTY;
  private state: State = { kind: 'head' };
  /** Where the search for the end of the header section resumes (no rescans of a trickle). */
  private scanFrom = 0;
  private continueSent = false;

  constructor(private readonly limits: ParserLimits) {}

  /** Bytes received but not yet consumed by a returned request. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** True between requests with nothing buffered: the connection is idle. */
  get idle(): boolean {
    return this.state.kind === 'head' && this.buffer.length === 0;
  }

  /** True while the header section of the next request is still arriving (or none has begun). */
  get readingHead(): boolean {
    return this.state.kind === 'head';
  }

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The next step: a complete request, a need for more bytes, or an error. */
  next(): ParseStep {
    for (;;) {
      const state = this.state;
      switch (state.kind) {
        case 'head': {
          if (this.buffer.length === 0) return { kind: 'more', sendContinue: false };
          const end = this.buffer.indexOf(CRLF_CRLF, Math.max(0, this.scanFrom - 3));
          if (end < 0) {
            this.scanFrom = this.buffer.length;
            if (this.buffer.length > this.limits.headerBytesMax) return fail(431, `request header section over ${this.limits.headerBytesMax} bytes`);
            return { kind: 'more', sendContinue: false };
          }
          if (end + 4 > this.limits.headerBytesMax) return fail(431, `request header section over ${this.limits.headerBytesMax} bytes`);
          const parsed = parseHead(this.buffer.toString('latin1', 0, end));
          this.consume(end + 4);
          this.scanFrom = 0;
          this.continueSent = false;
          if ('status' in parsed) return fail(parsed.status, parsed.message);
          const { head, contentLength, chunked } = parsed;
          if (chunked) {
            this.state = { kind: 'chunk-size', head, chunks: [], size: 0 };
          } else if (contentLength > this.limits.bodyBytesMax) {
            return fail(413, `Request body too large (max ${this.limits.bodyBytesMax} bytes)`);
          } else if (contentLength === 0) {
            return { kind: 'request', request: { ...head, body: EMPTY } };
          } else {
            this.state = { kind: 'length', head, remaining: contentLength };
          }
          continue;
        }
        case 'length': {
          if (this.buffer.length < state.remaining) return this.waitForBody(state.head);
          const body = this.buffer.subarray(0, state.remaining);
          this.consume(state.remaining);
          this.state = { kind: 'head' };
          return { kind: 'request', request: { ...state.head, body } };
        }
        case 'chunk-size': {
          const lineEnd = this.buffer.indexOf('\r\n');
          if (lineEnd < 0) {
            if (this.buffer.length > 1_024) return fail(400, 'chunk size line too long');
            return this.waitForBody(state.head);
          }
          const line = this.buffer.toString('latin1', 0, lineEnd);
          const semicolon = line.indexOf(';');
          const digits = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
          if (!HEX.test(digits)) return fail(400, 'malformed chunk size');
          const chunkSize = parseInt(digits, 16);
          this.consume(lineEnd + 2);
          if (chunkSize === 0) {
            this.state = { kind: 'trailers', head: state.head, chunks: state.chunks, size: state.size };
            continue;
          }
          if (state.size + chunkSize > this.limits.bodyBytesMax) return fail(413, `Request body too large (max ${this.limits.bodyBytesMax} bytes)`);
          this.state = { kind: 'chunk-data', head: state.head, chunks: state.chunks, size: state.size + chunkSize, remaining: chunkSize };
          continue;
        }
        case 'chunk-data': {
          if (this.buffer.length === 0) return this.waitForBody(state.head);
          const take = Math.min(state.remaining, this.buffer.length);
          state.chunks.push(this.buffer.subarray(0, take));
          this.consume(take);
          state.remaining -= take;
          if (state.remaining > 0) return this.waitForBody(state.head);
          this.state = { kind: 'chunk-end', head: state.head, chunks: state.chunks, size: state.size };
          continue;
        }
        case 'chunk-end': {
          if (this.buffer.length < 2) return this.waitForBody(state.head);
          if (this.buffer[0] !== 0x0d || this.buffer[1] !== 0x0a) return fail(400, 'chunk data not followed by CRLF');
          this.consume(2);
          this.state = { kind: 'chunk-size', head: state.head, chunks: state.chunks, size: state.size };
          continue;
        }
        case 'trailers': {
          // Trailer fields are read and dropped; an empty line ends the message.
          const lineEnd = this.buffer.indexOf('\r\n');
          if (lineEnd < 0) {
            if (this.buffer.length > this.limits.headerBytesMax) return fail(431, 'trailer section too large');
            return this.waitForBody(state.head);
          }
          this.consume(lineEnd + 2);
          if (lineEnd > 0) continue;
          this.state = { kind: 'head' };
          const body = state.chunks.length === 1 ? state.chunks[0]! : Buffer.concat(state.chunks, state.size);
          return { kind: 'request', request: { ...state.head, body } };
        }
      }
    }
  }

  private waitForBody(head: HttpRequestHead): ParseStep {
    const sendContinue = head.expectContinue && !this.continueSent;
    if (sendContinue) this.continueSent = true;
    return { kind: 'more', sendContinue };
  }

  private consume(bytes: number): void {
    this.buffer = bytes >= this.buffer.length ? EMPTY : this.buffer.subarray(bytes);
  }
}

/** A field's value without its optional surrounding whitespace (RFC 9112 §5). */
const fieldValue = (line: string, colon: number): string => line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
/** Repeated fields of a list-valued header combine with commas (RFC 9110 §5.3). */
const join = (list: string, value: string): string => (list === '' ? value : `${list},${value}`);

type HeadResult = { head: HttpRequestHead; contentLength: number; chunked: boolean } | { status: 400 | 501 | 505; message: string };

/** Parses the header section (without its final CRLFCRLF). */
export function parseHead(text: string): HeadResult {
  let lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const firstSpace = requestLine.indexOf(' ');
  const lastSpace = requestLine.lastIndexOf(' ');
  if (firstSpace <= 0 || lastSpace === firstSpace) return { status: 400, message: 'malformed request line' };
  const method = requestLine.slice(0, firstSpace);
  const url = requestLine.slice(firstSpace + 1, lastSpace);
  const version = requestLine.slice(lastSpace + 1);
  if (!TOKEN.test(method) || url === '' || url.includes(' ')) return { status: 400, message: 'malformed request line' };
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') {
    return /^HTTP\/\d\.\d$/.test(version) ? { status: 505, message: 'HTTP version not supported' } : { status: 400, message: 'malformed request line' };
  }
  const minorVersion = version === 'HTTP/1.1' ? 1 : 0;
  let authorization: string | undefined;
  let contentLength = -1;
  let transferEncoding: string | undefined;
  let connection = '';
  let expectContinue = false;
  while (lineEnd >= 0) {
    const start = lineEnd + 2;
    lineEnd = text.indexOf('\r\n', start);
    const line = lineEnd < 0 ? text.slice(start) : text.slice(start, lineEnd);
    const colon = line.indexOf(':');
    if (colon <= 0) return { status: 400, message: 'malformed header field' };
    const name = line.slice(0, colon);
    // No whitespace before the colon, no obsolete line folding (RFC 9112 §5.1, §5.2).
    if (!TOKEN.test(name)) return { status: 400, message: 'malformed header field name' };
    // Only the fields read below need their value.
    const value = (): string => fieldValue(line, colon);
    switch (name.length) {
      case 6:
        if (name.toLowerCase() === 'expect') expectContinue = value().toLowerCase() === '100-continue';
        break;
      case 10:
        if (name.toLowerCase() === 'connection') connection = join(connection, value().toLowerCase());
        break;
      case 13:
        if (name.toLowerCase() === 'authorization') authorization = value();
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          const text = value();
          if (!/^\d{1,15}$/.test(text)) return { status: 400, message: 'malformed Content-Length' };
          const length = Number(text);
          if (contentLength >= 0 && contentLength !== length) return { status: 400, message: 'conflicting Content-Length fields' };
          contentLength = length;
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') transferEncoding = join(transferEncoding ?? '', value().toLowerCase());
        break;
    }
  }
  let chunked = false;
  if (transferEncoding !== undefined) {
    if (contentLength >= 0) return { status: 400, message: 'both Content-Length and Transfer-Encoding' };
    if (minorVersion === 0) return { status: 400, message: 'Transfer-Encoding in an HTTP/1.0 request' };
    if (transferEncoding.trim() !== 'chunked') return { status: 501, message: `transfer coding not supported: ${transferEncoding}` };
    chunked = true;
  }
  const tokens = connection === '' ? [] : connection.split(',').map((s) => s.trim());
  const keepAlive = minorVersion === 1 ? !tokens.includes('close') : tokens.includes('keep-alive');
  return { head: { method, url, minorVersion, authorization, keepAlive, expectContinue }, contentLength: Math.max(0, contentLength), chunked };
}
