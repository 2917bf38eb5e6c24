/**
 * An OS process as a supervised child: `craft up --only <actors>` on the same NATS, so one
 * platform spans several processes (or machines). Killing the process is a crash its
 * supervisor handles like any other. The child exits by itself when its parent's IPC
 * channel closes, so a parent killed by SIGKILL leaves no orphan behind.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExitReason, RestartType } from './policy.js';
import { currentLogLevel } from '../log.js';
import type { ChildHandle, ChildSpec, NodeState, NodeStatus } from './child.js';

/** The CLI entry, next to this file in dist/. */
export const CLI_ENTRY = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export interface ProcessChildOptions {
  name: string;
  actors: string[];
  natsUrl: string;
  /** The effective configuration the child runs with (written to a file it reads). */
  config: Record<string, unknown>;
  dataDir: string;
  restart?: RestartType;
  shutdownMs?: number;
}

class ProcessHandle implements ChildHandle {
  readonly exited: Promise<ExitReason>;
  private state: NodeState = 'running';
  private stopping = false;

  constructor(
    readonly id: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.state = this.stopping ? 'stopped' : 'crashed';
        if (this.stopping) resolve({ kind: 'shutdown' });
        else if (code === 0) resolve({ kind: 'normal' });
        else resolve({ kind: 'crash', error: `process exited with ${signal ?? `code ${code}`}` });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async stop(timeoutMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.stopping = true;
    this.state = 'stopping';
    this.child.kill('SIGTERM');
    const done = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
    if (!done) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }

  status(): NodeStatus {
    return { id: this.id, kind: 'process', state: this.state, restarts: 0, ...(this.child.pid === undefined ? {} : { pid: this.child.pid }) };
  }
}

export function processSpec(options: ProcessChildOptions): ChildSpec {
  const id = `process:${options.name}`;
  return {
    id,
    restart: options.restart ?? 'permanent',
    shutdownMs: options.shutdownMs ?? 10_000,
    async start(): Promise<ChildHandle> {
      const runDir = join(options.dataDir, 'run');
      mkdirSync(runDir, { recursive: true });
      const configFile = join(runDir, `${options.name}.config.json`);
      const config = { ...options.config, processName: options.name, actors: options.actors, processes: [], nats: { ...(options.config.nats as Record<string, unknown>), url: options.natsUrl, port: 0 }, dataDir: options.dataDir };
      // Readable by the owner only: it may carry token digests.
      writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
      // The child logs at the parent's level (a quiet scenario stays quiet).
      const child = fork(CLI_ENTRY, ['up', '--config', configFile, '--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, CRAFT_LOG: currentLogLevel() } });
      const handle = new ProcessHandle(id, child);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`process ${options.name} not ready within ${READY_TIMEOUT_MS} ms`));
        }, READY_TIMEOUT_MS);
        child.on('message', (message: { type?: string }) => {
          if (message.type === 'ready') {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`process ${options.name} exited during start (${signal ?? `code ${code}`})`));
        });
      });
      return handle;
    },
  };
}
