/**
 * `craft status`: asks every platform process for its supervision tree and prints it.
 */
import type { Bus } from '../core/nats/bus.js';
import { SUBJECTS } from '../core/subjects.js';
import type { ProcessStatus } from '../actors/platform.js';
import type { NodeStatus } from '../core/supervision/child.js';
import type { StorageInfo } from '../core/storage/client.js';

export async function gatherStatus(bus: Bus, waitMs = 500): Promise<ProcessStatus[]> {
  const replies = await bus.scatter<ProcessStatus>(SUBJECTS.sysStatus, {}, waitMs);
  return replies.sort((a, b) => (a.process === 'main' ? -1 : b.process === 'main' ? 1 : a.process.localeCompare(b.process)));
}

function renderNode(node: NodeStatus, prefix: string, last: boolean, lines: string[], root: boolean): void {
  const branch = root ? '' : last ? '└─ ' : '├─ ';
  const parts = [`${node.id}`, `[${node.kind}]`, node.state];
  if (node.restarts > 0) parts.push(`restarts=${node.restarts}`);
  if (node.mailbox !== undefined) parts.push(`mailbox=${node.mailbox.depth}/${node.mailbox.capacity}`);
  if (node.pid !== undefined) parts.push(`pid=${node.pid}`);
  if (node.plugins !== undefined) parts.push(Object.entries(node.plugins).map(([slot, plugin]) => `${slot}=${plugin}`).join(' '));
  if (node.lastError !== undefined && node.state !== 'running') parts.push(`last error: ${node.lastError}`);
  lines.push(prefix + branch + parts.join('  '));
  const children = node.children ?? [];
  children.forEach((child, index) => renderNode(child, root ? prefix : prefix + (last ? '   ' : '│  '), index === children.length - 1, lines, false));
}

export function renderStatus(processes: ProcessStatus[]): string {
  const lines: string[] = [];
  for (const p of processes) {
    const ports = Object.entries(p.ports).map(([k, v]) => `${k}:${v}`).join(' ');
    lines.push(`process ${p.process} (pid ${p.pid})  nats ${p.natsUrl}${ports === '' ? '' : `  ports ${ports}`}`);
    renderNode(p.tree, '  ', true, lines, true);
    lines.push('');
  }
  return lines.join('\n');
}

/** Finds an actor's node in any process tree. */
export function findActor(processes: ProcessStatus[], actorId: string): { process: string; node: NodeStatus } | undefined {
  const search = (node: NodeStatus): NodeStatus | undefined => {
    if (node.id === actorId && node.kind === 'actor') return node;
    for (const child of node.children ?? []) {
      const found = search(child);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  for (const p of processes) {
    const node = search(p.tree);
    if (node !== undefined) return { process: p.process, node };
  }
  return undefined;
}

/** One line about storage: what it holds and how far behind the queue it is (acknowledged → queryable). */
export function renderStorageInfo(info: StorageInfo): string {
  const { stats, lag } = info;
  return [
    `storage ${info.member} (${info.plugin} on ${info.kv}):`,
    `${stats.series} series, ${stats.samples} samples, ${stats.chunks} chunks, ${stats.bytes} bytes (${stats.bytesPerSample.toFixed(2)} B/sample)`,
    `lag now ${lag.currentMs} ms, p50 ${lag.p50Ms} ms, p99 ${lag.p99Ms} ms, max ${lag.maxMs} ms over ${lag.batches} batches`,
  ].join('  ') + '\n';
}
