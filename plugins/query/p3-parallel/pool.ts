/**
 * Phase 3's worker pool: core/workers/pool.ts running shard tasks (shard-task.ts) in
 * worker.ts, the task's typed arrays moved to the worker rather than copied.
 */
import { WorkerPool } from '../../../core/workers/pool.js';
import type { ShardTask } from './shard-task.js';
import type { PartialTransfer } from './partial.js';

export type ShardPool = WorkerPool<ShardTask, PartialTransfer>;

export function shardPool(size: number): ShardPool {
  return new WorkerPool<ShardTask, PartialTransfer>({
    file: new URL('./worker.js', import.meta.url),
    name: 'query worker pool',
    errorCode: 'CRAFT_QUERY_EXECUTION',
    size,
    transfer: (task) => [task.offsets.buffer, task.times.buffer, task.values.buffer, task.refs.buffer] as ArrayBuffer[],
  });
}
