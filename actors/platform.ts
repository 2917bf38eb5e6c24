/**
 * A platform process: NATS (embedded or given), the bus, the plugin registry, and a root
 * supervisor over this process's actors and the OS processes it hosts. `craft up` runs
 * one; a scenario runs one in-process; `--only` runs a subset joined to the others by NATS.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { EmbeddedNatsServer } from '../core/nats/server.js';
import { Bus } from '../core/nats/bus.js';
import { ensureRoleUsers, identityFor, loadCredentialsFile, type NatsCredentials, type NatsIdentity } from '../core/nats/credentials.js';
import { serverAuthorization, type NatsRole } from '../core/nats/roles.js';
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
import { NotifierActor } from './notifier.js';
import { IngestionActor } from './ingestion.js';

const log = createLogger('platform');

const ACTOR_FACTORIES: Record<ActorId, (context: PlatformContext) => Actor> = {
  control: (c) => new ControlActor(c),
  queue: (c) => new QueueActor(c),
  storage: (c) => new StorageActor(c),
  query: (c) => new QueryActor(c),
  notifier: (c) => new NotifierActor(c),
  alerting: (c) => new AlertingActor(c),
  ingestion: (c) => new IngestionActor(c),
};

/** Start order: control first (it knows the plugin choices), the notifier before alerting (which asks it about receivers), ingestion last (it needs the queue). */
export const ACTOR_START_ORDER: ActorId[] = ['control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion'];

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
  /** The users (or .creds) file the CLI connects with, when the server wants credentials. */
  natsCredentials?: string;
  pid: number;
  processName: string;
  ports: { ingestion?: number; query?: number };
}

/** How this process authenticates to NATS, from its configuration (core/nats/credentials.ts). */
export function natsCredentials(config: PlatformConfig): NatsCredentials {
  const tls = config.nats.tls === null ? undefined : { caFile: config.nats.tls.ca, certFile: config.nats.tls.cert, keyFile: config.nats.tls.key };
  if (config.nats.credentials !== null) return loadCredentialsFile(resolve(config.nats.credentials), tls);
  if (config.nats.url === null && config.nats.auth === 'roles') return ensureRoleUsers(join(resolve(config.dataDir), 'nats', 'users.json'));
  return tls === undefined ? { kind: 'none' } : { kind: 'none', tls };
}

/** Listens on `port` (0: any) and closes again; the port it got, or undefined when it was taken. */
function tryPort(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolvePort(undefined) : reject(error)));
    server.listen({ host, port }, () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address !== null ? address.port : undefined));
    });
  });
}

