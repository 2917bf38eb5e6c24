/**
 * `craft load`: the load generator as its own process, so a benchmark's client does not
 * share an event loop with the server it measures. Prints the LoadResult as JSON.
 */
import { LoadRun, type LoadResult } from './generator.js';

export interface LoadFlags {
  url: string;
  connections: string;
  duration: string;
  batch: string;
  close?: boolean;
  rate?: string;
  path?: string;
  body?: 'fixed' | 'unique';
}

/** A seed batch body with `batch` metrics; the server stamps the time. */
export function seedBody(batch: number): string {
  const metrics = Array.from({ length: batch }, (_, i) => `{"name":"bench_metric","value":${(i % 100) + 0.5},"type":"gauge","tags":{"host":"host-${i % 50}","slot":"s${i}"}}`);
  return `{"metrics":[${metrics.join(',')}]}`;
}

export async function runLoad(flags: LoadFlags): Promise<LoadResult> {
  const batch = Number(flags.batch);
  const run = new LoadRun({
    id: 'load',
    url: flags.url,
    clients: Number(flags.connections),
    mode: flags.rate === undefined ? 'closed' : 'paced',
    ...(flags.rate === undefined ? {} : { rate: Number(flags.rate) }),
    durationMs: Number(flags.duration) * 1_000,
    batch,
    keepAlive: flags.close !== true,
    metric: { name: 'bench_metric', value: 1, jitter: 0, type: 'gauge', tags: {}, timestamps: 'server' },
    timeoutMs: 10_000,
    ...(flags.path === undefined ? {} : { path: flags.path }),
    ...(flags.body === 'unique' ? {} : { fixedBody: seedBody(batch) }),
  });
  return run.done;
}
