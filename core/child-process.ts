/** Stopping a child process we started, by its pid. */
import type { ChildProcess } from 'node:child_process';

/** SIGTERM, then SIGKILL if it has not exited after `timeoutMs`; resolves once it has exited. */
export async function stopChild(child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}
