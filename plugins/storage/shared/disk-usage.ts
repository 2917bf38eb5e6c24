/**
 * Bytes on disk of a store, for `stats()` (which is synchronous): measured asynchronously,
 * at most once per `DISK_USAGE_INTERVAL_MS` after a write, and on demand (`refresh`).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, Timer } from '../../../core/clock.js';

export const DISK_USAGE_INTERVAL_MS = 1_000;

export class DiskUsage {
  bytes = 0;
  private timer: Timer | undefined;
  private stopped = false;

  constructor(private readonly measure: () => Promise<number>, private readonly clock: Clock) {}

  async refresh(): Promise<void> {
    try {
      this.bytes = await this.measure();
    } catch {
      // The store was closed or a file vanished mid-measure: keep the last figure.
    }
  }

  /** Something was written: measure again soon. */
  touch(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) void this.refresh();
    }, DISK_USAGE_INTERVAL_MS);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }
}

/** Sum of the sizes of the regular files in `dir`; files deleted meanwhile count 0. */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    try {
      const info = await stat(join(dir, name));
      if (info.isFile()) total += info.size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return total;
}
