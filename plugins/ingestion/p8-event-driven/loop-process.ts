/**
 * One more event loop for the event-driven phase: a child process that serves the
 * connections its parent hands it over IPC (`'socket'` messages carrying the handle), with
 * its own NATS connection and its own async writer. It reports its counters every second,
 * drains on `{type: 'drain'}`, and exits when the parent goes away.
 */
import type { IngestionStats } from '../../../core/slots/ingestion.js';
import type { Socket } from 'node:net';
import { Bus } from '../../../core/nats/bus.js';
import type { NatsIdentity } from '../../../core/nats/credentials.js';
import { BusSink } from '../../../core/ingestion/bus-sink.js';
import { eventLoopDesign, PhaseServer } from '../shared/phase-server.js';
import { systemClock } from '../../../core/clock.js';
import { createLogger } from '../../../core/log.js';
import type { IngestionLimits } from '../../../core/slots/ingestion.js';

export interface LoopSetup {
  id: string;
  natsServers: string;
  natsIdentity: NatsIdentity;
  limits: IngestionLimits;
  appendsInFlight: number;
  partitions: number;
  http: 'raw' | 'node';
}

const send = (message: unknown): void => {
  if (process.connected) process.send!(message);
};

// The setup (with the NATS identity's secret) comes over IPC, not in the environment.
const setup = await new Promise<LoopSetup>((resolve) => process.once('message', (message: { type?: string; setup?: LoopSetup }) => resolve(message.setup!)));
const log = createLogger(`loop:${process.pid}`);
const bus = await Bus.connect(setup.natsServers, `craft-ingestion-loop-${process.pid}`, setup.natsIdentity);
const sink = new BusSink(bus, setup.limits.appendInFlightMax, setup.partitions, setup.limits);
const server = new PhaseServer(
  { sink, limits: setup.limits, natsServers: setup.natsServers, natsIdentity: setup.natsIdentity, log, clock: systemClock },
  eventLoopDesign(setup.id, setup.limits, setup.appendsInFlight, setup.http),
);
await server.start();

let draining = false;
const report = setInterval(() => send({ type: 'stats', stats: server.stats() }), 1_000);
const finish = async (deadlineMs: number): Promise<void> => {
  if (draining) return;
  draining = true;
  await server.drain(deadlineMs);
  clearInterval(report);
  send({ type: 'stats', stats: server.stats() });
  sink.close();
  await bus.close();
  process.exit(0);
};

// `GET /stats` here answers the counters of every loop, as the parent last sent them (at most ~2 s old).
let aggregate: IngestionStats | undefined;
server.statsView = () => aggregate ?? server.stats();
process.on('message', (message: { type?: string; deadlineMs?: number; stats?: IngestionStats }, handle?: Socket) => {
  if (message.type === 'aggregate' && message.stats !== undefined) aggregate = message.stats;
  else if (message.type === 'socket' && handle !== undefined) server.accept(handle);
  else if (message.type === 'drain') void finish(message.deadlineMs ?? Date.now() + 5_000);
});
process.on('disconnect', () => void finish(Date.now() + 1_000));
send({ type: 'ready' });
