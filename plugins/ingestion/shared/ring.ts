/**
 * A bounded lock-free ring over a SharedArrayBuffer (Craft #1 phase 6): any number of
 * producers and consumers on any threads, after Dmitry Vyukov's bounded MPMC queue. Each
 * cell carries a sequence number; a producer claims a position with one compare-and-swap
 * on the enqueue counter and publishes the cell by storing its sequence; a consumer does
 * the same on the dequeue counter. No locks: a thread never waits for another to finish
 * its critical section, only retries its own CAS.
 *
 * Positions are 32-bit and wrap; comparisons use the signed difference, which is correct
 * while capacity is far below 2^31. Messages are bytes up to `slotBytes` each.
 *
 * Waking: `signal` counts pushes; a blocked consumer waits on it (Atomics.wait in workers,
 * Atomics.waitAsync on the main thread).
 */
const HEADER_INTS = 4; // enqueuePos, dequeuePos, signal, (reserved)
const ENQUEUE = 0;
const DEQUEUE = 1;
const SIGNAL = 2;

export class SharedRing {
  private readonly header: Int32Array;
  private readonly sequences: Int32Array;
  private readonly data: Uint8Array;
  private readonly view: DataView;
  readonly capacity: number;
  readonly slotBytes: number;
  private readonly mask: number;

  /** `capacity` must be a power of two. */
  static create(capacity: number, slotBytes: number): SharedRing {
    if (capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new RangeError('ring capacity must be a power of two ≥ 2');
    const buffer = new SharedArrayBuffer(8 + (HEADER_INTS + capacity) * 4 + capacity * (slotBytes + 4));
    const meta = new Int32Array(buffer, 0, 2);
    meta[0] = capacity;
    meta[1] = slotBytes;
    const ring = new SharedRing(buffer);
    for (let i = 0; i < capacity; i++) Atomics.store(ring.sequences, i, i);
    return ring;
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    const meta = new Int32Array(buffer, 0, 2);
    this.capacity = meta[0]!;
    this.slotBytes = meta[1]!;
    this.mask = this.capacity - 1;
    this.header = new Int32Array(buffer, 8, HEADER_INTS);
    this.sequences = new Int32Array(buffer, 8 + HEADER_INTS * 4, this.capacity);
    const dataAt = 8 + (HEADER_INTS + this.capacity) * 4;
    this.data = new Uint8Array(buffer, dataAt, this.capacity * (this.slotBytes + 4));
    this.view = new DataView(buffer, dataAt, this.capacity * (this.slotBytes + 4));
  }

  /** Pushes a message; false when the ring is full or the message is larger than a slot. */
  tryPush(message: Uint8Array): boolean {
    if (message.length > this.slotBytes) return false;
    let pos = Atomics.load(this.header, ENQUEUE);
    for (;;) {
      const cell = pos & this.mask;
      const seq = Atomics.load(this.sequences, cell);
      const diff = (seq - pos) | 0;
      if (diff === 0) {
        const seen = Atomics.compareExchange(this.header, ENQUEUE, pos, (pos + 1) | 0);
        if (seen === pos) {
          const at = cell * (this.slotBytes + 4);
          this.view.setUint32(at, message.length);
          this.data.set(message, at + 4);
          Atomics.store(this.sequences, cell, (pos + 1) | 0);
          Atomics.add(this.header, SIGNAL, 1);
          Atomics.notify(this.header, SIGNAL, 1);
          return true;
        }
        pos = seen;
      } else if (diff < 0) {
        return false;
      } else {
        pos = Atomics.load(this.header, ENQUEUE);
      }
    }
  }

  /** Pops the oldest message (a copy), or undefined when empty. */
  tryPop(): Uint8Array | undefined {
    let pos = Atomics.load(this.header, DEQUEUE);
    for (;;) {
      const cell = pos & this.mask;
      const seq = Atomics.load(this.sequences, cell);
      const diff = (seq - ((pos + 1) | 0)) | 0;
      if (diff === 0) {
        const seen = Atomics.compareExchange(this.header, DEQUEUE, pos, (pos + 1) | 0);
        if (seen === pos) {
          const at = cell * (this.slotBytes + 4);
          const length = this.view.getUint32(at);
          const message = this.data.slice(at + 4, at + 4 + length);
          Atomics.store(this.sequences, cell, (pos + this.mask + 1) | 0);
          return message;
        }
        pos = seen;
      } else if (diff < 0) {
        return undefined;
      } else {
        pos = Atomics.load(this.header, DEQUEUE);
      }
    }
  }

  /** The push counter, to wait on. */
  signalValue(): number {
    return Atomics.load(this.header, SIGNAL);
  }

  /** Blocks (worker threads only) until a push after `seen`, or `timeoutMs`. */
  waitForPush(seen: number, timeoutMs: number): void {
    Atomics.wait(this.header, SIGNAL, seen, timeoutMs);
  }

  /** Resolves after a push after `seen`, or `timeoutMs` (main thread). */
  async waitForPushAsync(seen: number, timeoutMs: number): Promise<void> {
    const result = Atomics.waitAsync(this.header, SIGNAL, seen, timeoutMs);
    if (result.async) await result.value;
  }

  /** Wakes every waiter (used on shutdown). */
  wakeAll(): void {
    Atomics.add(this.header, SIGNAL, 1);
    Atomics.notify(this.header, SIGNAL);
  }
}
