/**
 * One partition of the file log (Craft #2, phase 1): segment files of records, an offset index
 * beside each closed segment, a CRC per record, group commit.
 *
 *   p<N>/00000000000000000001.log     records of offsets 1…, appended
 *   p<N>/00000000000000000001.index   for a closed segment: (offset, position) every 4 KiB
 *
 * A record is a 16-byte header — payload length (u32), CRC-32 of offset and payload (u32),
 * offset (f64) — then the payload. Offsets are contiguous from 1. Appends wait in memory until
 * the next flush, which writes every waiting record with one write and one `fdatasync` (group
 * commit), then resolves their promises: an append is acknowledged only once durable, and only
 * durable records are readable. A segment closes at `segmentBytesMax`; its index is written
 * then (and rebuilt by a scan if it is missing or does not match).
 *
 * After `kill -9` at any moment the last segment may end in a torn record: opening scans it,
 * keeps every record whose length and CRC check, and truncates the rest — which no append was
 * acknowledged for (its fdatasync had not returned). A bad record in an earlier segment is
 * corruption, not a torn write: opening refuses with CRAFT_STORE_CORRUPT.
 */
import { closeSync, existsSync, fdatasync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, write, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { CraftError } from '../../../core/errors.js';

const writeAsync = (fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> =>
  new Promise((resolve, reject) => write(fd, buffer, offset, length, position, (error, written) => (error === null ? resolve(written) : reject(error))));
const fdatasyncAsync = promisify(fdatasync);

export const RECORD_HEADER_BYTES = 16;
/** A record's payload may not be larger (a queue message is under NATS's payload limit anyway). */
export const RECORD_PAYLOAD_MAX = 64 * 1024 * 1024;
/** The index holds an entry every this many bytes of segment. */
const INDEX_EVERY_BYTES = 4_096;
/** One read takes at most this much of a segment at once. */
const READ_CHUNK_BYTES = 1024 * 1024;

export interface Record {
  offset: number;
  payload: Uint8Array;
}

interface Segment {
  baseOffset: number;
  /** Last offset in the segment (baseOffset − 1 when empty). */
  lastOffset: number;
  path: string;
  fd: number;
  size: number;
  /** Sparse index: offsets and their byte positions, ascending. */
  indexOffsets: number[];
  indexPositions: number[];
  /** When the segment's newest record was appended (for retention by age), ms. */
  lastAppendMs: number;
}

const segmentName = (baseOffset: number): string => String(baseOffset).padStart(20, '0');

function recordCrc(offset: number, payload: Uint8Array): number {
  const head = Buffer.allocUnsafe(8);
  head.writeDoubleLE(offset, 0);
  return crc32(payload, crc32(head));
}

/** Encodes records into one buffer (the write of a group commit). */
export function encodeRecords(records: readonly Record[]): Buffer {
  let size = 0;
  for (const r of records) size += RECORD_HEADER_BYTES + r.payload.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const r of records) {
    out.writeUInt32LE(r.payload.length, at);
    out.writeUInt32LE(recordCrc(r.offset, r.payload), at + 4);
    out.writeDoubleLE(r.offset, at + 8);
    out.set(r.payload, at + RECORD_HEADER_BYTES);
    at += RECORD_HEADER_BYTES + r.payload.length;
  }
  return out;
}

export interface SegmentLogOptions {
  segmentBytesMax: number;
  /** Retention: closed segments beyond this many bytes of the partition are deleted (0: off). */
  retentionBytes: number;
  /** Retention: closed segments whose newest record is older than this are deleted, ms (0: off). */
  retentionMs: number;
  now: () => number;
}

export class SegmentLog {
  private segments: Segment[] = [];
  private pending: { payload: Uint8Array; offset: number; resolve: (offset: number) => void; reject: (error: Error) => void }[] = [];
  private flushing = false;
  /** Last offset assigned (appended, maybe not yet durable). */
  private assigned = 0;
  /** Last durable offset: what readers may see. */
  durableOffset = 0;
  private closed = false;
  /** Called after each flush (readers waiting for data). */
  onDurable: () => void = () => undefined;
  /** Flushes done and records written (for stats and tests). */
  flushes = 0;

  constructor(
    readonly dir: string,
    private readonly options: SegmentLogOptions,
  ) {}

  /** Opens the segments, rebuilding indexes where needed and truncating a torn tail. Returns bytes truncated. */
  open(): number {
    try {
      return this.openSegments();
    } catch (error) {
      for (const s of this.segments) closeSync(s.fd);
      this.segments = [];
      throw error;
    }
  }

  private openSegments(): number {
    const created = !existsSync(this.dir);
    mkdirSync(this.dir, { recursive: true });
    if (created) syncDir(join(this.dir, '..'));
    const bases = readdirSync(this.dir)
      .filter((f) => /^\d{20}\.log$/.test(f))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b);
    let truncated = 0;
    for (let i = 0; i < bases.length; i++) {
      const last = i === bases.length - 1;
      const segment = this.openSegment(bases[i]!);
      this.segments.push(segment);
      const expected = i === 0 ? segment.baseOffset : this.segments[i - 1]!.lastOffset + 1;
      if (segment.baseOffset !== expected) throw new CraftError('CRAFT_STORE_CORRUPT', `${segment.path}: starts at offset ${segment.baseOffset}, expected ${expected} (a segment is missing)`);
      const indexPath = segment.path.replace(/\.log$/, '.index');
      if (!last && this.loadIndex(segment, indexPath)) continue;
      const scan = this.scan(segment);
      if (scan.validBytes < segment.size) {
        if (!last) throw new CraftError('CRAFT_STORE_CORRUPT', `${segment.path}: a bad record at byte ${scan.validBytes} of ${segment.size} in a closed segment`);
        // A torn tail: the records past the last good one were never acknowledged.
        ftruncateSync(segment.fd, scan.validBytes);
        fsyncSync(segment.fd);
        truncated += segment.size - scan.validBytes;
        segment.size = scan.validBytes;
      }
    }
    if (this.segments.length === 0) this.segments.push(this.createSegment(1));
    this.assigned = this.durableOffset = this.segments.at(-1)!.lastOffset;
    return truncated;
  }

  private openSegment(baseOffset: number): Segment {
    const path = join(this.dir, `${segmentName(baseOffset)}.log`);
    const fd = openSync(path, 'r+');
    const stat = statSync(path);
    return { baseOffset, lastOffset: baseOffset - 1, path, fd, size: stat.size, indexOffsets: [], indexPositions: [], lastAppendMs: stat.mtimeMs };
  }

  private createSegment(baseOffset: number): Segment {
    const path = join(this.dir, `${segmentName(baseOffset)}.log`);
    // Not append mode: positional writes must land where the log says (O_APPEND ignores the position on Linux).
    const fd = openSync(path, 'wx+');
    // The new file's name must survive a crash too: sync the directory.
    syncDir(this.dir);
    return { baseOffset, lastOffset: baseOffset - 1, path, fd, size: 0, indexOffsets: [], indexPositions: [], lastAppendMs: this.options.now() };
  }

  /** Reads every record, building the index; stops at the first record that does not check. */
  private scan(segment: Segment): { validBytes: number } {
    let position = 0;
    let nextIndexAt = 0;
    let expectedOffset = segment.baseOffset;
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    while (position + RECORD_HEADER_BYTES <= segment.size) {
      readSync(segment.fd, header, 0, RECORD_HEADER_BYTES, position);
      const length = header.readUInt32LE(0);
      const crc = header.readUInt32LE(4);
      const offset = header.readDoubleLE(8);
      if (length > RECORD_PAYLOAD_MAX || offset !== expectedOffset || position + RECORD_HEADER_BYTES + length > segment.size) break;
      const payload = Buffer.allocUnsafe(length);
      readSync(segment.fd, payload, 0, length, position + RECORD_HEADER_BYTES);
      if (recordCrc(offset, payload) !== crc) break;
      if (position >= nextIndexAt) {
        segment.indexOffsets.push(offset);
        segment.indexPositions.push(position);
        nextIndexAt = position + INDEX_EVERY_BYTES;
      }
      segment.lastOffset = offset;
      expectedOffset += 1;
      position += RECORD_HEADER_BYTES + length;
    }
    return { validBytes: position };
  }

  /** Loads a closed segment's index file; false when it is missing or does not match the segment. */
  private loadIndex(segment: Segment, indexPath: string): boolean {
    if (!existsSync(indexPath)) return false;
    const bytes = readFileSync(indexPath);
    // u32 count, u32 CRC of the entries, then count × (f64 offset, f64 position), then f64 last offset and f64 size.
    if (bytes.length < 8) return false;
    const count = bytes.readUInt32LE(0);
    if (bytes.length !== 8 + count * 16 + 16 || crc32(bytes.subarray(8)) !== bytes.readUInt32LE(4)) return false;
    const lastOffset = bytes.readDoubleLE(8 + count * 16);
    const size = bytes.readDoubleLE(8 + count * 16 + 8);
    if (size !== segment.size) return false;
    for (let i = 0; i < count; i++) {
      segment.indexOffsets.push(bytes.readDoubleLE(8 + i * 16));
      segment.indexPositions.push(bytes.readDoubleLE(8 + i * 16 + 8));
    }
    segment.lastOffset = lastOffset;
    return true;
  }

  private writeIndex(segment: Segment): void {
    const count = segment.indexOffsets.length;
    const bytes = Buffer.allocUnsafe(8 + count * 16 + 16);
    bytes.writeUInt32LE(count, 0);
    for (let i = 0; i < count; i++) {
      bytes.writeDoubleLE(segment.indexOffsets[i]!, 8 + i * 16);
      bytes.writeDoubleLE(segment.indexPositions[i]!, 8 + i * 16 + 8);
    }
    bytes.writeDoubleLE(segment.lastOffset, 8 + count * 16);
    bytes.writeDoubleLE(segment.size, 8 + count * 16 + 8);
    bytes.writeUInt32LE(crc32(bytes.subarray(8)), 4);
    const path = segment.path.replace(/\.log$/, '.index');
    writeFileSync(`${path}.tmp`, bytes);
    const fd = openSync(`${path}.tmp`, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(`${path}.tmp`, path);
  }

  get lastOffset(): number {
    return this.assigned;
  }

  get firstOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** Records retained (durable, not trimmed or retired). */
  get retained(): number {
    return this.durableOffset - this.firstOffset + 1;
  }

  get bytes(): number {
    return this.segments.reduce((sum, s) => sum + s.size, 0);
  }

  /** Queues a record; resolves with its offset once it is durable (the next group commit). */
  append(payload: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new CraftError('CRAFT_BAD_REQUEST', 'the file log is closed'));
    if (payload.length > RECORD_PAYLOAD_MAX) return Promise.reject(new CraftError('CRAFT_BAD_REQUEST', `a message of ${payload.length} bytes is over RECORD_PAYLOAD_MAX=${RECORD_PAYLOAD_MAX}`));
    const offset = ++this.assigned;
    return new Promise((resolve, reject) => {
      this.pending.push({ payload, offset, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => (this.inFlight = this.flush()));
      }
    });
  }

  /** Queues several records (a producer's batch); resolves with the last one's offset once all are durable. */
  appendMany(payloads: readonly Uint8Array[]): Promise<number> {
    if (payloads.length === 0) return Promise.resolve(this.assigned);
    if (this.closed) return Promise.reject(new CraftError('CRAFT_BAD_REQUEST', 'the file log is closed'));
    if (payloads.some((p) => p.length > RECORD_PAYLOAD_MAX)) return Promise.reject(new CraftError('CRAFT_BAD_REQUEST', `a message is over RECORD_PAYLOAD_MAX=${RECORD_PAYLOAD_MAX}`));
    const ignore = (): void => undefined;
    return new Promise((resolve, reject) => {
      payloads.forEach((payload, i) => {
        const last = i === payloads.length - 1;
        this.pending.push({ payload, offset: ++this.assigned, resolve: last ? resolve : ignore, reject: last ? reject : ignore });
      });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => (this.inFlight = this.flush()));
      }
    });
  }

  /**
   * One group commit: every waiting record in one write, one fdatasync (both on libuv's thread
   * pool: the event loop goes on, and what arrives meanwhile is the next batch); then the next.
   */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0 || this.closed) {
      this.flushing = false;
      for (const p of batch) p.reject(new CraftError('CRAFT_BAD_REQUEST', 'the file log closed before the message was written'));
      return;
    }
    let segment = this.segments.at(-1)!;
    try {
      if (segment.size >= this.options.segmentBytesMax) segment = this.roll();
      const bytes = encodeRecords(batch);
      let position = segment.size;
      let nextIndexAt = (segment.indexPositions.at(-1) ?? -INDEX_EVERY_BYTES) + INDEX_EVERY_BYTES;
      for (const p of batch) {
        if (position >= nextIndexAt) {
          segment.indexOffsets.push(p.offset);
          segment.indexPositions.push(position);
          nextIndexAt = position + INDEX_EVERY_BYTES;
        }
        position += RECORD_HEADER_BYTES + p.payload.length;
      }
      let written = 0;
      while (written < bytes.length) written += await writeAsync(segment.fd, bytes, written, bytes.length - written, segment.size + written);
      await fdatasyncAsync(segment.fd);
      segment.size += bytes.length;
      segment.lastOffset = batch.at(-1)!.offset;
      segment.lastAppendMs = this.options.now();
      this.durableOffset = segment.lastOffset;
      this.flushes += 1;
      for (const p of batch) p.resolve(p.offset);
      this.retire();
      this.onDurable();
    } catch (error) {
      // Nothing of the batch is acknowledged: cut what of it reached the file and its index entries,
      // and number the appends still waiting from the last durable offset again.
      for (const p of batch) p.reject(error as Error);
      try {
        ftruncateSync(segment.fd, segment.size);
        const keep = segment.indexPositions.findIndex((position) => position >= segment.size);
        if (keep >= 0) segment.indexOffsets.length = segment.indexPositions.length = keep;
      } catch {
        // The file cannot even be cut back: refuse everything from now on (reopening recovers by a scan).
        this.closed = true;
      }
      this.assigned = this.durableOffset + this.pending.length;
      this.pending.forEach((p, i) => (p.offset = this.durableOffset + i + 1));
    }
    if (this.pending.length > 0 && !this.closed) setImmediate(() => (this.inFlight = this.flush()));
    else this.flushing = false;
  }

  /** Closes the active segment (its index written) and starts the next. */
  private roll(): Segment {
    const old = this.segments.at(-1)!;
    this.writeIndex(old);
    const next = this.createSegment(old.lastOffset + 1);
    this.segments.push(next);
    return next;
  }

  /** Deletes closed segments beyond the retention limits. */
  private retire(): void {
    const { retentionBytes, retentionMs } = this.options;
    if (retentionBytes === 0 && retentionMs === 0) return;
    const now = this.options.now();
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const overBytes = retentionBytes > 0 && this.bytes - oldest.size >= retentionBytes;
      const overAge = retentionMs > 0 && now - oldest.lastAppendMs > retentionMs;
      if (!overBytes && !overAge) break;
      this.dropOldest();
    }
  }

  private dropOldest(): void {
    const oldest = this.segments.shift()!;
    closeSync(oldest.fd);
    unlinkSync(oldest.path);
    const index = oldest.path.replace(/\.log$/, '.index');
    if (existsSync(index)) unlinkSync(index);
    // Unlinks reach the disk in order: a gap at the start never appears before the older segment is gone.
    syncDir(this.dir);
  }

  /** Drops the closed segments whose records are all at or below `offset` (every group committed them). */
  trim(offset: number): void {
    while (this.segments.length > 1 && this.segments[0]!.lastOffset <= offset) this.dropOldest();
  }

  /**
   * Durable records after `afterOffset`: at most `maxMessages`, payloads of at most `maxBytes`
   * together (strictly: a record that does not fit is left for the next read). Records
   * retired by retention are skipped: reading resumes at the first retained offset.
   */
  read(afterOffset: number, maxMessages: number, maxBytes: number): Record[] {
    const out: Record[] = [];
    let offset = Math.max(afterOffset + 1, this.firstOffset);
    let bytes = 0;
    while (out.length < maxMessages && offset <= this.durableOffset) {
      const segment = this.segmentOf(offset);
      let position = this.positionOf(segment, offset);
      // Read a chunk, parse the records in it.
      const wanted = maxBytes - bytes + RECORD_HEADER_BYTES * (maxMessages - out.length);
      const chunk = Buffer.allocUnsafe(Math.max(RECORD_HEADER_BYTES, Math.min(READ_CHUNK_BYTES, segment.size - position, wanted)));
      const got = readSync(segment.fd, chunk, 0, chunk.length, position);
      let at = 0;
      let progressed = false;
      while (at + RECORD_HEADER_BYTES <= got && out.length < maxMessages && offset <= Math.min(this.durableOffset, segment.lastOffset)) {
        const length = chunk.readUInt32LE(at);
        const recordOffset = chunk.readDoubleLE(at + 8);
        if (recordOffset !== offset) throw new CraftError('CRAFT_STORE_CORRUPT', `${segment.path}: offset ${recordOffset} at byte ${position + at}, expected ${offset}`);
        if (bytes + length > maxBytes) return out;
        let payload: Uint8Array;
        if (at + RECORD_HEADER_BYTES + length <= got) payload = Uint8Array.prototype.slice.call(chunk, at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length);
        else if (at === 0) {
          // A record larger than a chunk: read it whole.
          const whole = Buffer.allocUnsafe(length);
          readSync(segment.fd, whole, 0, length, position + RECORD_HEADER_BYTES);
          payload = whole;
        } else break;
        out.push({ offset, payload });
        bytes += length;
        offset += 1;
        at += RECORD_HEADER_BYTES + length;
        progressed = true;
      }
      position += at;
      if (!progressed) break;
    }
    return out;
  }

  private segmentOf(offset: number): Segment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo]!;
  }

  /** The byte position of `offset` in its segment: from the index, then a walk over the headers. */
  private positionOf(segment: Segment, offset: number): number {
    let lo = 0;
    let hi = segment.indexOffsets.length - 1;
    let position = 0;
    let at = segment.baseOffset;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (segment.indexOffsets[mid]! <= offset) {
        position = segment.indexPositions[mid]!;
        at = segment.indexOffsets[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    while (at < offset) {
      readSync(segment.fd, header, 0, RECORD_HEADER_BYTES, position);
      position += RECORD_HEADER_BYTES + header.readUInt32LE(0);
      at += 1;
    }
    return position;
  }

  /** The group commit being written, if any. */
  private inFlight: Promise<void> = Promise.resolve();

  /** Closes the files once the group commit being written is done; appends still waiting are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.inFlight;
    for (const p of this.pending) p.reject(new CraftError('CRAFT_BAD_REQUEST', 'the file log closed before the message was written'));
    this.pending = [];
    for (const s of this.segments) closeSync(s.fd);
    this.segments = [];
  }
}

export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
