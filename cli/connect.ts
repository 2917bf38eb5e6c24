/**
 * How CLI commands find a running platform: `--nats URL`, else `CRAFT_NATS_URL`, else the
 * `platform.json` that `craft up` writes into its data directory. They connect as the `admin`
 * role with `--nats-creds FILE`, else `CRAFT_NATS_CREDS`, else the credentials file that
 * `platform.json` names (the embedded server's users file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Bus } from '../core/nats/bus.js';
import { identityFor, loadCredentialsFile, type NatsIdentity } from '../core/nats/credentials.js';
import { CraftError } from '../core/errors.js';
import type { PlatformInfoFile } from '../actors/platform.js';

export interface PlatformFlags {
  nats?: string;
  natsCreds?: string;
  data?: string;
}

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

export function findPlatform(options: PlatformFlags): { url: string; identity: NatsIdentity | undefined } {
  const credentialsFile = (info?: PlatformInfoFile): string | undefined => nonEmpty(options.natsCreds) ?? nonEmpty(process.env.CRAFT_NATS_CREDS) ?? info?.natsCredentials;
  const identity = (file: string | undefined): NatsIdentity | undefined => (file === undefined ? undefined : identityFor(loadCredentialsFile(file), 'admin'));
  const url = nonEmpty(options.nats) ?? nonEmpty(process.env.CRAFT_NATS_URL);
  if (url !== undefined) return { url, identity: identity(credentialsFile()) };
  const file = join(resolve(options.data ?? './data'), 'platform.json');
  if (!existsSync(file)) {
    throw new CraftError('CRAFT_PLATFORM_NOT_RUNNING', `no running platform: ${file} does not exist (start one with \`craft up\`, or pass --nats URL)`);
  }
  const info = JSON.parse(readFileSync(file, 'utf8')) as PlatformInfoFile;
  return { url: info.natsUrl, identity: identity(credentialsFile(info)) };
}

export async function connectToPlatform(options: PlatformFlags): Promise<Bus> {
  const { url, identity } = findPlatform(options);
  try {
    return await Bus.connect(url, 'craft-cli', identity);
  } catch (error) {
    const hint = /authoriz/i.test((error as Error).message) ? ' (pass --nats-creds FILE: the users file of the platform, e.g. <data>/nats/users.json)' : '';
    throw new CraftError('CRAFT_PLATFORM_NOT_RUNNING', `cannot reach NATS at ${url}: ${(error as Error).message}${hint}`, { cause: error });
  }
}
