/**
 * Rebalance times of `queue.consumer-groups` (Craft #2 phase 2), for `craft bench queue`: a
 * platform of the control and queue actors in this process, on an embedded nats-server,
 * 12 partitions, `GroupMember` clients over NATS (idle: no backlog to finish first).
 *
 * - **join**: from a new member's `start()` to the group stable again (every partition owned
 *   by its target owner, the new member included), 3 members before it.
 * - **death**: a member of 4 stops heartbeating; *detection* is from then to the coordinator
 *   expiring it (its session timeout, checked every 100 ms); *reassignment* is from the expiry
 *   to the group stable again without it.
 *
 * Times are read by polling `craft.queue.info` every 2 ms, so they carry up to ~3 ms of that.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform } from '../../actors/platform.js';
import { makeConfig } from '../../core/config/schema.js';
import { Bus } from '../../core/nats/bus.js';
import { GroupMember, groupSettled } from '../../core/queue/member.js';
import { QueueClient } from '../../core/queue/protocol.js';
import type { GroupDescription } from '../../core/slots/queue.js';
import { percentiles, type Percentiles } from './storage.js';

export const REBALANCE_PARTITIONS = 12;
export const REBALANCE_SESSION_MS = 2_000;
export const REBALANCE_HEARTBEAT_MS = 500;

export interface RebalanceResult {
  coordinator: string;
  assignor: string;
  join: Percentiles;
  detection: Percentiles;
  reassignment: Percentiles;
}

const settled = (state: GroupDescription | undefined, members: string[]): boolean => groupSettled(state, members, REBALANCE_PARTITIONS);

async function until(queue: QueueClient, group: string, check: (state: GroupDescription | undefined) => boolean, timeoutMs = 30_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const state = (await queue.info()).groupStates.find((g) => g.group === group);
    if (check(state)) return performance.now();
    if (performance.now() > deadline) throw new Error(`group ${group} did not reach the expected state: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export async function rebalanceTimes(coordinator: string, assignor: string, rounds: { joins: number; deaths: number }, progress: (s: string) => void): Promise<RebalanceResult> {
  const dir = mkdtempSync(join(tmpdir(), 'craft-bench-rebalance-'));
  const platform = await Platform.start(
    makeConfig({
      dataDir: dir,
      actors: ['control', 'queue'],
      queue: { partitions: REBALANCE_PARTITIONS },
      plugins: { 'queue.log': 'craft0.memory-queue', 'queue.groups': { id: coordinator, options: { assignor, sessionTimeoutMs: REBALANCE_SESSION_MS, heartbeatIntervalMs: REBALANCE_HEARTBEAT_MS } } },
    }),
  );
  const bus = await Bus.connect(platform.natsUrl, 'bench-rebalance', platform.natsIdentity('admin'));
  const queue = new QueueClient(bus);
  const members: GroupMember[] = [];
  const group = `bench-${assignor}`;
  const add = async (id: string): Promise<GroupMember> => {
    const m = new GroupMember(bus, { group, member: id });
    await m.start();
    members.push(m);
    return m;
  };
  const ids = (): string[] => members.filter((m) => !m.stopped).map((m) => m.options.member);
  try {
    for (const id of ['m0', 'm1', 'm2']) await add(id);
    await until(queue, group, (s) => settled(s, ids()));
    const joins: number[] = [];
    for (let i = 0; i < rounds.joins; i++) {
      progress(`rebalance (${coordinator}, ${assignor}): join ${i + 1}/${rounds.joins}`);
      const started = performance.now();
      const joiner = await add(`j${i}`);
      joins.push((await until(queue, group, (s) => settled(s, ids()))) - started);
      await joiner.stop({ leave: true });
      await until(queue, group, (s) => settled(s, ids()));
    }
    await add('m3');
    await until(queue, group, (s) => settled(s, ids()));
    const detection: number[] = [];
    const reassignment: number[] = [];
    for (let i = 0; i < rounds.deaths; i++) {
      progress(`rebalance (${coordinator}, ${assignor}): death ${i + 1}/${rounds.deaths}`);
      const victim = members.filter((m) => !m.stopped)[i % 4]!;
      const started = performance.now();
      await victim.stop({ leave: false });
      const expired = await until(queue, group, (s) => s !== undefined && !s.members.includes(victim.options.member), REBALANCE_SESSION_MS * 5);
      detection.push(expired - started);
      reassignment.push((await until(queue, group, (s) => settled(s, ids()))) - expired);
      await add(`r${i}`);
      await until(queue, group, (s) => settled(s, ids()));
    }
    return { coordinator, assignor, join: percentiles(joins), detection: percentiles(detection), reassignment: percentiles(reassignment) };
  } finally {
    for (const m of members) await m.stop({ leave: false }).catch(() => undefined);
    await bus.close();
    await platform.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
