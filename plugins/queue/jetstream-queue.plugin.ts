/**
 * The platform's durable queue: a JetStream stream per epoch, one subject per partition,
 * and a durable pull consumer per (group, partition) with cumulative acks ("ack all"), so
 * a commit of offset N commits everything before it, as in Kafka.
 *
 * Offsets are stream sequences: strictly increasing within a partition, not contiguous.
 * A publish is acknowledged once the server has stored it (written to its file store; a
 * kill -9 of any process keeps it; see docs/architecture.md on fsync). Committed messages
 * are purged, so the stream holds what some group still needs.
 */
import { AckPolicy, DeliverPolicy, DiscardPolicy, type ConsumerMessages, type JsMsg, type JetStreamManager } from '@nats-io/jetstream';
import { randomUUID } from 'node:crypto';
import { nanos } from '@nats-io/transport-node';
import { z } from 'zod';
import { CraftError } from '../../core/errors.js';
import { RETRY_AFTER_S } from '../../core/defaults.js';
import { definePlugin } from '../../core/plugins/define.js';
import { unavailable } from './shared/unavailable.js';
import { waitForWake } from '../../core/queue/wait.js';
import { queueLogSubject, queueStream } from '../../core/subjects.js';
import type { Delivery, PartitionReader, QueueLog, QueueLogContext, QueueLogInfo } from '../../core/slots/queue.js';

/** Deliveries a reader buffers ahead of `take`; the consumer stops pulling beyond it (or beyond the bytes). */
const READER_BUFFER_MESSAGES_MAX = 1_024;
const READER_BUFFER_BYTES_MAX = 32 * 1024 * 1024;
/**
 * Messages one pull asks for. A group-commit message can be ~1 MB: pulls of 256 messages asked
 * for up to 256 MB a partition from a backlog, and the JetStream API calls sharing the connection
 * (consumer info, add, acks) timed out behind them, crashing the queue actor again and again.
 * (A byte bound instead — the client takes one or the other — stalled: a pull whose remaining
 * bytes could not hold the next message sat until it expired.)
 */
const CONSUME_BATCH_MESSAGES = 16;
const ACK_WAIT_MS = 30_000;
/** A relayed append: attempts of this long, this many (nats.js retries timeouts and no-responders, backing off). */
const PUBLISH_ATTEMPT_MS = 1_000;
/** A pull's life and its heartbeat (nats.js re-pulls after two missed heartbeats). */
const PULL_EXPIRES_MS = 5_000;
const PULL_HEARTBEAT_MS = 1_000;
/** A reader whose pulls ended on their own is opened again after this long. */
const READER_REOPEN_MS = 1_000;
const PUBLISH_ATTEMPTS = 5;
/** Retained bytes per epoch stream before appends are refused (the server answers, we say 503). */
const STREAM_BYTES_MAX_DEFAULT = 8 * 1024 ** 3;

const consumerName = (group: string, partition: number): string => `${group.replace(/[^A-Za-z0-9_-]/g, '_')}_p${partition}`;

class JetStreamReader implements PartitionReader {
  private buffer: JsMsg[] = [];
  private bufferedBytes = 0;
  /** Delivered, not yet committed, by sequence. */
  private readonly delivered = new Map<number, JsMsg>();
  private committedOffset = 0;
  private messages: ConsumerMessages | undefined;
  private waiters = new Set<() => void>();
  private spaceWaiter: (() => void) | undefined;
  private closed = false;
  private pumping: Promise<void> = Promise.resolve();
  /** Bumped on every restart, so a pull loop of an earlier session never feeds the buffer. */
  private session = 0;

  constructor(
    private readonly log: JetStreamQueueLog,
    private readonly group: string,
    private readonly partition: number,
  ) {}

  private get key(): string {
    return `${this.group}/${this.partition}`;
  }

  private restarting: Promise<void> = Promise.resolve();
  /** Deliveries found missing (each made the reader start again from its commit). */
  gaps = 0;

  /**
   * Creates the durable consumer just after the last committed message (replacing one a
   * previous reader left, whose pending messages would otherwise wait out their ack wait) and
   * starts pulling. One at a time per reader; JetStream's failures are answered as CRAFT_TIMEOUT
   * (the reader is opened again on the next fetch), never a crash.
   */
  restart(): Promise<void> {
    const run = this.restarting.then(() => this.recreate(), () => this.recreate());
    this.restarting = run.catch(() => undefined);
    return run;
  }

