/**
 * Finding the real peers tests compare against (Debian's prometheus, prometheus-alertmanager):
 * the path in `envVar` if set, else the first of `names` on PATH; undefined when none is found
 * (the test then says it is skipped, and why).
 */
import { spawnSync } from 'node:child_process';

export function findBinary(envVar: string, ...names: string[]): string | undefined {
  const fromEnv = process.env[envVar];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  for (const name of names) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    if (found !== '') return found;
  }
  return undefined;
}
