/**
 * The worker side of core/workers/pool.ts: runs each task it is sent and posts back the result,
 * moving the buffers `transfer` names instead of copying them; an exception becomes the task's error.
 */
import { parentPort } from 'node:worker_threads';

export function serveTasks<T, R>(run: (task: T) => R, transfer: (result: R) => ArrayBuffer[] = () => []): void {
  parentPort?.on('message', (message: { id: number; task: T }) => {
    try {
      const result = run(message.task);
      parentPort!.postMessage({ id: message.id, result }, transfer(result));
    } catch (error) {
      parentPort!.postMessage({ id: message.id, error: error instanceof Error ? error.message : String(error) });
    }
  });
}
