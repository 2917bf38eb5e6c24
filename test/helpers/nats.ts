/**
 * Test helper: a real nats-server (with JetStream) on a free port in a temporary directory,
 * stopped (by pid) when the test ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { EmbeddedNatsServer } from '../../core/nats/server.js';
import { Bus } from '../../core/nats/bus.js';

export function tempDir(t: Test, prefix = 'craft-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startNats(t: Test): Promise<{ server: EmbeddedNatsServer; url: string; dir: string }> {
  const dir = tempDir(t, 'craft-nats-');
  const server = new EmbeddedNatsServer({ dataDir: dir });
  await server.start();
  t.teardown(() => server.stop());
  return { server, url: server.url, dir };
}

export async function connectBus(t: Test, url: string, name = 'test'): Promise<Bus> {
  const bus = await Bus.connect(url, name);
  t.teardown(() => bus.close());
  return bus;
}

/** Polls until `check` holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
