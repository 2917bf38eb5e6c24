/**
 * Consumer groups a scenario runs beside storage (`consumers:` and `consumer:` steps): members
 * (core/queue/member.ts) that consume every queue message, count this run's samples in what
 * they got (each delivery once, however often it came), and commit. Each change of membership
 * is timed until the group is stable again — for a crash, from the coordinator expiring the
 * member (its detection is timed separately) — for the `rebalance` and `groupConsumed`
 * expectations.
 */
import type { Bus } from '../../core/nats/bus.js';
import { GroupMember, groupSettled } from '../../core/queue/member.js';
import { QueueClient, type FetchedDelivery } from '../../core/queue/protocol.js';
import { decodeQueueMessage } from '../../core/queue/message.js';
import type { GroupDescription } from '../../core/slots/queue.js';
import { sleep } from '../../core/clock.js';

export interface Rebalance {
  group: string;
  cause: 'join' | 'crash' | 'leave';
  member: string;
  /** Crash: from the last heartbeat to the coordinator expiring the member. */
  detectionMs?: number;
  /** From the change (join, leave, expiry) to the group stable again. */
  rebalanceMs: number;
}

interface Group {
  members: GroupMember[];
  loops: Promise<void>[];
  /** `epoch:partition:offset` of every delivery seen. */
  seen: Set<string>;
  samples: number;
  next: number;
}

const textDecoder = new TextDecoder();

export class ScenarioConsumers {
  private readonly groups = new Map<string, Group>();
  private readonly queue: QueueClient;
  readonly rebalances: Rebalance[] = [];
  private running = true;

  constructor(
    private readonly bus: Bus,
    private readonly runId: string,
  ) {
    this.queue = new QueueClient(bus);
  }

  /** Samples of this run the group consumed (each delivery counted once). */
  consumed(group: string): number | undefined {
    return this.groups.get(group)?.samples;
  }

  private async state(group: string): Promise<GroupDescription | undefined> {
    return (await this.info(group)).state;
  }

  private async info(group: string): Promise<{ state: GroupDescription | undefined; partitions: number }> {
    const info = await this.queue.info();
    return { state: info.groupStates.find((g) => g.group === group), partitions: info.partitions };
  }

  /** Waits until the group is stable with exactly its live members, every partition owned; returns when (performance.now()). */
  private async stable(group: string, timeoutMs = 60_000): Promise<number> {
    const live = this.live(group);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const { state: s, partitions } = await this.info(group);
      if (groupSettled(s, live, partitions)) return performance.now();
      if (performance.now() > deadline) throw new Error(`group ${group} not stable after ${timeoutMs} ms: ${JSON.stringify(s)}`);
      await sleep(5);
    }
  }

  private live(group: string): string[] {
    return (this.groups.get(group)?.members ?? []).filter((m) => !m.stopped).map((m) => m.options.member).sort();
  }

  private consume(group: Group, member: GroupMember): Promise<void> {
    return (async () => {
      while (this.running && !member.stopped) {
        let deliveries: FetchedDelivery[];
        try {
          deliveries = await member.poll({ waitMs: 200 });
        } catch {
          if (!member.stopped) await sleep(100);
          continue;
        }
        for (const d of deliveries) {
          const key = `${d.epoch}:${d.partition}:${d.offset}`;
          if (group.seen.has(key)) continue;
          group.seen.add(key);
          for (const batch of decodeQueueMessage(textDecoder.decode(d.payload))) {
            for (const sample of batch.samples) if (sample[0].run === this.runId) group.samples += 1;
          }
        }
        await member.commit(deliveries).catch(() => false);
      }
    })();
  }

  /** Starts a group of `members` consumers (or adds them), waits until it is stable. */
  async start(groupName: string, members: number): Promise<string> {
    let group = this.groups.get(groupName);
    if (group === undefined) this.groups.set(groupName, (group = { members: [], loops: [], seen: new Set(), samples: 0, next: 0 }));
    for (let i = 0; i < members; i++) await this.join(groupName, false);
    await this.stable(groupName);
    return `${this.live(groupName).length} members consuming`;
  }

  /** A member joins; timed until stable. */
  async join(groupName: string, timed = true): Promise<string> {
    const group = this.groups.get(groupName);
    if (group === undefined) throw new Error(`no consumer group ${groupName} started (a consumers: step first)`);
    const member = new GroupMember(this.bus, { group: groupName, member: `${groupName}-${group.next++}` });
    const started = performance.now();
    await member.start();
    group.members.push(member);
    group.loops.push(this.consume(group, member));
    if (!timed) return member.options.member;
    const rebalanceMs = (await this.stable(groupName)) - started;
    this.rebalances.push({ group: groupName, cause: 'join', member: member.options.member, rebalanceMs });
    return `${member.options.member} joined; stable after ${rebalanceMs.toFixed(1)} ms`;
  }

  /** The oldest live member crashes (stops heartbeating, no leave) or leaves; timed until stable. */
  async remove(groupName: string, how: 'crash' | 'leave'): Promise<string> {
    const member = this.groups.get(groupName)?.members.find((m) => !m.stopped);
    if (member === undefined) throw new Error(`consumer group ${groupName} has no live member`);
    const id = member.options.member;
    const started = performance.now();
    await member.stop({ leave: how === 'leave' });
    const deadline = performance.now() + 120_000;
    for (;;) {
      const s = await this.state(groupName);
      if (s === undefined || !s.members.includes(id)) break;
      if (performance.now() > deadline) throw new Error(`${id} was never expired`);
      await sleep(5);
    }
    const gone = performance.now();
    const rebalanceMs = (await this.stable(groupName)) - gone;
    this.rebalances.push({ group: groupName, cause: how, member: id, ...(how === 'crash' ? { detectionMs: gone - started } : {}), rebalanceMs });
    return how === 'crash' ? `${id} crashed; expired after ${(gone - started).toFixed(0)} ms, stable ${rebalanceMs.toFixed(1)} ms later` : `${id} left; stable after ${rebalanceMs.toFixed(1)} ms`;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const group of this.groups.values()) {
      for (const m of group.members) await m.stop({ leave: true }).catch(() => undefined);
      await Promise.all(group.loops);
    }
  }
}
