/**
 * Glue between node:http and the shared protocol, for phases built on node:http: reading
 * a body under its limit, answering a Reply, and draining connections on a swap.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { REPLIES, type RawRequest, type Reply, type StatsCounter } from './protocol.js';
import { ConnectionSet } from './connections.js';

export const BODY_TOO_LARGE = Symbol('body too large');
/** The client went away before the body was complete: nothing to answer. */
export const BODY_ABORTED = Symbol('body aborted');

/** Reads the body; stops at `bytesMax` (the connection is then closed after the 413). */
export function readBody(request: IncomingMessage, bytesMax: number): Promise<Uint8Array | typeof BODY_TOO_LARGE | typeof BODY_ABORTED> {
  const declared = Number(request.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > bytesMax) {
    request.resume();
    return Promise.resolve(BODY_TOO_LARGE);
  }
  // The request may have died before this read began (Craft #0 reads one request at a time):
  // its 'close' has then already been emitted and would never be seen below.
  if (request.destroyed) return Promise.resolve(BODY_ABORTED);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    request.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > bytesMax) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    let done = false;
    const finish = (value: Uint8Array | typeof BODY_TOO_LARGE | typeof BODY_ABORTED): void => {
      if (done) return;
      done = true;
      resolve(value);
    };
    request.on('end', () => finish(over ? BODY_TOO_LARGE : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    // A client that goes away mid-body must not leave the read pending for ever (Craft #0
    // serves one request at a time: one stuck read would stall every later request).
    request.on('error', () => finish(BODY_ABORTED));
    request.on('close', () => finish(over ? BODY_TOO_LARGE : BODY_ABORTED));
  });
}

/**
 * Reads the body for a handler: the body, or `undefined` when the request has been
 * answered already (413, counted) or its client went away.
 */
export async function bodyOrAnswer(request: IncomingMessage, response: ServerResponse, bytesMax: number, stats: StatsCounter): Promise<Uint8Array | undefined> {
  const body = await readBody(request, bytesMax);
  if (body === BODY_ABORTED) return undefined;
  if (body === BODY_TOO_LARGE) {
    stats.count('too-large');
    writeReply(response, REPLIES.tooLarge(bytesMax), true);
    return undefined;
  }
  return body;
}

export function toRawRequest(request: IncomingMessage, body: Uint8Array): RawRequest {
  const authorization = request.headers.authorization;
  return { method: request.method ?? 'GET', url: request.url ?? '/', authorization, body };
}

export function writeReply(response: ServerResponse, reply: Reply, close: boolean): void {
  if (response.headersSent || response.destroyed) return;
  // The flat array form of writeHead skips per-header object handling: it is on every request.
  const headers: (string | number)[] = ['Content-Type', reply.contentType, 'Content-Length', Buffer.byteLength(reply.body)];
  if (reply.retryAfterS !== undefined) headers.push('Retry-After', reply.retryAfterS);
  if (reply.wwwAuthenticate === true) headers.push('WWW-Authenticate', 'Bearer');
  if (close) headers.push('Connection', 'close');
  response.writeHead(reply.status, headers as unknown as string[]);
  response.end(reply.body);
}

/**
 * A node:http server fed with accepted sockets rather than listening itself, which counts
 * connections and drains them on request.
 */
export class FedHttpServer {
  readonly server: Server;
  private readonly connections: ConnectionSet<Socket>;

  constructor(
    handler: (request: IncomingMessage, response: ServerResponse) => void,
    stats: StatsCounter,
    options: ServerOptions & { keepAliveTimeoutMs?: number } = {},
  ) {
    this.connections = new ConnectionSet(stats);
    this.server = createServer(options, handler);
    this.server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
    // Slowloris guard: headers must arrive within this time.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  get isDraining(): boolean {
    return this.connections.isDraining;
  }

  accept(socket: Socket): void {
    if (this.connections.admit(socket, () => socket) === undefined) return;
    this.server.emit('connection', socket);
    // The actor's listener pauses new sockets (so they can be handed to other processes): start reading.
    socket.resume();
  }

  /** New requests get `Connection: close`; idle connections close now; the rest by the deadline. */
  async drain(deadlineMs: number): Promise<void> {
    await this.connections.drain(deadlineMs, () => this.server.closeIdleConnections(), (socket) => socket.destroy());
    this.server.close();
  }
}