  private async recreate(): Promise<void> {
    if (this.closed) return;
    await this.stopPulling();
    this.buffer = [];
    this.bufferedBytes = 0;
    this.delivered.clear();
    const jsm = await this.log.jsm();
    const stream = this.log.stream;
    const name = consumerName(this.group, this.partition);
    // The floor a reader of this log saw before (kept by the log: a recreation that failed after
    // deleting the consumer must not start the group over from the stream's first message).
    let ackFloor = this.log.committedFloor.get(this.key) ?? 0;
    try {
      const info = await jsm.consumers.info(stream, name);
      ackFloor = Math.max(ackFloor, info.ack_floor.stream_seq);
      this.log.committedFloor.set(this.key, ackFloor);
      await jsm.consumers.delete(stream, name);
    } catch (error) {
      // No consumer yet: the group starts at the beginning (or at the floor it had).
      if (!/not found/i.test(error instanceof Error ? error.message : String(error))) throw unavailable(`opening the reader of ${name}`, error);
    }
    this.committedOffset = Math.max(this.committedOffset, ackFloor);
    if (this.closed) return;
    try {
      await this.createConsumer(jsm, stream, name);
    } catch (error) {
      throw unavailable(`creating the consumer ${name}`, error);
    }
  }

  private async createConsumer(jsm: JetStreamManager, stream: string, name: string): Promise<void> {
    await jsm.consumers.add(stream, {
      durable_name: name,
      ack_policy: AckPolicy.All,
      ack_wait: nanos(ACK_WAIT_MS),
      max_ack_pending: 65_536,
      filter_subject: queueLogSubject(this.log.epoch, this.partition),
      ...(this.committedOffset > 0
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.committedOffset + 1 }
        : { deliver_policy: DeliverPolicy.All }),
    });
    const consumer = await this.log.bus.jetstream().consumers.get(stream, name);
    // Short pulls with heartbeats: a pull whose consumer leader died (a cluster node lost) is
    // noticed and sent again within seconds, not after the client's 30 s default.
    const messages = await consumer.consume({ max_messages: CONSUME_BATCH_MESSAGES, expires: PULL_EXPIRES_MS, idle_heartbeat: PULL_HEARTBEAT_MS });
    this.messages = messages;
    const session = ++this.session;
    this.pumping = (async () => {
      let lastDelivery = 0;
      try {
        for await (const message of messages) {
          if (session !== this.session) break;
          // Deliveries of one consumer are numbered without gaps. A gap is a message lost on its
          // way (a consumer leader died while delivering it): acknowledging anything after it
          // ("ack all") would acknowledge it unseen, so the reader starts again from its commit.
          const delivery = message.info.deliverySequence;
          if (lastDelivery > 0 && delivery !== lastDelivery + 1) {
            this.log.context.log.warn('queue reader missed a delivery; reopening it at its committed offset', { group: this.group, partition: this.partition, expected: lastDelivery + 1, got: delivery });
            this.gaps += 1;
            break;
          }
          lastDelivery = delivery;
          this.buffer.push(message);
          this.bufferedBytes += message.data.length;
          this.wake();
          if (this.full()) await new Promise<void>((resolve) => (this.spaceWaiter = resolve));
          if (this.closed) break;
        }
      } catch (error) {
        this.log.context.log.warn('queue reader stopped', { group: this.group, partition: this.partition, error });
      }
      // Ended without being stopped (the connection or the consumer went away): open it again.
      if (session === this.session && !this.closed) {
        setTimeout(() => {
          if (session === this.session && !this.closed) this.restart().catch((error: unknown) => this.log.context.log.warn('reopening a queue reader failed; the next fetch tries again', { group: this.group, partition: this.partition, error: String(error) }));
        }, READER_REOPEN_MS).unref();
      }
    })();
  }

  private async stopPulling(): Promise<void> {
    const messages = this.messages;
    this.messages = undefined;
    if (messages !== undefined) {
      this.session += 1;
      messages.stop();
      this.spaceWaiter?.();
      // A consume() whose connection went through a server restart may not end promptly;
      // the session check above keeps a late loop from feeding the new buffer.
      await Promise.race([this.pumping, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
    }
  }

  private wake(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  take(maxMessages: number, maxBytes: number): Delivery[] {
    const out: Delivery[] = [];
    let bytes = 0;
    let taken = 0;
    while (taken < this.buffer.length && out.length < maxMessages) {
      const message = this.buffer[taken]!;
      if (bytes + message.data.length > maxBytes) break;
      taken += 1;
      if (message.seq <= this.committedOffset) continue;
      this.delivered.set(message.seq, message);
      out.push({ partition: this.partition, offset: message.seq, payload: message.data });
      bytes += message.data.length;
    }
    for (let i = 0; i < taken; i++) this.bufferedBytes -= this.buffer[i]!.data.length;
    this.buffer.splice(0, taken);
    if (!this.full()) {
      const release = this.spaceWaiter;
      this.spaceWaiter = undefined;
      release?.();
    }
    return out;
  }

  private full(): boolean {
    return this.buffer.length >= READER_BUFFER_MESSAGES_MAX || this.bufferedBytes >= READER_BUFFER_BYTES_MAX;
  }

  waitForData(waitMs: number): Promise<void> {
    if (this.buffer.length > 0 || this.closed) return Promise.resolve();
    return waitForWake(this.waiters, waitMs);
  }

  async commit(offset: number): Promise<void> {
    if (offset <= this.committedOffset) return;
    const message = this.delivered.get(offset);
    if (message === undefined) return; // delivered before a rewind: it comes again and is committed then
    try {
      await message.ackAck();
    } catch (error) {
      // The server is restarting or unreachable: the commit did not happen; the member retries.
      throw new CraftError('CRAFT_TIMEOUT', `commit of offset ${offset} not confirmed: ${(error as Error).message}`, { cause: error, details: { retryAfterS: RETRY_AFTER_S } });
    }
    this.committedOffset = offset;
    this.log.committedFloor.set(this.key, Math.max(this.log.committedFloor.get(this.key) ?? 0, offset));
    for (const seq of this.delivered.keys()) if (seq <= offset) this.delivered.delete(seq);
  }

  /**
   * Delivers again, in order, what was taken and not committed — from the reader's own memory:
   * the messages stay pending in the durable consumer until they are acknowledged, so nothing
   * is asked of JetStream. (Recreating the consumer instead cost a replicated consumer creation
   * per partition on every rebalance — up to seconds on a 3-node cluster during a failover, where
   * the timeouts crashed the queue actor again and again.)
   */
  async rewind(): Promise<void> {
    if (this.delivered.size === 0) return;
    const again = [...this.delivered.values()].filter((m) => m.seq > this.committedOffset).sort((a, b) => a.seq - b.seq);
    this.delivered.clear();
    this.buffer = [...again, ...this.buffer];
    for (const m of again) this.bufferedBytes += m.data.length;
    if (again.length > 0) this.wake();
  }

  committed(): number {
    return this.committedOffset;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.restarting; // a recreate in flight ends before its successor's reader starts
    await this.stopPulling();
    this.wake();
  }
}

class JetStreamQueueLog implements QueueLog {
  readonly stream: string;
  readonly epoch: number;
  private readonly lastOffsets: number[];
  /** One reader per (group, partition), kept as the promise of its opening: concurrent first fetches share it. */
  private readonly readers = new Map<string, Promise<JetStreamReader>>();
  /** `group/partition` → the highest offset known committed (a reader's commits and its consumer's ack floor). */
  readonly committedFloor = new Map<string, number>();
  private closed = false;
  private appended = 0;
  private sealed = false;
  private manager: JetStreamManager | undefined;

  constructor(
    readonly context: QueueLogContext,
    private readonly bytesMax: number,
  ) {
    this.epoch = context.epoch;
    this.stream = queueStream(context.epoch);
    this.lastOffsets = new Array<number>(context.partitions).fill(0);
  }

  get bus(): QueueLogContext['bus'] {
    return this.context.bus;
  }

  async jsm(): Promise<JetStreamManager> {
    this.manager ??= await this.context.bus.jetstreamManager();
    return this.manager;
  }

  async open(): Promise<void> {
    const jsm = await this.jsm();
    const subjects = [`craft.queue.log.${this.epoch}.*`];
    try {
      const info = await jsm.streams.info(this.stream);
      this.sealed = info.config.sealed === true;
    } catch {
      await jsm.streams.add({ name: this.stream, subjects, max_bytes: this.bytesMax, discard: DiscardPolicy.New, num_replicas: this.context.replicas ?? 1 });
    }
    await this.readLastOffsets();
  }

  async append(partition: number, payload: Uint8Array): Promise<number> {
    if (partition < 0 || partition >= this.lastOffsets.length) throw new CraftError('CRAFT_BAD_REQUEST', `partition ${partition} does not exist`);
    let ack;
    try {
      // One message id across attempts: a publish whose answer was lost in a leader's failover is
      // sent again and stored once (JetStream's duplicate window).
      ack = await this.context.bus.jetstream().publish(queueLogSubject(this.epoch, partition), payload, { msgID: randomUUID(), timeout: PUBLISH_ATTEMPT_MS, retries: PUBLISH_ATTEMPTS });
    } catch (error) {
      const message = (error as Error).message;
      if (/maximum bytes|resource limits|insufficient/i.test(message)) {
        throw new CraftError('CRAFT_OVERLOADED', `queue stream ${this.stream} is full: ${message}`, { details: { retryAfterS: RETRY_AFTER_S } });
      }
      throw new CraftError('CRAFT_TIMEOUT', `JetStream publish failed: ${message}`, { cause: error, details: { retryAfterS: RETRY_AFTER_S } });
    }
    if (ack.seq > this.lastOffsets[partition]!) this.lastOffsets[partition] = ack.seq;
    this.appended += 1;
    return ack.seq;
  }

  lastOffset(partition: number): number {
    return this.lastOffsets[partition] ?? 0;
  }

  directSubject(partition: number): string {
    return queueLogSubject(this.epoch, partition);
  }

  /** Seals the stream (the server refuses new messages) and reads the final last offsets. */
  async seal(): Promise<void> {
    const jsm = await this.jsm();
    // `sealed` (server 2.6.2+) is not in the client's update type; the server takes it.
    await jsm.streams.update(this.stream, { sealed: true } as unknown as Parameters<JetStreamManager['streams']['update']>[1]);
    this.sealed = true;
    await this.readLastOffsets();
  }

  private async readLastOffsets(): Promise<void> {
    const jsm = await this.jsm();
    for (let p = 0; p < this.lastOffsets.length; p++) {
      try {
        const last = await jsm.streams.getMessage(this.stream, { last_by_subj: queueLogSubject(this.epoch, p) });
        this.lastOffsets[p] = Math.max(this.lastOffsets[p]!, last?.seq ?? 0);
      } catch {
        // no message on this partition
      }
    }
  }

  async reader(group: string, partition: number): Promise<PartitionReader> {
    const key = `${group}/${partition}`;
    let reader = this.readers.get(key);
    if (reader === undefined) {
      if (partition < 0 || partition >= this.lastOffsets.length) throw new CraftError('CRAFT_BAD_REQUEST', `partition ${partition} does not exist`);
      if (this.closed) throw new CraftError('CRAFT_OVERLOADED', `queue log of epoch ${this.epoch} is closed`, { details: { retryAfterS: RETRY_AFTER_S } });
      // Two readers of one durable consumer would recreate it under each other (JetStream then
      // refuses: "deliver policy can not be updated", "consumer not found").
      const opening = new JetStreamReader(this, group, partition);
      reader = opening.restart().then(() => opening);
      this.readers.set(key, reader);
      reader.catch(() => this.readers.delete(key));
    }
    return reader;
  }

  async trim(partition: number, offset: number): Promise<void> {
    if (this.sealed) return; // a sealed stream refuses deletes; it is deleted whole once drained
    const jsm = await this.jsm();
    try {
      await jsm.streams.purge(this.stream, { filter: queueLogSubject(this.epoch, partition), seq: offset + 1 });
    } catch (error) {
      // Sealed between the check above and the purge (a swap under load): nothing to trim.
      if (/sealed/i.test((error as Error).message)) {
        this.sealed = true;
        return;
      }
      throw unavailable(`purge of ${this.stream} partition ${partition} through ${offset}`, error);
    }
  }

  async info(): Promise<QueueLogInfo> {
    const jsm = await this.jsm();
    const info = await jsm.streams.info(this.stream, { subjects_filter: `craft.queue.log.${this.epoch}.*` }).catch((error: unknown) => {
      throw unavailable(`info of ${this.stream}`, error);
    });
    const counts = info.state.subjects ?? {};
    return {
      depth: this.lastOffsets.map((_, p) => counts[queueLogSubject(this.epoch, p)] ?? 0),
      appended: this.appended,
    };
  }

  async close(options: { destroy?: boolean } = {}): Promise<void> {
    this.closed = true;
    for (const reader of this.readers.values()) await (await reader.catch(() => undefined))?.close();
    this.readers.clear();
    if (options.destroy === true) {
      const jsm = await this.jsm();
      await jsm.streams.delete(this.stream).catch(() => undefined);
    }
  }
}

export default definePlugin({
  id: 'queue.jetstream',
  craft: 2,
  phase: 3,
  slot: 'queue.log',
  version: '1.0.0',
  summary: 'Platform default: JetStream stream per epoch, durable pull consumers with cumulative acks',
  durable: true,
  options: z.object({ bytesMax: z.number().int().positive().default(STREAM_BYTES_MAX_DEFAULT) }).strict(),
  create: (context, options) => new JetStreamQueueLog(context, options.bytesMax),
});
