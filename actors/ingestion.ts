/**
 * The ingestion actor: owns the listening socket and hosts the `ingestion.server` slot.
 * Each accepted connection goes to the active plugin. A swap starts the new plugin, sends
 * new connections to it, and drains the old one (its in-flight requests are answered; a
 * request is answered 2xx only after its batch is in the queue, so nothing acknowledged is
 * lost).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { digestEntry } from '../core/auth/tokens.js';
import { Actor } from '../core/actor/actor.js';
import { CraftError, invariant } from '../core/errors.js';
import { SUBJECTS, handoverSubject } from '../core/subjects.js';
import { BusSink } from '../core/ingestion/bus-sink.js';
import { currentChoice, type HandoverReply, type HandoverRequest, type PlatformContext } from '../core/platform-context.js';
import type { IngestionLimits, IngestionServer, IngestionServerContext, IngestionStats } from '../core/slots/ingestion.js';

/** How long an old plugin may take to finish its requests after a swap. */
const SWAP_DRAIN_MS = 30_000;

export class IngestionActor extends Actor {
  private current!: IngestionServer;
  private pluginId = '';
  private listener: Server | undefined;
  private readonly sink: BusSink;

  constructor(private readonly context: PlatformContext) {
    super('ingestion', context);
    this.sink = new BusSink(context.bus, context.config.ingestion.appendInFlightMax, context.config.queue.partitions, context.config.ingestion);
    this.handle(SUBJECTS.ingestionStats, () => this.stats(), { concurrency: 4 });
    this.handle(handoverSubject(this.id), (body: HandoverRequest) => this.handover(body));
  }

  get port(): number {
    const address = this.listener?.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  protected override plugins(): Record<string, string> | undefined {
    return this.pluginId === '' ? undefined : { 'ingestion.server': this.pluginId };
  }

  /** The ingestion limits, with the tokens when auth is on (one object: phases cache what they build from it). */
  private get limits(): IngestionLimits {
    const { ingestion, auth } = this.context.config;
    // The series-hash key is random per actor and shared by its workers and loops (core/ingestion/tenant-series.ts);
    // loops get the tokens as digests only.
    return (this.limitsCache ??= { ...ingestion, seriesHashSeed: randomInt(2 ** 32), ...(auth.tokens.length === 0 ? {} : { tokens: auth.tokens.map(digestEntry) }) });
  }

  private limitsCache: IngestionLimits | undefined;

  private serverContext(): IngestionServerContext {
    return {
      sink: this.sink,
      limits: this.limits,
      natsServers: this.context.natsServers,
      natsIdentity: this.context.natsIdentity,
      log: this.log,
      clock: this.clock,
    };
  }

  protected override async onStart(): Promise<void> {
    const choice = await currentChoice(this.context, 'ingestion.server');
    const server = this.context.registry.instantiate('ingestion.server', choice.id, this.serverContext(), choice.options);
    await server.start();
    this.current = server;
    this.pluginId = choice.id;
    const { host, ingestionPort, backlog } = this.context.config.http;
    // Paused on connect: nothing is read here, so a plugin may hand the socket to another process.
    const listener = createServer({ noDelay: true, pauseOnConnect: true }, (socket: Socket) => this.current.accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host, port: ingestionPort, backlog }, () => {
        listener.off('error', reject);
        resolve();
      });
    }).catch(async (error: NodeJS.ErrnoException) => {
      await server.drain(Date.now());
      throw new CraftError('CRAFT_CONFIG_INVALID', `ingestion cannot listen on ${host}:${ingestionPort}: ${error.code ?? error.message}`, { cause: error });
    });
    listener.on('error', (error) => this.crash(error));
    this.listener = listener;
    this.log.info('ingestion listening', { host, port: this.port, plugin: choice.id });
  }

  private async closeListener(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    if (listener !== undefined) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }

  protected override async onStop(): Promise<void> {
    const closing = this.closeListener();
    await this.current.drain(Date.now() + this.context.config.supervision.shutdownMs);
    await closing;
    this.sink.close();
  }

  protected override async onCrash(): Promise<void> {
    const closing = this.closeListener();
    await this.current?.drain(Date.now() + 1_000);
    await closing;
    this.sink.close();
  }

  private stats(): IngestionStats & { plugin: string; port: number } {
    return { ...this.current.stats(), plugin: this.pluginId, port: this.port };
  }

  private async handover(request: HandoverRequest): Promise<HandoverReply> {
    invariant(request.slot === 'ingestion.server', `ingestion actor asked to swap ${request.slot}`);
    const started = this.clock.now();
    const next = this.context.registry.instantiate('ingestion.server', request.plugin, this.serverContext(), request.options);
    await next.start();
    const old = this.current;
    const from = this.pluginId;
    this.current = next;
    this.pluginId = request.plugin;
    const before = old.stats();
    await old.drain(Date.now() + SWAP_DRAIN_MS);
    return {
      slot: 'ingestion.server',
      from,
      to: request.plugin,
      tookMs: this.clock.now() - started,
      detail: `new connections go to ${request.plugin}; ${before.connectionsOpen} connections of ${from} drained`,
    };
  }
}
