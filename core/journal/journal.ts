/**
 * An event-sourced journal: events in a JetStream stream, state as a fold over them,
 * snapshots in a KV bucket to bound replay time.
 *
 * One writer: appends carry the expected last sequence, so a second instance that writes
 * to the same journal (a split brain after a restart) is refused instead of interleaving.
 */
import { DeliverPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { decodeJson, encodeJson, type Bus } from '../nats/bus.js';
import { BUCKETS, journalStream, journalSubject } from '../subjects.js';
import { SNAPSHOT_EVERY_EVENTS } from '../defaults.js';
import { InvariantError } from '../errors.js';

export interface JournalSpec<S, E> {
  /** Journal name: one stream `CRAFT_JOURNAL_<NAME>`. */
  name: string;
  initial(): S;
  /** The fold. Must be pure: replay and live use give the same state. */
  apply(state: S, event: E): S;
  /** Write a snapshot after this many events (0 disables). */
  snapshotEvery?: number;
  /** Copies of the stream and the snapshot bucket in a JetStream cluster (`nats.replicas`; 1 on a single server). */
  replicas?: number;
}

interface Snapshot<S> {
  seq: number;
  state: S;
}

export interface ReplayStats {
  fromSnapshotSeq: number;
  eventsReplayed: number;
  lastSeq: number;
}

export class Journal<S, E> {
  private current: S;
  private lastSeq = 0;
  private sinceSnapshot = 0;
  private replayStats: ReplayStats = { fromSnapshotSeq: 0, eventsReplayed: 0, lastSeq: 0 };

  private constructor(
    private readonly bus: Bus,
    private readonly spec: JournalSpec<S, E>,
    private readonly kv: KV,
  ) {
    this.current = spec.initial();
  }

  /** Opens the journal: creates its stream if needed, loads the snapshot, replays the rest. */
  static async open<S, E>(bus: Bus, spec: JournalSpec<S, E>): Promise<Journal<S, E>> {
    const jsm = await bus.jetstreamManager();
    await ensureJournalStream(jsm, spec.name, spec.replicas ?? 1);
    const kv = await new Kvm(bus.nc).create(BUCKETS.snapshots, { history: 1, replicas: spec.replicas ?? 1 });
    const journal = new Journal(bus, spec, kv);
    await journal.replay(jsm);
    return journal;
  }

  get state(): S {
    return this.current;
  }

  get sequence(): number {
    return this.lastSeq;
  }

  get stats(): ReplayStats {
    return this.replayStats;
  }

  private async replay(jsm: JetStreamManager): Promise<void> {
    const stream = journalStream(this.spec.name);
    const entry = await this.kv.get(this.spec.name);
    if (entry !== null && entry.value.length > 0) {
      const snapshot = decodeJson<Snapshot<S>>(entry.value);
      this.current = snapshot.state;
      this.lastSeq = snapshot.seq;
    }
    const fromSnapshotSeq = this.lastSeq;
    const info = await jsm.streams.info(stream);
    const endSeq = info.state.last_seq;
    let replayed = 0;
    if (endSeq > this.lastSeq) {
      const consumer = await this.bus.jetstream().consumers.get(stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.lastSeq + 1,
      });
      while (this.lastSeq < endSeq) {
        const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
        let got = 0;
        for await (const message of batch) {
          got += 1;
          this.current = this.spec.apply(this.current, message.json<E>());
          this.lastSeq = message.seq;
          replayed += 1;
          if (this.lastSeq >= endSeq) break;
        }
        if (got === 0) throw new InvariantError(`journal ${this.spec.name}: replay stalled at ${this.lastSeq} of ${endSeq}`);
      }
      await consumer.delete().catch(() => undefined);
    }
    this.replayStats = { fromSnapshotSeq, eventsReplayed: replayed, lastSeq: this.lastSeq };
  }

  /** Appends in flight, one after another (each expects the sequence the one before it made). */
  private appending: Promise<unknown> = Promise.resolve();

  /**
   * Appends an event durably, then folds it into the state. Safe to call concurrently: appends
   * run one at a time in call order (the stream's expected last sequence refuses a second writer,
   * not a second caller).
   */
  append(event: E): Promise<S> {
    const next = this.appending.then(() => this.appendNow(event));
    this.appending = next.catch(() => undefined);
    return next;
  }

  private async appendNow(event: E): Promise<S> {
    const ack = await this.bus.jetstream().publish(journalSubject(this.spec.name), encodeJson(event), {
      expect: { lastSequence: this.lastSeq },
    });
    if (ack.seq !== this.lastSeq + 1) throw new InvariantError(`journal ${this.spec.name}: expected seq ${this.lastSeq + 1}, got ${ack.seq}`);
    this.current = this.spec.apply(this.current, event);
    this.lastSeq = ack.seq;
    this.sinceSnapshot += 1;
    const every = this.spec.snapshotEvery ?? SNAPSHOT_EVERY_EVENTS;
    if (every > 0 && this.sinceSnapshot >= every) await this.snapshot();
    return this.current;
  }

  /** Writes a snapshot of the current state at the current sequence. */
  async snapshot(): Promise<void> {
    await this.kv.put(this.spec.name, encodeJson({ seq: this.lastSeq, state: this.current } satisfies Snapshot<S>));
    this.sinceSnapshot = 0;
  }
}

export async function ensureJournalStream(jsm: JetStreamManager, name: string, replicas = 1): Promise<void> {
  const stream = journalStream(name);
  try {
    await jsm.streams.info(stream);
  } catch {
    await whilePlacing(() => jsm.streams.add({ name: stream, subjects: [journalSubject(name)], num_replicas: replicas }));
  }
}

/** How long a stream creation is tried again while a forming cluster cannot place its replicas yet, ms. */
const PLACEMENT_WAIT_MS = 20_000;

/**
 * Runs a stream creation, trying again while JetStream answers "no suitable peers for placement"
 * — a cluster whose servers are up but have not all joined JetStream's meta group yet (the
 * journals are the first streams a platform creates, so it waits here for the cluster to form).
 */
export async function whilePlacing<T>(create: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + PLACEMENT_WAIT_MS;
  for (;;) {
    try {
      return await create();
    } catch (error) {
      if (!/no suitable peers|insufficient resources/i.test(String((error as Error)?.message)) || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
