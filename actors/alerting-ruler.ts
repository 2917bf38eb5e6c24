/**
 * Rule groups set over HTTP — the ruler configuration API of Grafana Mimir (and Cortex), the
 * one `mimirtool rules` uses — on the alerting port:
 *
 *   GET    /prometheus/config/v1/rules                       every namespace's groups (YAML: {namespace: [group…]})
 *   GET    /prometheus/config/v1/rules/{namespace}           one namespace's groups
 *   GET    /prometheus/config/v1/rules/{namespace}/{group}   one group (YAML)
 *   POST   /prometheus/config/v1/rules/{namespace}           sets a group (YAML body: name, interval?, rules) → 202
 *   DELETE /prometheus/config/v1/rules/{namespace}/{group}   deletes a group → 202
 *   DELETE /prometheus/config/v1/rules/{namespace}           deletes a namespace → 202
 *
 * With auth on, everything is the caller's tenant's: its groups are evaluated as that tenant
 * (queries see its series only, its alerts carry its `tenant` label) and listed to it alone;
 * reading needs `read`, changing `admin`. Without auth the groups are the platform's. Groups are
 * kept in the KV bucket `craft-rules` (so a restarted alerting actor evaluates them again) and
 * evaluated by phase 1 (`alerting.rules`, option `managed`): a group is refused with the line of
 * its problem before anything is stored (a recording rule too: those are the query actor's rule
 * files), and while another evaluator plugin is active (409).
 */
import { Kvm, type KV } from '@nats-io/kv';
import { parse as parseYamlText, stringify as yamlText } from 'yaml';
import type { Bus } from '../core/nats/bus.js';
import { BUCKETS } from '../core/subjects.js';
import { CraftError } from '../core/errors.js';
import { isRecordingRule, parseRuleGroup } from '../core/rules/rule-file.js';
import type { ApiAnswer } from '../core/http/api-server.js';

export const RULER_PREFIX = '/prometheus/config/v1/rules';
/** Rule groups one tenant (or the platform) may set through the API. */
export const RULER_GROUPS_PER_TENANT_MAX = 500;
/** Longest namespace or group name, characters. */
export const RULER_NAME_LENGTH_MAX = 256;

/** One group set through the API, as stored. */
export interface ManagedGroup {
  /** Whose (absent: the platform's). */
  tenant?: string;
  namespace: string;
  name: string;
  /** The group's YAML, as the API took it. */
  yaml: string;
}

/** A key token for any text: KV keys allow letters, digits, `-`, `_`, `=`, `/` and `.` (which separates tokens). */
const token = (text: string): string => `k${Buffer.from(text, 'utf8').toString('base64url')}`;
const keyOf = (g: Pick<ManagedGroup, 'tenant' | 'namespace' | 'name'>): string => `${token(g.tenant ?? '')}.${token(g.namespace)}.${token(g.name)}`;

/** The groups set through the API, mirrored from the `craft-rules` bucket. */
export class ManagedRules {
  private constructor(
    private readonly kv: KV,
    private readonly groups: Map<string, ManagedGroup>,
  ) {}

  static async open(bus: Bus, replicas: number | undefined): Promise<ManagedRules> {
    const kv = await new Kvm(bus.nc).create(BUCKETS.rules, { history: 1, replicas: replicas ?? 1 });
    const groups = new Map<string, ManagedGroup>();
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      groups.set(key, entry.json<ManagedGroup>());
    }
    return new ManagedRules(kv, groups);
  }

  /** Every group, in key order. */
  all(): ManagedGroup[] {
    return [...this.groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, group]) => group);
  }

  of(tenant: string | undefined): ManagedGroup[] {
    return this.all().filter((g) => g.tenant === tenant);
  }

  /** What the set would be with `group` set (replacing one of its name in its namespace). */
  withGroup(group: ManagedGroup): ManagedGroup[] {
    return [...this.all().filter((g) => keyOf(g) !== keyOf(group)), group];
  }

  /** What the set would be without these groups. */
  without(gone: ManagedGroup[]): ManagedGroup[] {
    const keys = new Set(gone.map(keyOf));
    return this.all().filter((g) => !keys.has(keyOf(g)));
  }

  async put(group: ManagedGroup): Promise<void> {
    await this.kv.put(keyOf(group), JSON.stringify(group));
    this.groups.set(keyOf(group), group);
  }

  async delete(gone: ManagedGroup[]): Promise<void> {
    for (const g of gone) {
      await this.kv.delete(keyOf(g));
      this.groups.delete(keyOf(g));
    }
  }
}

export interface RulerHost {
  rules: ManagedRules;
  /** Sets or deletes groups: the evaluator is built with the change first (throwing what is wrong), then it is stored and takes over. */
  apply(change: { put?: ManagedGroup; delete?: ManagedGroup[] }): Promise<void>;
  /** Why groups cannot be set now (the active evaluator plugin does not take them), or undefined. */
  refusal(): string | undefined;
}

