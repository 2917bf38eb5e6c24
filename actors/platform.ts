/**
 * A platform process: NATS (embedded or given), the bus, the plugin registry, and a root
 * supervisor over this process's actors and the OS processes it hosts. `craft up` runs
 * one; a scenario runs one in-process; `--only` runs a subset joined to the others by NATS.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { EmbeddedNatsServer } from '../core/nats/server.js';
import { Bus } from '../core/nats/bus.js';
import { PluginRegistry } from '../core/plugins/registry.js';
import { Supervisor, type SupervisorEvent } from '../core/supervision/supervisor.js';
import { actorSpec, type Actor } from '../core/actor/actor.js';
import { processSpec } from '../core/supervision/process-child.js';
import { exitSubject, SUBJECTS } from '../core/subjects.js';
import { systemClock, type Clock } from '../core/clock.js';
import { createLogger } from '../core/log.js';
import { CraftError } from '../core/errors.js';
import { actorsHere, type ActorId, type PlatformConfig } from '../core/config/schema.js';
import type { ChildSpec, NodeStatus } from '../core/supervision/child.js';
import type { PlatformContext } from '../core/platform-context.js';
import type { ExitReason } from '../core/supervision/policy.js';
import { ControlActor } from './control.js';
import { QueueActor } from './queue.js';
import { StorageActor } from './storage.js';
import { QueryActor } from './query.js';
import { AlertingActor } from './alerting.js';
import { IngestionActor } from './ingestion.js';

const log = createLogger('platform');

const ACTOR_FACTORIES: Record<ActorId, (context: PlatformContext) => Actor> = {
  control: (c) => new ControlActor(c),
  queue: (c) => new QueueActor(c),
  storage: (c) => new StorageActor(c),
  query: (c) => new QueryActor(c),
  alerting: (c) => new AlertingActor(c),
  ingestion: (c) => new IngestionActor(c),
};

/** Start order: control first (it knows the plugin choices), ingestion last (it needs the queue). */
export const ACTOR_START_ORDER: ActorId[] = ['control', 'queue', 'storage', 'query', 'alerting', 'ingestion'];

/** What `craft.sys.status` answers for one process. */
export interface ProcessStatus {
  process: string;
  pid: number;
  natsUrl: string;
  ports: { ingestion?: number; query?: number };
  tree: NodeStatus;
}

export interface PlatformInfoFile {
  natsUrl: string;
  pid: number;
  processName: string;
  ports: { ingestion?: number; query?: number };
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

export interface PlatformStartOptions {
  registry?: PluginRegistry;
  clock?: Clock;
  /** Called with every supervision event (tests, scenarios). */
  onEvent?: (event: SupervisorEvent) => void;
}

export class Platform {
  private failure: string | undefined;
  private stopped = false;

  private constructor(
    readonly config: PlatformConfig,
    readonly context: PlatformContext,
    readonly root: Supervisor,
    readonly nats: EmbeddedNatsServer | undefined,
    private readonly infoFile: string,
  ) {}

  get bus(): Bus {
    return this.context.bus;
  }

  get natsUrl(): string {
    return this.context.natsServers;
  }

  get ingestionPort(): number {
    return this.config.http.ingestionPort;
  }

  get queryPort(): number {
    return this.config.http.queryPort;
  }

  get alertingPort(): number {
    return this.config.http.alertingPort;
  }

  /** Why the root supervisor gave up, if it did. */
  get failed(): string | undefined {
    return this.failure;
  }

