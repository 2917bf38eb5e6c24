/**
 * A worker thread of phase 3's pool (core/workers/pool.ts): runs shard tasks (shard-task.ts)
 * and posts back their partial aggregates, moving the typed arrays instead of copying them.
 */
import { serveTasks } from '../../../core/workers/serve.js';
import { runShardTask } from './shard-task.js';

serveTasks(runShardTask, (result) => [result.count.buffer, result.min.buffer, result.max.buffer, result.special.buffer, result.partsOffsets.buffer, result.parts.buffer] as ArrayBuffer[]);
