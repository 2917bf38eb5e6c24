/**
 * `craft bench queue`: what Craft #2's phase 1 sustains, beside raw JetStream from the same
 * machine in the same run. Messages of 100 bytes, one partition, in this process:
 *
 * - **produce, batched**: producers hand the log batches of 1,000 messages (`appendBatch`); the
 *   log's group commit turns everything waiting into one write and one fdatasync.
 * - **produce, unbatched, 1 in flight**: one message, await its acknowledgement, the next —
 *   what a producer that waits for each send gets (an fdatasync per message).
 * - **produce, unbatched, 256 in flight**: single-message appends, 256 outstanding — the group
 *   commit batches them anyway.
 * - **consume**: a group reads everything produced back (`take` of up to 10,000 / 8 MiB).
 * - **end to end**: 2,000 messages/s produced one by one while a group consumes; latency from
 *   the append to the consumer's hands, p50/p99.
 * - **raw JetStream**: the same messages published to a file-backed stream on an embedded
 *   nats-server, unbatched (1 in flight) and with 256 publishes in flight.
 *
 * - **rebalance** (queue-rebalance.ts): phase 2's consumer groups through the queue actor over
 *   NATS — a join, and a member's death (detection, then reassignment), eager (range) beside
 *   cooperative-sticky.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PluginRegistry } from '../../core/plugins/registry.js';
import { createLogger, setLogLevel } from '../../core/log.js';
import { EmbeddedNatsServer } from '../../core/nats/server.js';
import { Bus } from '../../core/nats/bus.js';
import type { QueueLog } from '../../core/slots/queue.js';
import { renderTable } from '../table.js';
import { groupedBarSpec, renderSvg } from '../chart.js';
import { codeVersion, percentiles, storageMachine, type Percentiles } from './storage.js';
import { rebalanceTimes, REBALANCE_HEARTBEAT_MS, REBALANCE_PARTITIONS, REBALANCE_SESSION_MS, type RebalanceResult } from './queue-rebalance.js';

const MESSAGE_BYTES = 100;
const log = createLogger('bench');

export interface QueueBenchOptions {
  /** Seconds each produce measurement runs. */
  seconds: number;
  outDir: string;
  command: string;
}

interface Row {
  target: string;
  mode: string;
  messages: number;
  seconds: number;
  perSecond: number;
  mbPerSecond: number;
}

const message = (): Uint8Array => {
  const bytes = new Uint8Array(MESSAGE_BYTES);
  for (let i = 0; i < MESSAGE_BYTES; i++) bytes[i] = (i * 7) & 0xff;
  return bytes;
};

async function openLog(registry: PluginRegistry, layout: 'segments' | 'file-per-message', dir: string): Promise<QueueLog> {
  const queue = registry.instantiate('queue.log', 'queue.file-log', { partitions: 1, epoch: 1, dataDir: dir, bus: undefined as unknown as Bus, log }, { layout });
  await queue.open();
  return queue;
}

const row = (target: string, mode: string, messages: number, ms: number): Row => ({ target, mode, messages, seconds: ms / 1_000, perSecond: messages / (ms / 1_000), mbPerSecond: (messages * MESSAGE_BYTES) / (ms / 1_000) / 1_048_576 });

/** Runs `step` (which produces some messages and returns how many) until `seconds` pass. */
async function timed(seconds: number, step: () => Promise<number>): Promise<{ messages: number; ms: number }> {
  const started = performance.now();
  let messages = 0;
  while (performance.now() - started < seconds * 1_000) messages += await step();
  return { messages, ms: performance.now() - started };
}