  static async start(input: PlatformConfig, options: PlatformStartOptions = {}): Promise<Platform> {
    const dataDir = resolve(input.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const config: PlatformConfig = { ...input, dataDir, http: { ...input.http } };
    const here = actorsHere(config);
    const runsHere = (actor: ActorId): boolean => here.includes(actor);
    // Fix ports before any actor starts, so a restarted actor binds the same port.
    const bindHost = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
    if (runsHere('ingestion') && config.http.ingestionPort === 0) config.http.ingestionPort = await freePort(bindHost);
    if (runsHere('query') && config.http.queryPort === 0) config.http.queryPort = await freePort(bindHost);
    if (runsHere('alerting') && config.http.alertingPort === 0) config.http.alertingPort = await freePort(bindHost);

    let nats: EmbeddedNatsServer | undefined;
    let natsUrl = config.nats.url;
    if (natsUrl === null) {
      nats = new EmbeddedNatsServer({ dataDir: join(dataDir, 'nats'), port: config.nats.port });
      await nats.start();
      natsUrl = nats.url;
    }
    let bus: Bus;
    try {
      bus = await Bus.connect(natsUrl, `craft-${config.processName}`);
    } catch (error) {
      await nats?.stop();
      throw new CraftError('CRAFT_PLATFORM_NOT_RUNNING', `cannot connect to NATS at ${natsUrl}: ${(error as Error).message}`, { cause: error });
    }
    let registry = options.registry;
    if (registry === undefined) {
      const loaded = await PluginRegistry.load();
      for (const error of loaded.errors) log.warn('plugin rejected', { code: error.code, error: error.message });
      registry = loaded.registry;
    }
    const clock = options.clock ?? systemClock;
    const context: PlatformContext = { bus, clock, processName: config.processName, faults: config.faults, config, registry, dataDir, natsServers: natsUrl };

    const { strategy, intensity, periodMs, backoff, shutdownMs } = config.supervision;
    const specs: ChildSpec[] = ACTOR_START_ORDER.filter(runsHere).map((id) => actorSpec(id, () => ACTOR_FACTORIES[id](context), { shutdownMs }));
    for (const child of config.processes) {
      specs.push(processSpec({ name: child.name, actors: child.actors, natsUrl, config: config as unknown as Record<string, unknown>, dataDir, shutdownMs: shutdownMs * 2 }));
    }
    const root = new Supervisor(`root@${config.processName}`, { strategy, intensity, periodMs, backoff }, specs, {
      clock,
      onEvent: (event) => {
        options.onEvent?.(event);
        if (!bus.closed) bus.publish(SUBJECTS.sysEvents, { ...event, process: config.processName, atMs: clock.now() });
      },
    });
    const infoFile = join(dataDir, config.processName === 'main' ? 'platform.json' : `platform-${config.processName}.json`);
    const platform = new Platform(config, context, root, nats, infoFile);
    bus.serve(SUBJECTS.sysStatus, () => platform.processStatus());
    if (config.faults) {
      bus.nc.subscribe(exitSubject(config.processName), { callback: () => void process.kill(process.pid, 'SIGKILL') });
    }
    try {
      await root.start();
    } catch (error) {
      await bus.close();
      await nats?.stop();
      throw error;
    }
    void root.exited.then((reason: ExitReason) => {
      if (reason.kind === 'crash') {
        platform.failure = reason.error;
        log.error('root supervisor failed', { error: reason.error });
      }
    });
    const info: PlatformInfoFile = { natsUrl, pid: process.pid, processName: config.processName, ports: platform.ports() };
    writeFileSync(infoFile, JSON.stringify(info, null, 2) + '\n');
    return platform;
  }

  ports(): { ingestion?: number; query?: number; alerting?: number } {
    const here = actorsHere(this.config);
    return {
      ...(here.includes('ingestion') ? { ingestion: this.config.http.ingestionPort } : {}),
      ...(here.includes('query') ? { query: this.config.http.queryPort } : {}),
      ...(here.includes('alerting') ? { alerting: this.config.http.alertingPort } : {}),
    };
  }

  processStatus(): ProcessStatus {
    return { process: this.config.processName, pid: process.pid, natsUrl: this.natsUrl, ports: this.ports(), tree: this.root.status() };
  }

  /** Stops actors in reverse order, then the bus, then the embedded server. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.root.stop();
    await this.bus.close();
    await this.nats?.stop();
    rmSync(this.infoFile, { force: true });
  }
}
