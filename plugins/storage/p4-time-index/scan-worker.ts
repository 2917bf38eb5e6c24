/** A worker thread of phase 4's scan pool: decodes scan tasks (scan-task.ts), moving the arrays back. */
import { serveTasks } from '../../../core/workers/serve.js';
import { runScanTask } from './scan-task.js';

serveTasks(runScanTask, (result) => [result.starts.buffer, result.timestampsMs.buffer, result.values.buffer] as ArrayBuffer[]);
