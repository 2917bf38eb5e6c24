/**
 * The embedded NATS server: a `nats-server` child process with JetStream, on a loopback
 * port, with its store under the platform's data directory.
 *
 * No orphans: the child is started under `setpriv --pdeathsig SIGTERM` where available, so
 * the kernel stops it when the parent dies, even by SIGKILL; its pid is written to a pid
 * file, and a later start stops a leftover server that still holds the same store.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, accessSync, constants, writeFileSync } from 'node:fs';
import { join, delimiter } from 'node:path';
import { CraftError } from '../errors.js';
import { NATS_START_TIMEOUT_MS } from '../defaults.js';
import { createLogger } from '../log.js';

const log = createLogger('nats-server');

export interface EmbeddedNatsOptions {
  /** Directory for the JetStream store and the pid file; created when missing. */
  dataDir: string;
  /** Port to listen on; 0 or undefined picks a free one. */
  port?: number;
  host?: string;
  /**
   * A configuration block for the server (core/nats/roles.ts `serverAuthorization`): written
   * to `<dataDir>/server.conf` with mode 0600 and given to the server with `-c`.
   */
  configText?: string;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `NATS_SERVER_BIN`, else `nats-server` on PATH, else Debian's `/usr/sbin/nats-server`. */
export function findNatsServerBinary(): string | undefined {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return isExecutable(fromEnv) ? fromEnv : undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin']);
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function findSetpriv(): string | undefined {
  for (const candidate of ['/usr/bin/setpriv', '/bin/setpriv']) if (isExecutable(candidate)) return candidate;
  return undefined;
}

let setprivSupportsPdeathsig: boolean | undefined;
/**
 * The command prefix that makes a child die with its parent (`setpriv --pdeathsig TERM --`),
 * or nothing where setpriv lacks it. For any helper process that must not outlive us.
 */
export function pdeathsigPrefix(): string[] {
  const setpriv = findSetpriv();
  if (setpriv === undefined) return [];
  if (setprivSupportsPdeathsig === undefined) {
    const probe = spawnSync(setpriv, ['--pdeathsig', 'TERM', '--', 'true'], { stdio: 'ignore' });
    setprivSupportsPdeathsig = probe.status === 0;
  }
  return setprivSupportsPdeathsig ? [setpriv, '--pdeathsig', 'TERM', '--'] : [];
}

function processCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

/** Stops a nats-server left behind by an earlier run on the same store directory. */
function stopLeftover(pidFile: string, storeDir: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const cmdline = Number.isInteger(pid) && pid > 0 ? processCmdline(pid) : undefined;
  if (cmdline !== undefined && cmdline.includes('nats-server') && cmdline.includes(storeDir)) {
    log.warn('stopping leftover nats-server from an earlier run', { pid });
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(pidFile, { force: true });
}

export class EmbeddedNatsServer {
  private child: ChildProcess | undefined;
  private boundPort = 0;
  private readonly storeDir: string;
  private readonly pidFile: string;
  private readonly host: string;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly options: EmbeddedNatsOptions) {
    this.storeDir = join(options.dataDir, 'jetstream');
    this.pidFile = join(options.dataDir, 'nats-server.pid');
    this.host = options.host ?? '127.0.0.1';
    this.boundPort = options.port ?? 0;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `nats://${this.host}:${this.boundPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the server and resolves once it accepts client connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const binary = findNatsServerBinary();
    if (binary === undefined) throw new CraftError('CRAFT_NATS_SERVER_MISSING');
    mkdirSync(this.storeDir, { recursive: true });
    stopLeftover(this.pidFile, this.storeDir);
    const portArg = this.boundPort > 0 ? String(this.boundPort) : '-1';
    const args = ['-a', this.host, '-p', portArg, '-js', '-sd', this.storeDir, '-P', this.pidFile];
    if (this.options.configText !== undefined) {
      const configFile = join(this.options.dataDir, 'server.conf');
      writeFileSync(configFile, this.options.configText, { mode: 0o600 });
      chmodSync(configFile, 0o600);
      args.push('-c', configFile);
    }
    const prefix = pdeathsigPrefix();
    const [command, ...commandArgs] = prefix.length > 0 ? [...prefix, binary, ...args] : [binary, ...args];
    const child = spawn(command!, commandArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));

    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new CraftError('CRAFT_NATS_SERVER_START', `nats-server did not become ready in ${NATS_START_TIMEOUT_MS} ms: ${output.slice(-2000)}`));
      }, NATS_START_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString('utf8');
        const match = /Listening for client connections on [^\s]+:(\d+)/.exec(output);
        if (match !== null) this.boundPort = Number(match[1]);
        if (output.includes('Server is ready') && this.boundPort > 0) {
          clearTimeout(timer);
          child.stderr?.off('data', onData);
          // Keep draining stderr so the pipe never fills and blocks the server.
          child.stderr?.on('data', (more: Buffer) => {
            const text = more.toString('utf8');
            if (/\[(ERR|FTL)\]/.test(text)) log.warn(text.trim());
          });
          resolve();
        }
      };
      child.stderr?.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new CraftError('CRAFT_NATS_SERVER_START', `nats-server exited (code ${code}, signal ${signal}): ${output.slice(-2000)}`));
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new CraftError('CRAFT_NATS_SERVER_START', error.message, { cause: error }));
      });
    });
    log.debug('nats-server ready', { pid: child.pid, port: this.boundPort });
  }

  /** Stops the server by its pid: SIGTERM, then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    if (this.running) {
      child.kill('SIGTERM');
      const killed = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
      if (!killed) {
        child.kill('SIGKILL');
        await this.exited;
      }
    }
    this.child = undefined;
    rmSync(this.pidFile, { force: true });
  }

  /** Stops and starts again on the same port and store: the fault a scenario injects. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Synchronous last-resort stop, for process exit handlers. */
  killNow(): void {
    if (this.running) this.child?.kill('SIGKILL');
    rmSync(this.pidFile, { force: true });
  }
}
