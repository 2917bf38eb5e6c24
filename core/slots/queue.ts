/**
 * Slot `queue.log`: the log behind the queue actor (Craft #2's phases). Offsets are per
 * partition, strictly increasing (not necessarily contiguous). A swap opens a new log in a
 * new epoch: appends go to the new log at once; readers drain the old log first.
 */
import type { Logger } from '../log.js';
import type { Bus } from '../nats/bus.js';

export interface Delivery {
  partition: number;
  offset: number;
  payload: Uint8Array;
}

/** One consumer group's view of one partition. */
export interface PartitionReader {
  /**
   * Deliveries waiting to be taken, without waiting: at most `maxMessages`, and payloads of at
   * most `maxBytes` together — strictly, so that a fetch reply built from several partitions
   * stays under the NATS payload limit (a message never exceeds it: ingestion splits batches).
   */
  take(maxMessages: number, maxBytes: number): Delivery[];
  /** Resolves when deliveries are waiting, or after `waitMs`. */
  waitForData(waitMs: number): Promise<void>;
  /** Commits through `offset` (cumulative); durable when it resolves. */
  commit(offset: number): Promise<void>;
  /** Forgets what was delivered but not committed; it is delivered again (a member restarted). */
  rewind(): Promise<void>;
  /** The committed offset (0 when nothing is committed yet). */
  committed(): number;
  close(): Promise<void>;
}

export interface QueueLogInfo {
  /** Messages retained (appended, not yet trimmed), per partition. */
  depth: number[];
  /** Messages appended since this instance opened. */
  appended: number;
}

export interface QueueLog {
  open(): Promise<void>;
  /** Appends one message; resolves with its offset once it is as durable as this log makes it. */
  append(partition: number, payload: Uint8Array): Promise<number>;
  /** A producer's batch (Craft #2): contiguous offsets; resolves with the last one once all are durable. */
  appendBatch?(partition: number, payloads: readonly Uint8Array[]): Promise<number>;
  /** The last offset appended to a partition (0 when empty). */
  lastOffset(partition: number): number;
  /** Opens a group's reader of one partition, positioned after the group's committed offset. */
  reader(group: string, partition: number): Promise<PartitionReader>;
  /** Drops messages through `offset` of a partition: every group has committed them. */
  trim(partition: number, offset: number): Promise<void>;
  info(): Promise<QueueLogInfo>;
  /**
   * Optional direct append path: the NATS subject a producer may publish a partition's
   * messages to, acknowledged by the NATS server itself (JetStream), without passing
   * through the queue actor. Logs that live inside the actor (in memory, files) have none.
   */
  directSubject?(partition: number): string;
  /**
   * Called when this log stops being the current epoch: refuse any further appends
   * (direct producers that have not yet heard of the new epoch get an error and retry
   * there) and learn the final last offsets.
   */
  seal?(): Promise<void>;
  /** Closes the log. `destroy` also deletes its data (used after an old epoch is drained). */
  close(options?: { destroy?: boolean }): Promise<void>;
}

export interface QueueLogContext {
  partitions: number;
  /** The epoch this log instance serves; a new epoch starts on every swap. */
  epoch: number;
  /** Private directory for file-based logs. */
  dataDir: string;
  bus: Bus;
  log: Logger;
  /** Copies of a JetStream-backed log's stream (`nats.replicas`; 1 when absent). */
  replicas?: number;
}

/**
 * Slot `queue.groups`: who in a consumer group consumes which partition (Craft #2 phase 2),
 * hosted by the queue actor, which serves join, heartbeat and leave over NATS and fences every
 * fetch and commit through it. Times are the actor's clock.
 */
export interface GroupView {
  generation: number;
  /** Partitions the member may consume now. */
  assigned: number[];
  /** Partitions it must give up: stop, commit what it processed, then heartbeat without them. */
  revoke: number[];
  heartbeatIntervalMs: number;
  sessionTimeoutMs: number;
}

/** Why a fetch or commit is refused; members rejoin on any of them. */
export type GroupRefusal = 'UNKNOWN_MEMBER' | 'ILLEGAL_GENERATION' | 'NOT_OWNER';

export interface GroupDescription {
  group: string;
  /** The coordinator's state for the group, e.g. `empty`, `rebalancing`, `stable`. */
  phase: string;
  generation: number;
  members: string[];
  /** Partition → the member allowed to consume it now. */
  owners: Record<number, string>;
  /** Partition → the member the current generation assigns it to. */
  target: Record<number, string>;
}

export interface GroupCoordinator {
  /** Opens what the coordinator keeps outside the process (phase 3: its lease bucket, and the groups found there). */
  open?(): Promise<void>;
  close?(): Promise<void>;
  /** After a restart: the group existed with this generation; the next generation is above it, so no stale member's generation comes back. */
  restore(group: string, generation: number): void;
  join(group: string, member: string, nowMs: number): GroupView | Promise<GroupView>;
  /** `holding`: the partitions the member still holds (undefined: everything it owns — a fetch counts as a heartbeat). */
  heartbeat(group: string, member: string, holding: number[] | undefined, nowMs: number): GroupView | GroupRefusal | Promise<GroupView | GroupRefusal>;
  leave(group: string, member: string, nowMs: number): void | Promise<void>;
  /** Expires members whose session ran out. */
  tick(nowMs: number): void | Promise<void>;
  /** Whether `member` at `generation` may commit `partition`. */
  fence(group: string, member: string, generation: number, partition: number): GroupRefusal | 'OK';
  /** The partitions a fetch of `member` at `generation` may take from: owned and not being given up. */
  consumable(group: string, member: string, generation: number): number[] | GroupRefusal;
  describe(group: string): GroupDescription | undefined;
  groups(): string[];
}

export interface GroupCoordinatorContext {
  partitions: number;
  log: Logger;
  /** The queue actor's connection (phase 3 keeps its leases in a JetStream KV bucket). */
  bus: Bus;
  /** Copies of a bucket in a JetStream cluster (`nats.replicas`; 1 when absent). */
  replicas?: number;
}
