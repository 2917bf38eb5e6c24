/**
 * Bearer tokens → tenants and scopes, for every HTTP API of the platform. Off unless the
 * configuration names tokens:
 *
 *   auth:
 *     tokensFile: tokens.yaml          # or, inline:  tokens: [ { token, tenant, scopes } ]
 *
 *   # tokens.yaml
 *   tokens:
 *     - { token: "s3cr3t-writer", tenant: acme, scopes: [write] }
 *     - { token: "s3cr3t-grafana", tenant: acme, scopes: [read] }
 *     - { token: "s3cr3t-ops", tenant: ops, scopes: [read, write, admin] }
 *
 * Scopes: `write` (ingestion, alerts posted by a Prometheus), `read` (queries, listing alerts and
 * silences), `admin` (silences, acknowledgements, rule reloads). A request without a token
 * gets 401 (`WWW-Authenticate: Bearer`); a token without the scope, 403. With auth on, the tenant
 * of the token — not anything the client sends — is the client id that drives rate limits,
 * queue partitioning and cardinality limits, and the `tenant` label the platform sets on every
 * series written (a client's own `tenant` label is overwritten).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml-file.js';

export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The label the platform sets to the writer's tenant when auth is on. */
export const TENANT_LABEL = 'tenant';

export const tokenSchema = z
  .object({
    /** The secret itself, or (`sha256`) its SHA-256 in hex, so the file need not hold the secret. */
    token: z.string().min(16, 'a token has at least 16 characters').optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the hex SHA-256 of the token').optional(),
    tenant: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a tenant id is 1–64 letters, digits, "_", "." or "-"'),
    scopes: z.array(z.enum(SCOPES)).min(1),
  })
  .strict()
  .refine((entry) => (entry.token === undefined) !== (entry.sha256 === undefined), 'give either token or sha256');
export type TokenEntry = z.infer<typeof tokenSchema>;

/** A list of tokens, each listed once (a token twice is refused where it is configured, not at the first request). */
export const tokenListSchema = z.array(tokenSchema).superRefine((entries, context) => {
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const key = entryDigest(entry);
    if (seen.has(key)) context.addIssue({ code: 'custom', message: `this token is listed twice (tenant ${entry.tenant})`, path: [i] });
    seen.add(key);
  });
});

export const tokensFileSchema = z.object({ tokens: tokenListSchema.refine((t) => t.length > 0, 'at least one token') }).strict();

/** The tokens of a tokens file, with file:line errors (CRAFT_CONFIG_INVALID). */
export function loadTokensFile(file: string): TokenEntry[] {
  return loadYamlFile(file, tokensFileSchema, 'CRAFT_CONFIG_INVALID').tokens;
}

export type AuthResult = { ok: true; tenant: string } | { ok: false; status: 401 | 403; error: string };

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');
const entryDigest = (entry: TokenEntry): string => entry.sha256 ?? digest(entry.token!);

/** The entry with its secret replaced by its digest (what child processes and worker threads are given). */
export const digestEntry = (entry: TokenEntry): TokenEntry => ({ sha256: entryDigest(entry), tenant: entry.tenant, scopes: entry.scopes });

export class TokenTable {
  /** SHA-256 of the token → entry: a lookup that compares digests, not the secrets themselves. */
  private readonly byDigest = new Map<string, TokenEntry>();

  constructor(entries: readonly TokenEntry[]) {
    for (const entry of entries) {
      const key = entryDigest(entry);
      const known = this.byDigest.get(key);
      // The same entry twice is harmless; one secret for two tenants or scopes is refused.
      if (known !== undefined && (known.tenant !== entry.tenant || known.scopes.join() !== entry.scopes.join())) throw new Error(`a token is listed twice, for tenant ${known.tenant} and tenant ${entry.tenant}`);
      this.byDigest.set(key, entry);
    }
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** Checks an `Authorization` header for a scope. */
  check(authorization: string | undefined, scope: Scope): AuthResult {
    if (authorization === undefined || authorization === '') return { ok: false, status: 401, error: `authentication required: send "Authorization: Bearer <token>" (a token with the ${scope} scope)` };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) return { ok: false, status: 401, error: 'the Authorization header must be "Bearer <token>"' };
    const entry = this.byDigest.get(digest(match[1]!));
    if (entry === undefined) return { ok: false, status: 401, error: 'unknown token' };
    if (!entry.scopes.includes(scope)) return { ok: false, status: 403, error: `this token (tenant ${entry.tenant}) lacks the ${scope} scope; it has ${entry.scopes.join(', ')}` };
    return { ok: true, tenant: entry.tenant };
  }
}

/** One table per token list (workers and loops build theirs from the same plain data). */
const tables = new WeakMap<readonly TokenEntry[], TokenTable>();
export function tokenTable(entries: readonly TokenEntry[] | undefined): TokenTable | undefined {
  if (entries === undefined || entries.length === 0) return undefined;
  let table = tables.get(entries);
  if (table === undefined) tables.set(entries, (table = new TokenTable(entries)));
  return table;
}
