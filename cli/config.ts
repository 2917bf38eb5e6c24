/**
 * The effective configuration of a command: the YAML (or JSON) file, then flags on top.
 */
import { configSchema, makeConfig, ACTOR_IDS, type ActorId, type PlatformConfig } from '../core/config/schema.js';
import { loadYamlFile } from '../core/config/yaml-file.js';
import { CraftError } from '../core/errors.js';
import { dirname, resolve } from 'node:path';
import { digestEntry, loadTokensFile, tokenListSchema } from '../core/auth/tokens.js';

export interface ConfigFlags {
  config?: string;
  data?: string;
  nats?: string;
  natsCreds?: string;
  only?: string;
  processName?: string;
  ingestionPort?: string;
  queryPort?: string;
  alertingPort?: string;
  host?: string;
}

function portFlag(value: string, flag: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new CraftError('CRAFT_CONFIG_INVALID', `${flag} must be a port number 0–65535, got ${JSON.stringify(value)}`);
  return port;
}

export function resolveConfig(flags: ConfigFlags): PlatformConfig {
  const base = flags.config === undefined ? makeConfig() : loadYamlFile(flags.config, configSchema, 'CRAFT_CONFIG_INVALID');
  const config: PlatformConfig = { ...base, http: { ...base.http }, nats: { ...base.nats }, auth: { ...base.auth } };
  // The tokens file is read once, here, relative to the configuration file; what a child process is given holds digests, not the file's name.
  if (config.auth.tokensFile !== undefined) {
    const merged = [...config.auth.tokens, ...loadTokensFile(resolve(flags.config === undefined ? '.' : dirname(flags.config), config.auth.tokensFile))];
    const checked = tokenListSchema.safeParse(merged);
    if (!checked.success) throw new CraftError('CRAFT_CONFIG_INVALID', `auth: ${checked.error.issues.map((i) => i.message).join('; ')}`);
    config.auth = { tokens: merged.map(digestEntry) };
  }
  // Files the configuration names are relative to it.
  const relative = (file: string): string => resolve(flags.config === undefined ? '.' : dirname(flags.config), file);
  if (config.nats.credentials !== null) config.nats.credentials = relative(config.nats.credentials);
  if (config.nats.tls !== null) {
    const { ca, cert, key } = config.nats.tls;
    config.nats.tls = { ...(ca === undefined ? {} : { ca: relative(ca) }), ...(cert === undefined ? {} : { cert: relative(cert) }), ...(key === undefined ? {} : { key: relative(key) }) };
  }
  if (flags.data !== undefined) config.dataDir = flags.data;
  const natsUrl = flags.nats ?? process.env.CRAFT_NATS_URL;
  if (natsUrl !== undefined && natsUrl !== '') config.nats.url = natsUrl;
  const natsCreds = flags.natsCreds ?? process.env.CRAFT_NATS_CREDS;
  if (natsCreds !== undefined && natsCreds !== '') config.nats.credentials = natsCreds;
  if (flags.processName !== undefined) config.processName = flags.processName;
  if (flags.ingestionPort !== undefined) config.http.ingestionPort = portFlag(flags.ingestionPort, '--ingestion-port');
  if (flags.queryPort !== undefined) config.http.queryPort = portFlag(flags.queryPort, '--query-port');
  if (flags.alertingPort !== undefined) config.http.alertingPort = portFlag(flags.alertingPort, '--alerting-port');
  if (flags.host !== undefined) config.http.host = flags.host;
  if (flags.only !== undefined) {
    const actors = flags.only.split(',').map((a) => a.trim()).filter((a) => a !== '');
    const unknown = actors.filter((a) => !(ACTOR_IDS as readonly string[]).includes(a));
    if (unknown.length > 0 || actors.length === 0) {
      throw new CraftError('CRAFT_CONFIG_INVALID', `--only takes actors from ${ACTOR_IDS.join(', ')}; unknown: ${unknown.join(', ') || '(none given)'}`);
    }
    config.actors = actors as ActorId[];
  }
  return config;
}
