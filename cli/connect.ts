/**
 * How CLI commands find a running platform: `--nats URL`, else `CRAFT_NATS_URL`, else the
 * `platform.json` that `craft up` writes into its data directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Bus } from '../core/nats/bus.js';
import { CraftError } from '../core/errors.js';
import type { PlatformInfoFile } from '../actors/platform.js';

export function findNatsUrl(options: { nats?: string; data?: string }): string {
  if (options.nats !== undefined) return options.nats;
  const fromEnv = process.env.CRAFT_NATS_URL;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const file = join(resolve(options.data ?? './data'), 'platform.json');
  if (!existsSync(file)) {
    throw new CraftError('CRAFT_PLATFORM_NOT_RUNNING', `no running platform: ${file} does not exist (start one with \`craft up\`, or pass --nats URL)`);
  }
  return (JSON.parse(readFileSync(file, 'utf8')) as PlatformInfoFile).natsUrl;
}

export async function connectToPlatform(options: { nats?: string; data?: string }): Promise<Bus> {
  const url = findNatsUrl(options);
  try {
    return await Bus.connect(url, 'craft-cli');
  } catch (error) {
    throw new CraftError('CRAFT_PLATFORM_NOT_RUNNING', `cannot reach NATS at ${url}: ${(error as Error).message}`, { cause: error });
  }
}
