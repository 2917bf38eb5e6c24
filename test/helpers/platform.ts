/**
 * Test helper: a whole platform in this process on a temporary data directory, with its
 * own embedded nats-server, stopped when the test ends.
 */
import type { Test } from 'tap';
import { Platform } from '../../actors/platform.js';
import { makeConfig, type PlatformConfigInput } from '../../core/config/schema.js';
import { setLogLevel } from '../../core/log.js';
import { tempDir } from './nats.js';

setLogLevel(process.env.CRAFT_LOG === undefined ? 'error' : (process.env.CRAFT_LOG as 'info'));

export const CRAFT0_PLUGINS = {
  'ingestion.server': 'craft0.http',
  'queue.log': 'craft0.memory-queue',
  'storage.engine': 'craft0.jsonl-store',
  'query.evaluator': 'craft0.full-scan',
  'alerting.evaluator': 'craft0.polling-alerts',
} as const;

export async function startPlatform(t: Test, input: PlatformConfigInput = {}, dataDir = tempDir(t)): Promise<Platform> {
  const config = makeConfig({
    faults: true,
    ...input,
    dataDir,
    http: { host: '127.0.0.1', ingestionPort: 0, queryPort: 0, alertingPort: 0, ...(input.http ?? {}) },
  });
  const platform = await Platform.start(config);
  t.teardown(() => platform.stop());
  return platform;
}

export async function postJson(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export async function getJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body: parsed };
}
