/**
 * The actor runtime. An actor owns NATS subjects (its mailbox), processes the messages
 * that arrive on them from one bounded queue, and has lifecycle hooks. It shares nothing
 * with other actors: everything it learns arrives over the bus.
 *
 * Failure model (TigerBeetle/OTP): a `CraftError` from a handler is an operating error —
 * answered to the requester, the actor carries on. Anything else thrown (a bug, a broken
 * invariant) is a crash: the requester is answered, the actor stops and its supervisor
 * decides what happens next.
 */
import type { Msg, Subscription } from '@nats-io/transport-node';
import { CraftError, toWireError } from '../errors.js';
import { MAILBOX_CAPACITY, RETRY_AFTER_S } from '../defaults.js';
import { decodeJson, PartsReply, RawReply, respond, respondParts, type Bus } from '../nats/bus.js';
import { killSubject } from '../subjects.js';
import { createLogger, type Logger } from '../log.js';
import { systemClock, type Clock } from '../clock.js';
import type { ExitReason } from '../supervision/policy.js';
import type { ChildHandle, ChildSpec, NodeState, NodeStatus } from '../supervision/child.js';
import type { RestartType } from '../supervision/policy.js';

export interface ActorEnvironment {
  bus: Bus;
  clock: Clock;
  /** Name of the OS process hosting the actor (for status and faults). */
  processName: string;
  /** Whether fault-injection subjects are served. */
  faults: boolean;
}

interface Envelope {
  route: Route;
  message: Msg;
}

interface Route {
  subject: string;
  handler: (body: unknown, message: Msg) => Promise<unknown> | unknown;
  /** Messages of this route processed at once; further ones wait in the mailbox. */
  concurrency: number;
  inFlight: number;
  /** Whether the handler expects raw bytes instead of JSON. */
  raw: boolean;
  /** Whether replies (including errors) end with the parts sentinel. */
  parts: boolean;
  /** Messages waiting for this route, FIFO from `waitingHead`. */
  waiting: Envelope[];
  waitingHead: number;
}

export interface HandleOptions {
  /** NATS queue group: several instances of the actor share the subject. */
  queue?: string;
  /** Handlers of this subject allowed in flight at once (default 1: strictly in order). */
  concurrency?: number;
  /** Pass the raw message bytes to the handler instead of decoded JSON. */
  raw?: boolean;
  /** The subject answers in parts (`PartsReply`); errors then also end with the sentinel. */
  parts?: boolean;
}

export abstract class Actor {
  readonly log: Logger;
  protected readonly bus: Bus;
  protected readonly clock: Clock;
  protected readonly environment: ActorEnvironment;
  /** Named limit of this actor's mailbox. */
  protected mailboxCapacity = MAILBOX_CAPACITY;

  private readonly routes: Route[] = [];
  private readonly pendingQueues = new Map<Route, string | undefined>();
  private readonly subscriptions: Subscription[] = [];
  /** Messages waiting in route queues (not yet started). */
  private queued = 0;
  private inFlight = 0;
  private state: NodeState = 'starting';
  private resolveExit!: (reason: ExitReason) => void;
  readonly exited: Promise<ExitReason>;
  private crashError: string | undefined;

