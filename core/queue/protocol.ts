/**
 * The queue actor's protocol, and the client other actors use to speak it.
 *
 *   append  craft.queue.append   raw batch bytes, header Craft-Client  → {partition, offset, epoch}
 *   join    craft.queue.join     {group, member}                       → {generation}
 *   fetch   craft.queue.fetch    {group, member, generation, ...}      → binary frame (below)
 *   commit  craft.queue.commit   {group, member, generation, commits}  → {committed}
 *   info    craft.queue.info     {}                                    → QueueInfo
 *
 * A fetch reply is one frame: a 4-byte big-endian length, that many bytes of JSON
 * metadata, then the payloads back to back, so batches travel without re-encoding.
 * Generations fence stale members: a fetch or commit with an old generation is refused
 * with CRAFT_BAD_REQUEST and `details.reason = "stale-generation"`.
 */
import { CraftError, fromWireError, type WireError } from '../errors.js';
import { decodeJson, encodeJson, type Bus } from '../nats/bus.js';
import { SUBJECTS } from '../subjects.js';
import { FETCH_MESSAGES_MAX, FETCH_WAIT_MS, NATS_PAYLOAD_BYTES_MAX } from '../defaults.js';
import type { AppendAck } from '../slots/ingestion.js';
import type { GroupDescription, GroupView } from '../slots/queue.js';

export const CLIENT_HEADER = 'Craft-Client';

export interface JoinRequest {
  group: string;
  member: string;
}
export type JoinReply = GroupView;

export interface HeartbeatRequest {
  group: string;
  member: string;
  /** Partitions still held (processing or uncommitted); omitted: everything the member owns. */
  holding?: number[];
}

export interface LeaveRequest {
  group: string;
  member: string;
}

export interface FetchRequest {
  group: string;
  member: string;
  generation: number;
  maxMessages?: number;
  maxBytes?: number;
  waitMs?: number;
}

export interface FetchedDelivery {
  epoch: number;
  partition: number;
  offset: number;
  payload: Uint8Array;
}

export interface CommitRequest {
  group: string;
  member: string;
  generation: number;
  commits: { epoch: number; partition: number; offset: number }[];
}

export interface QueueInfo {
  plugin: string;
  epoch: number;
  partitions: number;
  /** Messages waiting (appended, not committed by every group), all epochs. */
  depth: number;
  appended: number;
  epochs: { epoch: number; plugin: string; draining: boolean; depth: number }[];
  groups: string[];
  /** The `queue.groups` plugin, and each group's members, owners and generation. */
  groupCoordinator: string;
  groupStates: GroupDescription[];
  /** Trims that failed and were retried at a later interval (housekeeping; no commit failed for them). */
  trimFailures: number;
}

/** Where producers append: through the queue actor (relay), or straight to the log's subjects (direct). */
export interface QueueRoute {
  epoch: number;
  partitions: number;
  /** Publish to `craft.queue.log.<epoch>.<partition>`; the NATS server acknowledges (JetStream). */
  direct: boolean;
}

type FetchMeta = { ok: true; generation: number; deliveries: [number, number, number, number][] } | { ok: false; error: WireError };

export function encodeFetchFrame(generation: number, deliveries: FetchedDelivery[]): Uint8Array {
  const meta = encodeJson({
    ok: true,
    generation,
    deliveries: deliveries.map((d) => [d.epoch, d.partition, d.offset, d.payload.length]),
  } satisfies FetchMeta);
  let total = 4 + meta.length;
  for (const d of deliveries) total += d.payload.length;
  const frame = new Uint8Array(total);
  new DataView(frame.buffer).setUint32(0, meta.length);
  frame.set(meta, 4);
  let at = 4 + meta.length;
  for (const d of deliveries) {
    frame.set(d.payload, at);
    at += d.payload.length;
  }
  return frame;
}

export function encodeFetchError(error: WireError): Uint8Array {
  const meta = encodeJson({ ok: false, error } satisfies FetchMeta);
  const frame = new Uint8Array(4 + meta.length);
  new DataView(frame.buffer).setUint32(0, meta.length);
  frame.set(meta, 4);
  return frame;
}

