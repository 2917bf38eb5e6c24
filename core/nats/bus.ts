/**
 * The bus: the only way actors talk to each other. A thin layer over a NATS connection that
 * speaks the platform's request/reply convention — JSON in, `{ok, result | error}` out — and
 * turns transport failures into coded errors.
 */
import { connect, headers, errors as natsErrors, type NatsConnection, type Msg, type Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { CraftError, fromWireError, toWireError, type WireError } from '../errors.js';
import { NATS_PAYLOAD_BYTES_MAX, REQUEST_TIMEOUT_MS } from '../defaults.js';
import { connectionOptions, type NatsIdentity } from './credentials.js';

export type Reply<T> = { ok: true; result: T } | { ok: false; error: WireError };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}

/** Maps a NATS request failure onto the platform's codes. */
export function mapRequestError(error: unknown, subject: string): CraftError {
  if (error instanceof CraftError) return error;
  if (error instanceof natsErrors.RequestError && error.isNoResponders()) {
    return new CraftError('CRAFT_NO_RESPONDERS', `nobody serves ${subject}`, { cause: error });
  }
  if (error instanceof natsErrors.NoRespondersError) return new CraftError('CRAFT_NO_RESPONDERS', `nobody serves ${subject}`, { cause: error });
  if (error instanceof natsErrors.TimeoutError) return new CraftError('CRAFT_TIMEOUT', `no reply on ${subject}`, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  if (/timeout/i.test(message)) return new CraftError('CRAFT_TIMEOUT', `no reply on ${subject}: ${message}`, { cause: error });
  return new CraftError('CRAFT_TIMEOUT', `request on ${subject} failed: ${message}`, { cause: error });
}

export interface RequestOptions {
  timeoutMs?: number;
}

/** A reply sent as raw bytes (binary framing) instead of the JSON envelope. */
export class RawReply {
  constructor(readonly data: Uint8Array) {}
}

/**
 * A reply too large for one NATS message, sent as parts: each part is a JSON envelope
 * `{ok:true, result}`; an empty message ends the reply. Read with `Bus.requestParts`.
 */
export class PartsReply<T> {
  constructor(readonly parts: T[]) {}
}

/** Sends a parts reply (or an error) followed by the empty end-of-reply sentinel. */
export function respondParts<T>(message: Msg, reply: PartsReply<T> | { ok: false; error: WireError }): void {
  if (reply instanceof PartsReply) {
    for (const part of reply.parts) respond(message, { ok: true, result: part });
  } else {
    respond(message, reply);
  }
  if (message.reply !== undefined && message.reply !== '') {
    try {
      message.respond(new Uint8Array(0));
    } catch {
      // connection closed; the requester times out
    }
  }
}

export class Bus {
  private jsClient: JetStreamClient | undefined;
  private jsManager: JetStreamManager | undefined;

  private constructor(readonly nc: NatsConnection) {}

  /**
   * Connects, reconnecting forever with a short wait: the server may restart under us. With an
   * identity, as that role (core/nats/credentials.ts); without one, anonymously.
   */
  static async connect(servers: string, name: string, identity?: NatsIdentity): Promise<Bus> {
    const nc = await connect({
      ...connectionOptions(servers, identity),
      // A cluster is given as a comma-separated list (`--nats nats://a:4222,nats://b:4222`).
      servers: servers.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
      pingInterval: 10_000,
      // Async stack traces allocate two Error objects per request: ~10% of the ingestion path.
      noAsyncTraces: true,
    });
    return new Bus(nc);
  }

  /** Sends a JSON request and returns the result, or throws the remote's coded error. */
  async request<T>(subject: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    let message: Msg;
    try {
      message = await this.nc.request(subject, encodeJson(body), { timeout: options.timeoutMs ?? REQUEST_TIMEOUT_MS });
    } catch (error) {
      throw mapRequestError(error, subject);
    }
    const reply = decodeJson<Reply<T>>(message.data);
    if (reply.ok) return reply.result;
    throw fromWireError(reply.error);
  }

  /** Sends a request whose reply comes in parts (see `PartsReply`); returns the parts in order. */
  async requestParts<T>(subject: string, body: unknown, options: RequestOptions = {}): Promise<T[]> {
    const parts: T[] = [];
    let ended = false;
    try {
      const replies = await this.nc.requestMany(subject, encodeJson(body), { strategy: 'sentinel', maxWait: options.timeoutMs ?? REQUEST_TIMEOUT_MS });
      for await (const message of replies) {
        if (message.data.length === 0) {
          ended = true;
          break;
        }
        const reply = decodeJson<Reply<T>>(message.data);
        if (!reply.ok) throw fromWireError(reply.error);
        parts.push(reply.result);
      }
    } catch (error) {
      throw mapRequestError(error, subject);
    }
    if (!ended) throw new CraftError(parts.length === 0 ? 'CRAFT_NO_RESPONDERS' : 'CRAFT_TIMEOUT', `reply on ${subject} ended early after ${parts.length} parts`);
    return parts;
  }

  /** Sends raw bytes and returns the raw reply bytes. */
  async requestRaw(subject: string, data: Uint8Array, options: RequestOptions & { headers?: Record<string, string> } = {}): Promise<Uint8Array> {
    try {
      let hdrs: ReturnType<typeof headers> | undefined;
      if (options.headers !== undefined) {
        hdrs = headers();
        for (const [key, value] of Object.entries(options.headers)) hdrs.set(key, value);
      }
      const message = await this.nc.request(subject, data, { timeout: options.timeoutMs ?? REQUEST_TIMEOUT_MS, ...(hdrs === undefined ? {} : { headers: hdrs }) });
      return message.data;
    } catch (error) {
      throw mapRequestError(error, subject);
    }
  }

  /** Sends one request and gathers every reply that arrives within `maxWaitMs` (scatter/gather). */
  async scatter<T>(subject: string, body: unknown, maxWaitMs: number): Promise<T[]> {
    const results: T[] = [];
    try {
      const replies = await this.nc.requestMany(subject, encodeJson(body), { strategy: 'timer', maxWait: maxWaitMs });
      for await (const message of replies) {
        if (message.data.length === 0) continue;
        const reply = decodeJson<Reply<T>>(message.data);
        if (reply.ok) results.push(reply.result);
      }
    } catch (error) {
      const mapped = mapRequestError(error, subject);
      if (mapped.code !== 'CRAFT_NO_RESPONDERS') throw mapped;
    }
    return results;
  }

  publish(subject: string, body: unknown): void {
    this.nc.publish(subject, encodeJson(body));
  }

  /** Calls `callback` with each published event's decoded body; an undecodable event is ignored. */
  listen<B>(subject: string, callback: (body: B) => void): Subscription {
    return this.nc.subscribe(subject, {
      callback: (error, message) => {
        if (error !== null) return;
        let body: B;
        try {
          body = decodeJson<B>(message.data);
        } catch {
          return;
        }
        callback(body);
      },
    });
  }

  /**
   * Serves a request subject: `handler` gets the decoded body and the message; its result
   * (or thrown error) becomes the reply. A queue group makes several servers share the load.
   */
  serve<B, R>(subject: string, handler: (body: B, message: Msg) => Promise<R> | R, options: { queue?: string } = {}): Subscription {
    return this.nc.subscribe(subject, {
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      callback: (error, message) => {
        if (error !== null) return;
        void (async () => {
          try {
            const body = message.data.length === 0 ? ({} as B) : decodeJson<B>(message.data);
            const result = await handler(body, message);
            if (result instanceof RawReply) message.respond(result.data);
            else respond(message, { ok: true, result });
          } catch (failure) {
            respond(message, { ok: false, error: toWireError(failure) });
          }
        })();
      },
    });
  }

  jetstream(): JetStreamClient {
    this.jsClient ??= jetstream(this.nc, { timeout: REQUEST_TIMEOUT_MS });
    return this.jsClient;
  }

  async jetstreamManager(): Promise<JetStreamManager> {
    this.jsManager ??= await jetstreamManager(this.nc, { timeout: REQUEST_TIMEOUT_MS });
    return this.jsManager;
  }

  get closed(): boolean {
    return this.nc.isClosed();
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }
}

/** Replies to a request message if it expects a reply; a reply that cannot be sent is dropped. */
export function respond<T>(message: Msg, reply: Reply<T>): void {
  if (message.reply === undefined || message.reply === '') return;
  let data = encodeJson(reply);
  if (data.length > NATS_PAYLOAD_BYTES_MAX) {
    // Too large for one NATS message: say so, rather than let the requester time out.
    data = encodeJson({
      ok: false,
      error: { code: 'CRAFT_BAD_REQUEST', message: `reply of ${data.length} bytes exceeds the ${NATS_PAYLOAD_BYTES_MAX}-byte message limit; narrow the request` },
    } satisfies Reply<never>);
  }
  try {
    message.respond(data);
  } catch {
    // The connection closed while we worked; the requester times out and retries.
  }
}