const jsonAnswer = (status: number, body: unknown): ApiAnswer => ({ status, body: JSON.stringify(body) });
const yamlAnswer = (value: unknown): ApiAnswer => ({ status: 200, body: yamlText(value), headers: { 'Content-Type': 'application/yaml' } });
/** Mimir's answer to a change it took. */
const ACCEPTED: ApiAnswer = jsonAnswer(202, { status: 'success', data: null, errorType: '', error: '' });

function nameOf(raw: string, what: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new CraftError('CRAFT_BAD_REQUEST', `the ${what} in the path is not valid percent-encoding: ${JSON.stringify(raw)}`);
  }
  // eslint-disable-next-line no-control-regex
  if (name === '' || name.length > RULER_NAME_LENGTH_MAX || /[\u0000-\u001f]/.test(name)) throw new CraftError('CRAFT_BAD_REQUEST', `a ${what} is 1 to ${RULER_NAME_LENGTH_MAX} characters without control characters: ${JSON.stringify(name)}`);
  return name;
}

/** Groups by namespace, each as its YAML says (Mimir's listing shape). */
function byNamespace(groups: ManagedGroup[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const g of groups) (out[g.namespace] ??= []).push(parseYamlText(g.yaml) as unknown);
  return out;
}

/** Answers a request under RULER_PREFIX; `body` is the raw request body (POST). */
export async function handleRulerApi(host: RulerHost, method: string, path: string, body: string, tenant: string | undefined): Promise<ApiAnswer> {
  try {
    const parts = path.slice(RULER_PREFIX.length).split('/').filter((p) => p !== '');
    if (parts.length > 2) return jsonAnswer(404, { error: `no route ${method} ${path}` });
    const namespace = parts[0] === undefined ? undefined : nameOf(parts[0], 'namespace');
    const groupName = parts[1] === undefined ? undefined : nameOf(parts[1], 'group name');
    const mine = host.rules.of(tenant);
    const inNamespace = mine.filter((g) => g.namespace === namespace);
    if (method === 'GET') {
      if (namespace === undefined) return mine.length === 0 ? jsonAnswer(404, { error: 'no rule groups found' }) : yamlAnswer(byNamespace(mine));
      if (groupName === undefined) return inNamespace.length === 0 ? jsonAnswer(404, { error: `no rule groups in namespace ${JSON.stringify(namespace)}` }) : yamlAnswer(byNamespace(inNamespace));
      const group = inNamespace.find((g) => g.name === groupName);
      return group === undefined ? jsonAnswer(404, { error: `no rule group ${JSON.stringify(groupName)} in namespace ${JSON.stringify(namespace)}` }) : yamlAnswer(parseYamlText(group.yaml));
    }
    if (method === 'POST' && namespace !== undefined && groupName === undefined) {
      const refusal = host.refusal();
      if (refusal !== undefined) return jsonAnswer(409, { error: refusal });
      if (body.trim() === '') throw new CraftError('CRAFT_BAD_REQUEST', 'the body must be one rule group in YAML (name, interval?, rules)');
      const parsed = parseRuleGroup(body, `rule group in namespace ${namespace}`);
      const recording = parsed.rules.find(isRecordingRule);
      if (recording !== undefined) throw new CraftError('CRAFT_BAD_REQUEST', `rule group ${JSON.stringify(parsed.name)}: recording rule ${JSON.stringify(recording.record)} — this API takes alerting rules; recording rules are the query actor's rule files (query.cache ruleFiles, docs/query.md)`);
      const group: ManagedGroup = { ...(tenant === undefined ? {} : { tenant }), namespace, name: parsed.name, yaml: body };
      const replaces = mine.some((g) => g.namespace === namespace && g.name === parsed.name);
      if (!replaces && mine.length >= RULER_GROUPS_PER_TENANT_MAX) throw new CraftError('CRAFT_BAD_REQUEST', `limit reached: at most ${RULER_GROUPS_PER_TENANT_MAX} rule groups per tenant (RULER_GROUPS_PER_TENANT_MAX)`);
      await host.apply({ put: group });
      return ACCEPTED;
    }
    if (method === 'DELETE' && namespace !== undefined) {
      const gone = groupName === undefined ? inNamespace : inNamespace.filter((g) => g.name === groupName);
      if (gone.length === 0) return jsonAnswer(404, { error: groupName === undefined ? `no rule groups in namespace ${JSON.stringify(namespace)}` : `no rule group ${JSON.stringify(groupName)} in namespace ${JSON.stringify(namespace)}` });
      await host.apply({ delete: gone });
      return ACCEPTED;
    }
    return jsonAnswer(405, { error: `${method} ${path}: the ruler API takes GET, POST /{namespace} and DELETE /{namespace}[/{group}]` });
  } catch (error) {
    if (error instanceof CraftError && (error.code === 'CRAFT_BAD_REQUEST' || error.code === 'CRAFT_CONFIG_INVALID')) return jsonAnswer(400, { error: error.message });
    throw error;
  }
}