export function decodeFetchFrame(frame: Uint8Array): { generation: number; deliveries: FetchedDelivery[] } {
  // An actor that crashed while answering replies with the plain JSON envelope, not a frame
  // (a frame starts with its meta length, whose first byte is 0 for any meta under 16 MiB).
  if (frame[0] === 0x7b) {
    const reply = decodeJson<{ ok: boolean; error?: WireError }>(frame);
    throw fromWireError(reply.error ?? { code: 'CRAFT_ACTOR_CRASHED', message: 'queue answered a fetch without a frame' });
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const metaLength = view.getUint32(0);
  const meta = decodeJson<FetchMeta>(frame.subarray(4, 4 + metaLength));
  if (!meta.ok) throw fromWireError(meta.error);
  let at = 4 + metaLength;
  const deliveries = meta.deliveries.map(([epoch, partition, offset, length]) => {
    const payload = frame.subarray(at, at + length);
    at += length;
    return { epoch, partition, offset, payload };
  });
  return { generation: meta.generation, deliveries };
}

/** FNV-1a, 32 bit: partition = hash(client id) mod partitions, stable across processes. */
export function partitionFor(client: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < client.length; i++) {
    hash ^= client.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** A fetch, commit or heartbeat refused because the group moved on (stale generation, not the owner, not a member): join again. */
export const isFenced = (error: unknown): boolean => fenceReason(error) !== undefined;

/** Why a request was fenced: `stale-generation`, `not-owner` or `unknown-member` (undefined: not fenced). */
export function fenceReason(error: unknown): 'stale-generation' | 'not-owner' | 'unknown-member' | undefined {
  if (!(error instanceof CraftError) || error.code !== 'CRAFT_BAD_REQUEST') return undefined;
  const reason = error.details?.reason;
  return reason === 'stale-generation' || reason === 'not-owner' || reason === 'unknown-member' ? reason : undefined;
}

export class QueueClient {
  constructor(private readonly bus: Bus) {}

  /** Appends raw batch bytes for a client; resolves when the queue has it durably. */
  async append(client: string, payload: Uint8Array, timeoutMs?: number): Promise<AppendAck> {
    const reply = await this.bus.requestRaw(SUBJECTS.queueAppend, payload, { headers: { [CLIENT_HEADER]: client }, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
    const decoded = decodeJson<{ ok: true; result: AppendAck } | { ok: false; error: WireError }>(reply);
    if (!decoded.ok) throw fromWireError(decoded.error);
    return decoded.result;
  }

  join(request: JoinRequest): Promise<JoinReply> {
    return this.bus.request<JoinReply>(SUBJECTS.queueJoin, request);
  }

  heartbeat(request: HeartbeatRequest): Promise<GroupView> {
    return this.bus.request<GroupView>(SUBJECTS.queueHeartbeat, request);
  }

  leave(request: LeaveRequest): Promise<{ left: boolean }> {
    return this.bus.request(SUBJECTS.queueLeave, request);
  }

  /** `timeoutMs`: how long to wait for the answer (default: the long-poll wait + 5 s). */
  async fetch(request: FetchRequest, options: { timeoutMs?: number } = {}): Promise<{ generation: number; deliveries: FetchedDelivery[] }> {
    const waitMs = request.waitMs ?? FETCH_WAIT_MS;
    const body = { maxMessages: FETCH_MESSAGES_MAX, maxBytes: NATS_PAYLOAD_BYTES_MAX, waitMs, ...request };
    const frame = await this.bus.requestRaw(SUBJECTS.queueFetch, encodeJson(body), { timeoutMs: options.timeoutMs ?? waitMs + 5_000 });
    return decodeFetchFrame(frame);
  }

  commit(request: CommitRequest): Promise<{ committed: number }> {
    return this.bus.request(SUBJECTS.queueCommit, request);
  }

  info(): Promise<QueueInfo> {
    return this.bus.request<QueueInfo>(SUBJECTS.queueInfo, {});
  }

  route(): Promise<QueueRoute> {
    return this.bus.request<QueueRoute>(SUBJECTS.queueRoute, {}, { timeoutMs: 2_000 });
  }
}