  constructor(
    readonly id: string,
    environment: ActorEnvironment,
  ) {
    this.environment = environment;
    this.bus = environment.bus;
    this.clock = environment.clock ?? systemClock;
    this.log = createLogger(`actor:${id}`);
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  /** Runs before any message is taken: replay journals, open plugins. */
  protected async onStart(): Promise<void> {}
  /** Runs on a graceful stop, after the mailbox is closed and drained. */
  protected async onStop(): Promise<void> {}
  /** Runs after a crash, to release resources (listening sockets, files). Must not throw. */
  protected async onCrash(): Promise<void> {}
  /** Active plugin per hosted slot, for status. */
  protected plugins(): Record<string, string> | undefined {
    return undefined;
  }

  /** Registers a handler for a subject; call from the constructor or `onStart`. */
  protected handle<B, R>(subject: string, handler: (body: B, message: Msg) => Promise<R> | R, options: HandleOptions = {}): void {
    const route: Route = {
      subject,
      handler: handler as Route['handler'],
      concurrency: options.concurrency ?? 1,
      inFlight: 0,
      raw: options.raw ?? false,
      parts: options.parts ?? false,
      waiting: [],
      waitingHead: 0,
    };
    this.routes.push(route);
    if (this.state === 'running') this.subscribe(route, options.queue);
    else this.pendingQueues.set(route, options.queue);
  }

  /**
   * Starts the actor: `onStart`, then opens the mailbox. Resolves once the server has its
   * subscriptions (a flush: PING answered after the SUBs), so a request made right after
   * start — from any connection to that server — finds it instead of "no responders".
   */
  async start(): Promise<void> {
    await this.onStart();
    if (this.environment.faults) {
      this.subscriptions.push(
        this.bus.nc.subscribe(killSubject(this.id), {
          callback: () => this.crash(new Error('killed by fault injection')),
        }),
      );
    }
    this.state = 'running';
    for (const route of this.routes) this.subscribe(route, this.pendingQueues.get(route));
    this.pendingQueues.clear();
    await this.bus.nc.flush().catch((error: unknown) => this.log.debug('subscriptions not confirmed by the server', { error }));
  }

  private subscribe(route: Route, queue: string | undefined): void {
    this.subscriptions.push(
      this.bus.nc.subscribe(route.subject, {
        ...(queue === undefined ? {} : { queue }),
        callback: (error, message) => {
          if (error === null) this.enqueue({ route, message });
        },
      }),
    );
  }

  get mailboxDepth(): number {
    return this.queued + this.inFlight;
  }

  private enqueue(envelope: Envelope): void {
    if (this.state !== 'running') {
      respond(envelope.message, { ok: false, error: new CraftError('CRAFT_OVERLOADED', `actor ${this.id} is ${this.state}`, { details: { retryAfterS: RETRY_AFTER_S } }).toJSON() });
      return;
    }
    if (this.mailboxDepth >= this.mailboxCapacity) {
      respond(envelope.message, {
        ok: false,
        error: new CraftError('CRAFT_OVERLOADED', `mailbox of ${this.id} is full (MAILBOX_CAPACITY=${this.mailboxCapacity})`, {
          details: { retryAfterS: RETRY_AFTER_S },
        }).toJSON(),
      });
      return;
    }
    envelope.route.waiting.push(envelope);
    this.queued += 1;
    this.pump(envelope.route);
  }

  /**
   * Starts waiting messages of a route while it has capacity. Each route keeps its own FIFO,
   * so a slow subject (a long-poll fetch) never blocks a fast one behind it; the mailbox
   * limit counts all of them together.
   */
  private pump(route: Route): void {
    while (route.inFlight < route.concurrency && route.waitingHead < route.waiting.length && this.state === 'running') {
      const envelope = route.waiting[route.waitingHead]!;
      route.waiting[route.waitingHead] = undefined as unknown as Envelope;
      route.waitingHead += 1;
      this.queued -= 1;
      if (route.waitingHead === route.waiting.length) {
        route.waiting.length = 0;
        route.waitingHead = 0;
      } else if (route.waitingHead > 1024 && route.waitingHead * 2 > route.waiting.length) {
        route.waiting.splice(0, route.waitingHead);
        route.waitingHead = 0;
      }
      void this.process(envelope);
    }
  }

  private async process({ route, message }: Envelope): Promise<void> {
    route.inFlight += 1;
    this.inFlight += 1;
    try {
      const body = route.raw ? message.data : message.data.length === 0 ? {} : decodeJson(message.data);
      const result = await route.handler(body, message);
      if (result instanceof RawReply) message.respond(result.data);
      else if (result instanceof PartsReply) respondParts(message, result);
      else respond(message, { ok: true, result });
    } catch (error) {
      if (route.parts) respondParts(message, { ok: false, error: toWireError(error) });
      else respond(message, { ok: false, error: toWireError(error) });
      if (!(error instanceof CraftError)) this.crash(error);
    } finally {
      route.inFlight -= 1;
      this.inFlight -= 1;
      this.pump(route);
    }
  }

  /** Crashes the actor: its supervisor decides what happens next. */
  crash(error: unknown): void {
    if (this.state === 'crashed' || this.state === 'stopped') return;
    this.state = 'crashed';
    this.crashError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.log.error('crashed', { error: this.crashError });
    this.closeMailbox('crashed');
    void (async () => {
      try {
        await this.onCrash();
      } catch (cleanupError) {
        this.log.warn('cleanup after crash failed', { error: cleanupError });
      }
      this.resolveExit({ kind: 'crash', error: this.crashError! });
    })();
  }

  private closeMailbox(reason: string): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    for (const route of this.routes) {
      for (let i = route.waitingHead; i < route.waiting.length; i++) {
        const envelope = route.waiting[i]!;
        const error = new CraftError('CRAFT_OVERLOADED', `actor ${this.id} ${reason}`, { details: { retryAfterS: RETRY_AFTER_S } }).toJSON();
        if (route.parts) respondParts(envelope.message, { ok: false, error });
        else respond(envelope.message, { ok: false, error });
      }
      route.waiting.length = 0;
      route.waitingHead = 0;
    }
    this.queued = 0;
  }

  /** Graceful stop: close the mailbox, let in-flight handlers finish (within `timeoutMs`), then `onStop`. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.state === 'stopped' || this.state === 'crashed') {
      await this.exited;
      return;
    }
    this.state = 'stopping';
    this.closeMailbox('is stopping');
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    try {
      await Promise.race([this.onStop(), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    } catch (error) {
      this.log.warn('onStop failed', { error });
    }
    this.state = 'stopped';
    this.resolveExit({ kind: 'shutdown' });
  }

  status(): NodeStatus {
    const plugins = this.plugins();
    return {
      id: this.id,
      kind: 'actor',
      state: this.state,
      restarts: 0,
      mailbox: { depth: this.mailboxDepth, capacity: this.mailboxCapacity },
      ...(plugins === undefined ? {} : { plugins }),
      ...(this.crashError === undefined ? {} : { lastError: this.crashError }),
    };
  }
}

/** A child spec that makes a fresh actor instance on every (re)start. */
export function actorSpec(id: string, make: () => Actor, options: { restart?: RestartType; shutdownMs?: number } = {}): ChildSpec {
  return {
    id,
    restart: options.restart ?? 'permanent',
    shutdownMs: options.shutdownMs ?? 5_000,
    async start(): Promise<ChildHandle> {
      const actor = make();
      try {
        await actor.start();
      } catch (error) {
        actor.crash(error);
        throw error;
      }
      return actor;
    },
  };
}
