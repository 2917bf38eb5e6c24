/**
 * The event-driven phase's own HTTP/1.1 server, on the raw sockets the actor accepts: no
 * IncomingMessage or ServerResponse stream objects, no per-request listeners — bytes in
 * (Http1Parser), one write out. node:http costs about as much CPU per request as the
 * whole rest of an ingestion request does; this is where phase 8 gets it back.
 *
 * Per connection, one request is handled at a time; pipelined requests wait in the parser
 * and are answered in order. Limits: the header section (431) and the body (413) are
 * bounded, a connection that sends more than that while its request is being handled is
 * paused, a client that does not read its answers is not fed more until it does. Idle
 * keep-alive connections close after `keepAliveTimeoutMs`; a request whose header section
 * (or body) does not complete within `headersTimeoutMs` (`requestTimeoutMs`) is answered 408.
 */
import type { Socket } from 'node:net';
import { Http1Parser, type HttpRequest } from './http1-parser.js';
import { json, type RawRequest, type Reply, type StatsCounter } from '../../../core/ingestion/protocol.js';
import { ConnectionSet } from '../../../core/ingestion/connections.js';

export interface RawHttpOptions {
  bodyBytesMax: number;
  /** Whether the phase keeps connections open between requests. */
  keepAlive: boolean;
  keepAliveTimeoutMs: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  headerBytesMax?: number;
}

/** Header section limit, as node:http's default. */
export const HEADER_BYTES_MAX = 16 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How often timeouts are checked (one sweep over the connections, not a timer each). */
const SWEEP_MS = 1_000;

const REASONS: Record<number, string> = {
  200: 'OK',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

export class RawHttpServer {
  private readonly connections: ConnectionSet<Connection>;
  private sweeper: NodeJS.Timeout | undefined;
  /** The Date field, refreshed by the sweep (RFC 9110 §6.6.1: second resolution). */
  date = new Date().toUTCString();
  readonly headerBytesMax: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;

  constructor(
    readonly handler: (request: RawRequest) => Promise<Reply>,
    readonly stats: StatsCounter,
    readonly options: RawHttpOptions,
  ) {
    this.connections = new ConnectionSet(stats);
    this.headerBytesMax = options.headerBytesMax ?? HEADER_BYTES_MAX;
    this.headersTimeoutMs = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  }

  get isDraining(): boolean {
    return this.connections.isDraining;
  }

  accept(socket: Socket): void {
    if (this.connections.admit(socket, () => new Connection(this, socket)) === undefined) return;
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    // The actor's listener pauses new sockets (so they can be handed to other processes).
    socket.resume();
  }

  private sweep(): void {
    const now = Date.now();
    this.date = new Date(now).toUTCString();
    for (const connection of this.connections.open) connection.checkTimeouts(now);
  }

  /** New answers carry `Connection: close`; idle connections close now; the rest by the deadline. */
  async drain(deadlineMs: number): Promise<void> {
    const closeIdle = (): void => {
      for (const connection of this.connections.open) connection.closeIfIdle();
    };
    await this.connections.drain(deadlineMs, closeIdle, (connection) => connection.destroy());
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

class Connection {
  private readonly parser: Http1Parser;
  private busy = false;
  private closing = false;
  private lastActivityMs = Date.now();
  /** When the request now being received began to arrive (-1: none in progress). */
  private requestStartedMs = -1;

  constructor(
    private readonly server: RawHttpServer,
    private readonly socket: Socket,
  ) {
    this.parser = new Http1Parser({ headerBytesMax: server.headerBytesMax, bodyBytesMax: server.options.bodyBytesMax });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // A reset or a write to a closed peer: nothing to answer, the socket closes.
    socket.on('error', () => socket.destroy());
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    const now = Date.now();
    this.lastActivityMs = now;
    if (this.requestStartedMs < 0 && this.parser.idle) this.requestStartedMs = now;
    this.parser.push(chunk);
    if (!this.busy) this.pump();
    else if (this.parser.buffered > this.server.headerBytesMax + this.server.options.bodyBytesMax) this.socket.pause();
  }

  /** Handles the next complete request, if one is buffered. */
  private pump(): void {
    const step = this.parser.next();
    if (step.kind === 'more') {
      if (step.sendContinue) this.socket.write(CONTINUE);
      if (this.parser.idle) this.requestStartedMs = -1;
      return;
    }
    if (step.kind === 'error') {
      if (step.status === 413) this.server.stats.count('too-large');
      this.answer(json(step.status, { error: step.message }), 'GET', true);
      return;
    }
    this.busy = true;
    this.requestStartedMs = -1;
    const request = step.request;
    const close = !this.server.options.keepAlive || !request.keepAlive;
    this.server.handler(toRaw(request)).then(
      (reply) => this.finish(reply, request, close),
      () => this.finish(json(500, { error: 'internal error' }), request, true),
    );
  }

  private finish(reply: Reply, request: HttpRequest, close: boolean): void {
    this.busy = false;
    if (this.socket.destroyed) return;
    const closeNow = close || this.server.isDraining || reply.status === 500;
    const flushed = this.answer(reply, request.method, closeNow);
    if (closeNow) return;
    this.socket.resume();
    // More requests may be waiting (pipelining); a client that does not read its answers waits.
    if (this.parser.buffered === 0) {
      this.requestStartedMs = -1;
      return;
    }
    if (this.requestStartedMs < 0) this.requestStartedMs = Date.now();
    if (flushed) this.pump();
    else this.socket.once('drain', () => !this.busy && !this.closing && this.pump());
  }

  /** Writes one response; returns whether the socket took it without queueing. */
  private answer(reply: Reply, method: string, close: boolean): boolean {
    const server = this.server;
    let head = `HTTP/1.1 ${reply.status} ${REASONS[reply.status] ?? 'Unknown'}\r\n`;
    // No Content-Length on a 204 (RFC 9110 §8.6).
    if (reply.status !== 204) head += `Content-Type: ${reply.contentType}\r\nContent-Length: ${Buffer.byteLength(reply.body)}\r\n`;
    if (reply.retryAfterS !== undefined) head += `Retry-After: ${reply.retryAfterS}\r\n`;
    if (reply.wwwAuthenticate === true) head += 'WWW-Authenticate: Bearer\r\n';
    head += `Date: ${server.date}\r\nConnection: ${close ? 'close' : 'keep-alive'}\r\n\r\n`;
    const flushed = this.socket.write(method === 'HEAD' || reply.status === 204 ? head : head + reply.body);
    if (close) {
      this.closing = true;
      this.socket.end();
    }
    return flushed;
  }

  checkTimeouts(nowMs: number): void {
    if (this.busy || this.closing) return;
    if (this.requestStartedMs < 0) {
      if (nowMs - this.lastActivityMs > this.server.options.keepAliveTimeoutMs) this.socket.destroy();
      return;
    }
    const limit = this.parser.readingHead ? this.server.headersTimeoutMs : this.server.requestTimeoutMs;
    if (nowMs - this.requestStartedMs > limit) {
      this.answer(json(408, { error: 'request not received in time' }), 'GET', true);
    }
  }

  closeIfIdle(): void {
    if (!this.busy && this.requestStartedMs < 0 && this.parser.idle) this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const toRaw = (request: HttpRequest): RawRequest => ({ method: request.method, url: request.url, authorization: request.authorization, body: request.body });