async function fileLog(registry: PluginRegistry, layout: 'segments' | 'file-per-message', seconds: number, progress: (s: string) => void): Promise<{ rows: Row[]; latency?: Percentiles }> {
  const rows: Row[] = [];
  const target = `queue.file-log (${layout})`;
  const payload = message();
  const base = mkdtempSync(join(tmpdir(), `craft-bench-queue-${layout}-`));
  try {
    const dir = (name: string): string => join(base, name);
    if (layout === 'segments') {
      progress(`${target}: batched`);
      const q = await openLog(registry, layout, dir('batched'));
      const batch = Array.from({ length: 1_000 }, () => payload);
      // Four producers, each a batch of 1,000 in flight.
      const r = await timed(seconds, async () => (await Promise.all(Array.from({ length: 4 }, () => q.appendBatch!(0, batch)))).length * 1_000);
      rows.push(row(target, 'batched: 4 producers × 1,000 a batch', r.messages, r.ms));
      progress(`${target}: consume`);
      const reader = await q.reader('bench', 0);
      const started = performance.now();
      let consumed = 0;
      for (;;) {
        const got = reader.take(10_000, 8 * 1_048_576);
        if (got.length === 0) break;
        consumed += got.length;
      }
      rows.push(row(target, 'consume (take 10,000 / 8 MiB)', consumed, performance.now() - started));
      await q.close();
      progress(`${target}: 256 in flight`);
      const q2 = await openLog(registry, layout, dir('inflight'));
      const r2 = await timed(seconds, async () => (await Promise.all(Array.from({ length: 256 }, () => q2.append(0, payload)))).length);
      rows.push(row(target, 'unbatched: 256 in flight', r2.messages, r2.ms));
      await q2.close();
    }
    progress(`${target}: 1 in flight`);
    const q3 = await openLog(registry, layout, dir('single'));
    const r3 = await timed(seconds, async () => {
      await q3.append(0, payload);
      return 1;
    });
    rows.push(row(target, 'unbatched: 1 in flight', r3.messages, r3.ms));
    await q3.close();
    // End to end: 2,000 a second for `seconds`, consumed as they become durable.
    progress(`${target}: end to end`);
    const q4 = await openLog(registry, layout, dir('e2e'));
    // A fresh log: the n-th message sent (from 0) gets offset n + 1.
    const sentAt: number[] = [];
    const latencies: number[] = [];
    const reader = await q4.reader('e2e', 0);
    let stop = false;
    const consumer = (async () => {
      while (!stop || latencies.length < sentAt.length) {
        await reader.waitForData(50);
        const now = performance.now();
        for (const d of reader.take(10_000, 8 * 1_048_576)) latencies.push(now - sentAt[d.offset - 1]!);
        if (stop && latencies.length >= sentAt.length) break;
      }
    })();
    const rate = layout === 'segments' ? 2_000 : 200;
    const started = performance.now();
    let sent = 0;
    const appends: Promise<unknown>[] = [];
    while (performance.now() - started < seconds * 1_000) {
      const due = started + (sent * 1_000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, 20)));
      if (performance.now() < due) continue;
      sentAt.push(performance.now());
      appends.push(q4.append(0, payload));
      sent += 1;
    }
    await Promise.all(appends);
    stop = true;
    await consumer;
    await q4.close();
    return { rows, latency: { ...percentiles(latencies) } };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function rawJetStream(seconds: number, progress: (s: string) => void): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'craft-bench-queue-js-'));
  const server = new EmbeddedNatsServer({ dataDir: dir });
  await server.start();
  const bus = await Bus.connect(server.url, 'bench-queue');
  try {
    const jsm = await bus.jetstreamManager();
    await jsm.streams.add({ name: 'BENCH', subjects: ['bench.q'] });
    const js = bus.jetstream();
    const payload = message();
    progress('raw JetStream: 1 in flight');
    const single = await timed(seconds, async () => {
      await js.publish('bench.q', payload);
      return 1;
    });
    progress('raw JetStream: 256 in flight');
    const many = await timed(seconds, async () => (await Promise.all(Array.from({ length: 256 }, () => js.publish('bench.q', payload)))).length);
    return [row('raw JetStream publish (file stream)', 'unbatched: 1 in flight', single.messages, single.ms), row('raw JetStream publish (file stream)', 'unbatched: 256 in flight', many.messages, many.ms)];
  } finally {
    await bus.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchQueue(options: QueueBenchOptions): Promise<void> {
  setLogLevel(process.env.CRAFT_LOG === undefined ? 'warn' : (process.env.CRAFT_LOG as 'info'));
  const { registry } = await PluginRegistry.load();
  const machine = storageMachine();
  const code = codeVersion();
  process.stdout.write(`craft bench queue — ${MESSAGE_BYTES}-byte messages, ${options.seconds} s a measurement\nmachine: ${machine}\ncode: ${code}\ncommand: ${options.command}\n\n`);
  const progress = (step: string): void => void process.stdout.write(`  ${step}\n`);
  const segments = await fileLog(registry, 'segments', options.seconds, progress);
  const baseline = await fileLog(registry, 'file-per-message', options.seconds, progress);
  const jetstream = await rawJetStream(options.seconds, progress);
  const rebalance: RebalanceResult[] = [];
  for (const [coordinator, assignor] of [['queue.consumer-groups', 'range'], ['queue.consumer-groups', 'cooperative-sticky'], ['queue.kv-leases', 'cooperative-sticky']] as const) {
    rebalance.push(await rebalanceTimes(coordinator, assignor, { joins: 30, deaths: 10 }, progress));
  }
  const rows = [...segments.rows, ...baseline.rows, ...jetstream];
  const n0 = (n: number): string => Math.round(n).toLocaleString('en-US');
  const table = renderTable(['target', 'mode', 'messages', 'seconds', 'messages/s', 'MB/s'], rows.map((r) => [r.target, r.mode, n0(r.messages), r.seconds.toFixed(1), n0(r.perSecond), r.mbPerSecond.toFixed(1)]));
  const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const latencyTable = renderTable(['target', 'rate', 'messages', 'p50 ms', 'p99 ms', 'max ms'], [
    ['queue.file-log (segments)', '2,000/s', segments.latency!.runs, ms(segments.latency!.p50Ms), ms(segments.latency!.p99Ms), ms(segments.latency!.maxMs)],
    ['queue.file-log (file-per-message)', '200/s', baseline.latency!.runs, ms(baseline.latency!.p50Ms), ms(baseline.latency!.p99Ms), ms(baseline.latency!.maxMs)],
  ]);
  const batched = segments.rows.find((r) => r.mode.startsWith('batched'))!;
  const rebalanceTable = renderTable(['coordinator', 'assignor', 'join: p50 ms', 'p99 ms', 'max ms', 'death: detection p50 ms', 'max ms', 'reassignment p50 ms', 'p99 ms', 'max ms'], rebalance.map((r) => [r.coordinator, r.assignor, ms(r.join.p50Ms), ms(r.join.p99Ms), ms(r.join.maxMs), ms(r.detection.p50Ms), ms(r.detection.maxMs), ms(r.reassignment.p50Ms), ms(r.reassignment.p99Ms), ms(r.reassignment.maxMs)]));
  const worstJoin = Math.max(...rebalance.map((r) => r.join.p99Ms));
  const worstReassign = Math.max(...rebalance.map((r) => r.reassignment.p99Ms));
  const worstDetection = Math.max(...rebalance.map((r) => r.detection.maxMs));
  const text = [
    '# Queue benchmark (Craft #2)',
    '',
    `Produced by \`${options.command}\` on ${new Date().toISOString().slice(0, 10)} (after \`npx tsc -p .\`).`,
    '',
    `Machine: ${machine}. Code: ${code}.`,
    '',
    'What it measures (cli/bench/queue.ts): 100-byte messages, one partition, in this process; the file log on the machine\'s disk with an fdatasync per group commit; raw JetStream publishing to a file-backed stream of an embedded nats-server in the same run. Produce measurements run for the time given; "consume" reads back everything the batched run produced; end to end appends one message at a time at a fixed rate while a group consumes, and measures append → in the consumer\'s hands.',
    '',
    '```',
    table,
    '```',
    '',
    'Durability differs: the file log acknowledges an append after its group commit\'s `fdatasync`; JetStream acknowledges once the message is written to its file store and syncs that to disk on its own schedule (nats-server 2.9: every 2 minutes by default). The batched row is the group commit at work: 1,000-message batches from four producers share each fdatasync; one message at a time, every append waits for its own.',
    '',
    '```',
    latencyTable,
    '```',
    '',
    '## Rebalances (phases 2 and 3: consumer groups through the queue actor)',
    '',
    `${REBALANCE_PARTITIONS} partitions; \`GroupMember\` clients over NATS against the queue actor's \`queue.consumer-groups\` (phase 2, groups in the coordinator's memory) and \`queue.kv-leases\` (phase 3, leases and assignment in a JetStream KV bucket, each change written with a revision check before it is answered) (session timeout ${REBALANCE_SESSION_MS} ms, heartbeat ${REBALANCE_HEARTBEAT_MS} ms; sessions checked every 100 ms); members idle (no backlog to commit before giving a partition up). Join: 30 times, from the new member's start to the group stable (every partition owned by its target owner) with 4 members. Death: 10 times, one of 4 members stops heartbeating; detection is until the coordinator expires it, reassignment from then until stable. Read by polling \`craft.queue.info\` every 2 ms.`,
    '',
    '```',
    rebalanceTable,
    '```',
    '',
    'A change of membership is announced on `craft.queue.groups.<group>` and every member heartbeats at once, so a rebalance costs a few NATS round trips, not a heartbeat interval. Eager (range) revokes every partition and grants them once each owner released them; cooperative-sticky moves only the partitions that change owner, and the others are consumed throughout. Phase 3 pays a KV write (one server here; a replicated write in a cluster) for each lease and each new assignment.',
    '',
    '## Against the targets',
    '',
    `- ≥ 1,000,000 messages/s produced to the file log with batching: **${n0(batched.perSecond)}/s** — ${batched.perSecond >= 1_000_000 ? 'met' : `${((1 - batched.perSecond / 1_000_000) * 100).toFixed(0)} % short`}.`,
    `- Rebalance after a join < 100 ms: p99 **${ms(worstJoin)} ms** (worst assignor) — ${worstJoin < 100 ? 'met' : 'not met'}.`,
    `- A dead member detected within its session timeout (${REBALANCE_SESSION_MS} ms) and its partitions reassigned within 100 ms after: detection at most **${ms(worstDetection)} ms** (${worstDetection <= REBALANCE_SESSION_MS ? 'within' : `${ms(worstDetection - REBALANCE_SESSION_MS)} ms past`} the timeout, counted from the member stopping; its last heartbeat was up to one interval earlier, and sessions are checked every 100 ms), reassignment p99 **${ms(worstReassign)} ms** — ${worstReassign < 100 ? 'met' : 'not met'}.`,
    '',
    '![throughput](queue.svg)',
    '',
  ].join('\n');
  const dir = resolve(options.outDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'queue.md'), text);
  writeFileSync(join(dir, 'queue.json'), JSON.stringify({ command: options.command, machine, code, rows, latency: { segments: segments.latency, fileperMessage: baseline.latency }, rebalance }, null, 2) + '\n');
  writeFileSync(join(dir, 'queue.svg'), await renderSvg(groupedBarSpec('Messages produced / consumed per second (100 bytes)', rows.map((r) => ({ category: r.mode, series: r.target, value: r.perSecond })), 'messages/s', true)));
  process.stdout.write(`\n${table}\n\n${latencyTable}\n\n${rebalanceTable}\n\nresults: ${join(dir, 'queue.md')}\n`);
}
