/**
 * The routing tree (phase 4), Alertmanager's: each node has matchers, settings its children
 * inherit (receiver, escalation policy, group_by and the three group timings), `continue`, and
 * children. An alert enters at the root (which matches everything); at each node it matched, it
 * goes down the first child that matches — and, when that child says `continue: true`, on to
 * the next matching siblings too; a node none of whose children match takes the alert itself.
 * Each node an alert ends at is one group for it (an alert in two routes is in two groups).
 *
 *   route:
 *     receiver: default
 *     groupBy: [alertname]
 *     routes:
 *       - matchers: ['severity="page"']          Alertmanager's matcher syntax (=, !=, =~, !~)
 *         escalation: page-ops                   an escalation policy by name
 *         groupBy: [alertname, host]
 *         continue: true
 *       - matchers: ['team=~"db|storage"']
 *         receiver: db-team
 *
 * A route's path is Alertmanager's (`{}/{severity="page"}`, a route's matchers sorted), and so are
 * group keys built on it (`{}/{severity="page"}:{alertname="X"}`) and so PagerDuty dedup keys
 * built from them — except that siblings with the same matchers, which share a key in
 * Alertmanager, get their position appended here (`{}/{a="b"}#2`) so their groups stay apart.
 */
import { z } from 'zod';
import { compileMatchers, type LabelMatcher } from '../../../core/model.js';
import { parseSelector } from '../../../core/query/selector.js';
import type { EscalationPolicy, RouteMatch } from '../shared/lifecycle.js';

export interface RouteSpec {
  matchers?: string[];
  receiver?: string;
  escalation?: string;
  groupBy?: string[];
  groupWaitMs?: number;
  groupIntervalMs?: number;
  repeatIntervalMs?: number;
  continue?: boolean;
  routes?: RouteSpec[];
}

/** One matcher as Alertmanager writes it (`severity="page"`, `job=~"api.*"`), or several in braces. */
const matcherText = z.string().refine((text) => {
  try {
    parseMatchers(text);
    return true;
  } catch {
    return false;
  }
}, 'not a matcher such as severity="page" or {team=~"db|storage"}');

export const routeSchema: z.ZodType<RouteSpec> = z.lazy(() =>
  z
    .object({
      matchers: z.array(matcherText).optional(),
      receiver: z.string().min(1).optional(),
      escalation: z.string().min(1).optional(),
      groupBy: z.array(z.string()).optional(),
      groupWaitMs: z.number().int().min(0).optional(),
      groupIntervalMs: z.number().int().positive().optional(),
      repeatIntervalMs: z.number().int().positive().optional(),
      continue: z.boolean().optional(),
      routes: z.array(routeSchema).optional(),
    })
    .strict(),
);

function parseMatchers(text: string): LabelMatcher[] {
  const trimmed = text.trim();
  return parseSelector(trimmed.startsWith('{') ? trimmed : `{${trimmed}}`, { matchersOnly: true });
}

interface Node {
  matches: (labels: Record<string, string>) => boolean;
  match: RouteMatch;
  continue: boolean;
  children: Node[];
}

/** A compiled routing tree. `policies`: the escalation policies by name (a route naming another is refused here). */
export class RoutingTree {
  private readonly root: Node;
  /** Every route, depth first (for listing and for checking receivers). */
  readonly routes: RouteMatch[] = [];

  constructor(spec: RouteSpec, defaults: Omit<RouteMatch, 'keyPrefix' | 'routePath' | 'policy'>, policies: Map<string, EscalationPolicy>) {
    const build = (node: RouteSpec, parent: RouteMatch | undefined, path: string, where: string): Node => {
      const matchers = (node.matchers ?? []).flatMap(parseMatchers);
      const escalation = node.escalation;
      if (escalation !== undefined && !policies.has(escalation)) throw new Error(`${where}: no escalation policy named ${JSON.stringify(escalation)}`);
      const inherited = parent ?? { ...defaults, keyPrefix: '{}', routePath: '{}' };
      const match: RouteMatch = {
        keyPrefix: path,
        routePath: path,
        receiver: node.receiver ?? inherited.receiver,
        groupBy: node.groupBy ?? inherited.groupBy,
        groupWaitMs: node.groupWaitMs ?? inherited.groupWaitMs,
        groupIntervalMs: node.groupIntervalMs ?? inherited.groupIntervalMs,
        repeatIntervalMs: node.repeatIntervalMs ?? inherited.repeatIntervalMs,
      };
      // A route that names a receiver of its own stops inheriting its parent's policy; one that names a policy uses it.
      const policy = escalation !== undefined ? policies.get(escalation) : node.receiver === undefined ? inherited.policy : undefined;
      if (policy !== undefined) match.policy = policy;
      this.routes.push(match);
      const seen = new Map<string, number>();
      const children = (node.routes ?? []).map((child, i) => {
        // Alertmanager sorts a route's matchers (by name, then value, then type) before it writes the key.
        const sorted = (child.matchers ?? []).flatMap(parseMatchers).sort((a, b) => (a.name !== b.name ? (a.name < b.name ? -1 : 1) : a.value !== b.value ? (a.value < b.value ? -1 : 1) : a.op < b.op ? -1 : a.op > b.op ? 1 : 0));
        const own = `{${sorted.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(',')}}`;
        // Siblings with the same matchers would share group keys: the later ones get their position.
        const count = seen.get(own) ?? 0;
        seen.set(own, count + 1);
        return build(child, match, `${path}/${own}${count === 0 ? '' : `#${i}`}`, `${where}.routes[${i}]`);
      });
      return { matches: matchers.length === 0 ? () => true : compileMatchers(matchers), match, continue: node.continue ?? false, children };
    };
    if (spec.matchers !== undefined && spec.matchers.length > 0) throw new Error('route: the root route matches every alert; put matchers on its routes');
    this.root = build(spec, undefined, '{}', 'route');
  }

  /** The routes an alert ends at (at least the root). */
  route(labels: Record<string, string>): RouteMatch[] {
    const walk = (node: Node): RouteMatch[] => {
      if (!node.matches(labels)) return [];
      const out: RouteMatch[] = [];
      for (const child of node.children) {
        const taken = walk(child);
        if (taken.length === 0) continue;
        out.push(...taken);
        if (!child.continue) break;
      }
      return out.length > 0 ? out : [node.match];
    };
    return walk(this.root);
  }
}
