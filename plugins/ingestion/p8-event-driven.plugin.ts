/**
 * Craft #1 phase 8 — event-driven. The design Node is built for: an event loop (epoll
 * underneath) owns many connections — 10,000+ cost memory, not threads — and does the
 * whole request itself with the native JSON parser: no thread hop, no locks (the limiter
 * belongs to the loop). A valid seed-JSON body goes into the queue as received (the queue
 * message's seed form), not re-encoded. The async writer joins waiting batches per
 * partition into one queue message and keeps few appends in flight, so the queue sees few,
 * large appends.
 *
 * `loops` (option; default 1) adds event loops in child processes, one per core: the actor
 * hands accepted connections round-robin to the loops over IPC. Each loop rate-limits on
 * its own, so with more than one loop a client spread over several connections can reach
 * `loops ×` its limit; one loop keeps the per-client limit exact.
 *
 * `http` (option; default `raw`): the phase's own HTTP/1.1 layer on the raw sockets, or
 * `node` for node:http as phases 1–7 use — kept so the difference can be measured
 * (`scripts/ab-cpu.sh '{"http":"raw"}' '{"http":"node"}'`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { z } from 'zod';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { definePlugin } from '../../core/plugins/define.js';
import { QUEUE_PARTITIONS } from '../../core/defaults.js';
import { eventLoopDesign, PhaseServer } from './shared/phase-server.js';
import type { IngestionServer, IngestionServerContext, IngestionStats } from '../../core/slots/ingestion.js';
import type { LoopSetup } from './p8-event-driven/loop-process.js';

const ID = 'ingestion.event-driven';
/** Appends in flight from each loop's writer (option `appendsInFlight`). */
const APPENDS_IN_FLIGHT = 2;
const LOOP_ENTRY = fileURLToPath(new URL('./p8-event-driven/loop-process.js', import.meta.url));

const OPTIONS = z
  .object({
    loops: z.number().int().min(1).max(64).default(1),
    appendsInFlight: z.number().int().min(1).max(64).default(APPENDS_IN_FLIGHT),
    http: z.enum(['raw', 'node']).default('raw'),
  })
  .strict();

interface Loop {
  child: ChildProcess;
  stats: IngestionStats | undefined;
}

class EventDriven implements IngestionServer {
  private readonly local: PhaseServer;
  private readonly loops: Loop[] = [];
  private turn = 0;

  constructor(
    private readonly context: IngestionServerContext,
    private readonly loopCount: number,
    private readonly appendsInFlight: number,
    private readonly http: 'raw' | 'node',
  ) {
    this.local = new PhaseServer(context, eventLoopDesign(ID, context.limits, appendsInFlight, http));
    // Whichever loop takes a `GET /stats`, it answers for all of them.
    this.local.statsView = () => this.stats();
  }

  /** Every second, each loop process is given the counters of all (what it answers `GET /stats` with). */
  private aggregateTimer: NodeJS.Timeout | undefined;

  async start(): Promise<void> {
    await this.local.start();
    // The loop's sink learns the queue's real partition count with its first append.
    const setup: LoopSetup = { id: ID, natsServers: this.context.natsServers, natsIdentity: this.context.natsIdentity, limits: this.context.limits, appendsInFlight: this.appendsInFlight, partitions: QUEUE_PARTITIONS, http: this.http };
    for (let i = 1; i < this.loopCount; i++) {
      const child = fork(LOOP_ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.send({ type: 'setup', setup });
      const loop: Loop = { child, stats: undefined };
      await new Promise<void>((resolve, reject) => {
        child.on('message', (message: { type?: string; stats?: IngestionStats }) => {
          if (message.type === 'ready') resolve();
          if (message.type === 'stats') loop.stats = message.stats;
        });
        child.once('exit', (code) => reject(new Error(`event loop process exited during start (code ${code})`)));
      });
      child.on('exit', () => {
        const index = this.loops.indexOf(loop);
        if (index >= 0) this.loops.splice(index, 1);
      });
      this.loops.push(loop);
    }
    if (this.loops.length > 0) {
      this.aggregateTimer = setInterval(() => {
        const stats = this.stats();
        for (const loop of this.loops) if (loop.child.connected) loop.child.send({ type: 'aggregate', stats });
      }, 1_000);
      this.aggregateTimer.unref();
    }
  }

  accept(socket: Socket): void {
    const slot = this.turn++ % (this.loops.length + 1);
    const loop = slot === 0 ? undefined : this.loops[slot - 1];
    if (loop === undefined || !loop.child.connected) {
      this.local.accept(socket);
      return;
    }
    loop.child.send({ type: 'socket' }, socket, { keepOpen: false }, (error) => {
      if (error !== null && error !== undefined) this.context.log.warn('handing a connection to an event loop failed', { error });
    });
  }

  async drain(deadlineMs: number): Promise<void> {
    clearInterval(this.aggregateTimer);
    const exits = this.loops.map(
      (loop) =>
        new Promise<void>((resolve) => {
          if (loop.child.exitCode !== null) return resolve();
          loop.child.once('exit', () => resolve());
          loop.child.send({ type: 'drain', deadlineMs });
          setTimeout(() => {
            loop.child.kill('SIGKILL');
            resolve();
          }, Math.max(0, deadlineMs - Date.now()) + 2_000).unref();
        }),
    );
    await Promise.all([this.local.drain(deadlineMs), ...exits]);
  }

  stats(): IngestionStats {
    const all = [this.local.stats(), ...this.loops.map((l) => l.stats).filter((s): s is IngestionStats => s !== undefined)];
    const sum = (key: keyof IngestionStats): number => all.reduce((total, s) => total + (s[key] as number), 0);
    return {
      phase: ID,
      requests: sum('requests'),
      metricsReceived: sum('metricsReceived'),
      batchesProcessed: sum('batchesProcessed'),
      validationErrors: sum('validationErrors'),
      rateLimited: sum('rateLimited'),
      rejectedOverload: sum('rejectedOverload'),
      bodyTooLarge: sum('bodyTooLarge'),
      connectionsOpen: sum('connectionsOpen'),
      connectionsTotal: sum('connectionsTotal'),
      rejected: all.reduce<NonNullable<IngestionStats['rejected']>>((total, s) => {
        for (const [reason, n] of Object.entries(s.rejected ?? {})) total[reason as keyof typeof total] = (total[reason as keyof typeof total] ?? 0) + n;
        return total;
      }, {}),
      detail: { loops: all.length, ...all[0]!.detail },
    };
  }
}

export default definePlugin({
  id: ID,
  craft: 1,
  phase: 8,
  slot: 'ingestion.server',
  version: '1.0.0',
  summary: 'Event loop(s) owning all connections, native parser, group commit with few large appends',
  options: OPTIONS,
  create: (context, { loops, appendsInFlight, http }) => new EventDriven(context, loops, appendsInFlight, http),
});
