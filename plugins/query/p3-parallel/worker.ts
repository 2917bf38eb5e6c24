/**
 * A worker thread of phase 3's pool: runs shard tasks (shard-task.ts) and posts back their
 * partial aggregates, moving the typed arrays instead of copying them.
 */
import { parentPort } from 'node:worker_threads';
import { runShardTask, type ShardTask } from './shard-task.js';

parentPort?.on('message', (message: { id: number; task: ShardTask }) => {
  try {
    const result = runShardTask(message.task);
    parentPort!.postMessage({ id: message.id, result }, [result.count.buffer, result.min.buffer, result.max.buffer, result.special.buffer, result.partsOffsets.buffer, result.parts.buffer] as ArrayBuffer[]);
  } catch (error) {
    parentPort!.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) });
  }
});
