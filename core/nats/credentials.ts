/**
 * Who a process's NATS connections are.
 *
 * - Embedded server (the default): the platform writes `<dataDir>/nats/users.json` (mode 0600)
 *   once — a user and a random password per role (core/nats/roles.ts) — and starts the server
 *   with those users. Each actor connects as its role; the CLI and scenarios read the file and
 *   connect as `admin`. `nats.auth: none` turns this off.
 * - Existing server or cluster (`--nats URL`): `--nats-creds FILE` (or `nats.credentials`) is
 *   either a NATS `.creds` file (a user JWT and its nkey seed: the whole process is that user)
 *   or a users file like the embedded one (each actor connects as its role; `craft nats-config`
 *   prints the server's side of it). User and password in the URL work too
 *   (`nats://user:pass@host:4222`).
 * - TLS: a `tls://` URL makes the connection require TLS; `nats.tls` names the CA (to trust a
 *   private one) and a client certificate and key (when the server verifies clients).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { z } from 'zod';
import { credsAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { CraftError } from '../errors.js';
import { NATS_ROLES, inboxPrefix, type NatsRole, type RoleUser } from './roles.js';

export interface NatsTls {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** How one connection authenticates. Serializable: helper processes get it in their setup. */
export interface NatsIdentity {
  role: NatsRole;
  user?: string;
  password?: string;
  /** A NATS `.creds` file (user JWT + nkey seed). */
  credsFile?: string;
  tls?: NatsTls;
}

/** What a process holds: nothing, a user per role, or one `.creds` identity for every role. */
export type NatsCredentials =
  | { kind: 'none'; tls?: NatsTls }
  | { kind: 'roles'; file: string; users: Record<NatsRole, RoleUser>; tls?: NatsTls }
  | { kind: 'creds'; file: string; tls?: NatsTls };

const roleUser = z.object({ user: z.string().min(1), password: z.string().min(1) }).strict();
const usersFileSchema = z
  .object({
    roles: z.object(Object.fromEntries(NATS_ROLES.map((r) => [r, roleUser])) as Record<NatsRole, typeof roleUser>).strict(),
  })
  .strict();

const CREDS_MARKER = '-----BEGIN NATS USER JWT-----';

/** The identity a role's connections use. */
export function identityFor(credentials: NatsCredentials, role: NatsRole): NatsIdentity {
  const tls = credentials.tls === undefined ? {} : { tls: credentials.tls };
  if (credentials.kind === 'roles') return { role, user: credentials.users[role].user, password: credentials.users[role].password, ...tls };
  if (credentials.kind === 'creds') return { role, credsFile: credentials.file, ...tls };
  return { role, ...tls };
}

/** nats.js options for an identity on `servers`: its authenticator, inbox prefix and TLS. */
export function connectionOptions(servers: string, identity: NatsIdentity | undefined): Partial<ConnectionOptions> {
  if (identity === undefined) return {};
  const options: Partial<ConnectionOptions> = { inboxPrefix: inboxPrefix(identity.role) };
  if (identity.user !== undefined) {
    options.user = identity.user;
    options.pass = identity.password ?? '';
  }
  if (identity.credsFile !== undefined) options.authenticator = credsAuthenticator(readFileSync(identity.credsFile));
  if (identity.tls !== undefined || /(^|,)\s*tls:\/\//.test(servers)) {
    const { caFile, certFile, keyFile } = identity.tls ?? {};
    options.tls = { ...(caFile === undefined ? {} : { caFile }), ...(certFile === undefined ? {} : { certFile }), ...(keyFile === undefined ? {} : { keyFile }) };
  }
  return options;
}

/**
 * Reads a credentials file: a NATS `.creds` file, or a users file (`{"roles": {"<role>":
 * {"user", "password"}, …}}`, every role present). A clear error names what is wrong.
 */
export function loadCredentialsFile(file: string, tls?: NatsTls): NatsCredentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CraftError('CRAFT_CONFIG_INVALID', `NATS credentials file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const withTls = tls === undefined ? {} : { tls };
  if (text.includes(CREDS_MARKER)) return { kind: 'creds', file, ...withTls };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CraftError('CRAFT_CONFIG_INVALID', `NATS credentials file ${file}: neither a NATS .creds file (no "${CREDS_MARKER}") nor a JSON users file`);
  }
  const checked = usersFileSchema.safeParse(parsed);
  if (!checked.success) {
    const issues = checked.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new CraftError('CRAFT_CONFIG_INVALID', `NATS users file ${file}: ${issues} (expected {"roles": {${NATS_ROLES.map((r) => `"${r}"`).join(', ')}: {"user", "password"}}})`);
  }
  return { kind: 'roles', file, users: checked.data.roles, ...withTls };
}

/**
 * The users of an embedded server: read from `file` when an earlier run wrote it, else
 * generated (a random 32-byte password per role) and written with mode 0600. A file an older
 * version wrote, without a role added since (the notifier), gets that role's user added.
 */
export function ensureRoleUsers(file: string): NatsCredentials {
  const newUser = (role: NatsRole): RoleUser => ({ user: `craft-${role}`, password: randomBytes(32).toString('base64url') });
  let roles: Record<NatsRole, RoleUser>;
  if (existsSync(file)) {
    let older: { roles?: Record<string, RoleUser> } | undefined;
    try {
      older = JSON.parse(readFileSync(file, 'utf8')) as { roles?: Record<string, RoleUser> };
    } catch {
      older = undefined;
    }
    const known = older?.roles;
    if (known === undefined || known === null || typeof known !== 'object' || NATS_ROLES.every((role) => known[role] !== undefined)) return loadCredentialsFile(file);
    roles = Object.fromEntries(NATS_ROLES.map((role) => [role, known[role] ?? newUser(role)])) as Record<NatsRole, RoleUser>;
    // What is kept must be what a users file may hold (a clear error otherwise, nothing written).
    const checked = usersFileSchema.safeParse({ roles });
    if (!checked.success) return loadCredentialsFile(file);
  } else {
    mkdirSync(dirname(file), { recursive: true });
    roles = Object.fromEntries(NATS_ROLES.map((role) => [role, newUser(role)])) as Record<NatsRole, RoleUser>;
  }
  writeFileSync(file, JSON.stringify({ roles }, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return { kind: 'roles', file, users: roles };
}