/** The lowest port the kernel hands out for outgoing connections and `listen(0)` (Linux's default: 32768). */
function ephemeralPortsFrom(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Lowest port `freePort` picks from. */
const FREE_PORT_LOW = 10_000;

/**
 * A port free now, for a server that binds it later (and again after a restart). Picked below the
 * kernel's ephemeral range: a port from inside it could be taken meanwhile by any outgoing
 * connection — the platform's own NATS connections, opened between the pick and the bind, did
 * (EADDRINUSE in CI). Falls back to the kernel's choice when the range leaves no room.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const high = ephemeralPortsFrom() - 1;
  if (high - FREE_PORT_LOW >= 1_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = await tryPort(host, FREE_PORT_LOW + Math.floor(Math.random() * (high - FREE_PORT_LOW + 1)));
      if (port !== undefined) return port;
    }
  }
  const port = await tryPort(host, 0);
  if (port === undefined) throw new CraftError('CRAFT_CONFIG_INVALID', `no free port on ${host}`);
  return port;
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
    private readonly buses: Map<NatsRole, Bus>,
    /** How this process's connections authenticate (core/nats/credentials.ts). */
    readonly natsCredentials: NatsCredentials,
  ) {}

  /**
   * A connection with every permission, for what embeds a platform and drives it as its
   * operator would (scenarios, tests, benchmarks). The actors use their roles' connections.
   */
  get bus(): Bus {
    return this.buses.get('admin')!;
  }

  /** The `nats` configuration of another platform process joining this one's server. */
  natsToJoin(): { url: string; credentials: string | null } {
    return { url: this.natsUrl, credentials: this.natsCredentials.kind === 'none' ? null : this.natsCredentials.file };
  }

  /** The identity a helper of `role` connects with (e.g. `Bus.connect(platform.natsUrl, name, platform.natsIdentity('admin'))`). */
  natsIdentity(role: NatsRole): NatsIdentity {
    return identityFor(this.natsCredentials, role);
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
    const credentials = natsCredentials(config);
    if (natsUrl === null) {
      const configText = credentials.kind === 'roles' ? serverAuthorization(credentials.users) : undefined;
      nats = new EmbeddedNatsServer({ dataDir: join(dataDir, 'nats'), port: config.nats.port, ...(configText === undefined ? {} : { configText }) });
      await nats.start();
      natsUrl = nats.url;
    }
    // With a user per role, each actor connects as its role; otherwise one connection serves all.
    const buses = new Map<NatsRole, Bus>();
    const busFor = async (role: NatsRole): Promise<Bus> => {
      const shared = credentials.kind !== 'roles' ? buses.get('runtime') : undefined;
      const bus = buses.get(role) ?? shared ?? (await Bus.connect(natsUrl!, `craft-${config.processName}-${role}`, identityFor(credentials, role)));
      buses.set(role, bus);
      return bus;
    };
    let bus: Bus;
    try {
      bus = await busFor('runtime');
      for (const actor of here) await busFor(actor);
      await busFor('admin');
    } catch (error) {
      for (const open of new Set(buses.values())) await open.close();
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
    const context: PlatformContext = { bus, clock, processName: config.processName, faults: config.faults, config, registry, dataDir, natsServers: natsUrl, natsIdentity: identityFor(credentials, 'runtime') };
    const actorContext = (id: ActorId): PlatformContext => ({ ...context, bus: buses.get(id)!, natsIdentity: identityFor(credentials, id) });

    const { strategy, intensity, periodMs, backoff, shutdownMs } = config.supervision;
    const specs: ChildSpec[] = ACTOR_START_ORDER.filter(runsHere).map((id) => actorSpec(id, () => ACTOR_FACTORIES[id](actorContext(id)), { shutdownMs }));
    // Child processes join this server with the same credentials file.
    const childConfig = credentials.kind === 'none' ? config : { ...config, nats: { ...config.nats, credentials: credentials.file } };
    for (const child of config.processes) {
      specs.push(processSpec({ name: child.name, actors: child.actors, natsUrl, config: childConfig as unknown as Record<string, unknown>, dataDir, shutdownMs: shutdownMs * 2 }));
    }
    const root = new Supervisor(`root@${config.processName}`, { strategy, intensity, periodMs, backoff }, specs, {
      clock,
      onEvent: (event) => {
        options.onEvent?.(event);
        if (!bus.closed) bus.publish(SUBJECTS.sysEvents, { ...event, process: config.processName, atMs: clock.now() });
      },
    });
    const infoFile = join(dataDir, config.processName === 'main' ? 'platform.json' : `platform-${config.processName}.json`);
    const platform = new Platform(config, context, root, nats, infoFile, buses, credentials);
    bus.serve(SUBJECTS.sysStatus, () => platform.processStatus());
    if (config.faults) {
      bus.nc.subscribe(exitSubject(config.processName), { callback: () => void process.kill(process.pid, 'SIGKILL') });
    }
    try {
      await root.start();
    } catch (error) {
      await platform.closeBuses();
      await nats?.stop();
      throw error;
    }
    void root.exited.then((reason: ExitReason) => {
      if (reason.kind === 'crash') {
        platform.failure = reason.error;
        log.error('root supervisor failed', { error: reason.error });
      }
    });
    const info: PlatformInfoFile = { natsUrl, pid: process.pid, processName: config.processName, ports: platform.ports(), ...(credentials.kind === 'none' ? {} : { natsCredentials: credentials.file }) };
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

  async closeBuses(): Promise<void> {
    for (const bus of new Set(this.buses.values())) await bus.close();
  }

  processStatus(): ProcessStatus {
    return { process: this.config.processName, pid: process.pid, natsUrl: this.natsUrl, ports: this.ports(), tree: this.root.status() };
  }

  /** Stops actors in reverse order, then the bus, then the embedded server. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.root.stop();
    await this.closeBuses();
    await this.nats?.stop();
    rmSync(this.infoFile, { force: true });
  }
}
