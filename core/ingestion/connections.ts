/**
 * What every HTTP layer of the ingestion phases does with its connections: count them in
 * the phase's stats, refuse new ones while draining, and drain — close idle ones until none
 * is left or the deadline passes, then destroy the rest.
 */
import type { Socket } from 'node:net';
import type { StatsCounter } from './protocol.js';
import { sleep } from '../clock.js';

export class ConnectionSet<C> {
  readonly open = new Set<C>();
  private draining = false;

  constructor(private readonly stats: StatsCounter) {}

  get isDraining(): boolean {
    return this.draining;
  }

  /** Tracks the connection made for `socket` until the socket closes; while draining, destroys the socket instead. */
  admit(socket: Socket, make: () => C): C | undefined {
    if (this.draining) {
      socket.destroy();
      return undefined;
    }
    const connection = make();
    this.open.add(connection);
    this.stats.connectionsOpen += 1;
    this.stats.connectionsTotal += 1;
    socket.once('close', () => {
      this.open.delete(connection);
      this.stats.connectionsOpen -= 1;
    });
    return connection;
  }

  async drain(deadlineMs: number, closeIdle: () => void, destroy: (connection: C) => void): Promise<void> {
    this.draining = true;
    closeIdle();
    while (this.open.size > 0 && Date.now() < deadlineMs) {
      await sleep(10);
      closeIdle();
    }
    for (const connection of this.open) destroy(connection);
  }
}
