/**
 * The seed's queue, kept as the baseline of phase 1 (`layout: file-per-message`): every message
 * its own file, written and fsynced before the next one starts — no batching, one fsync (and a
 * directory entry) per message. Same interface and guarantees as the segment log, so the
 * lesson is the measured difference (docs/queue.md).
 *
 *   p<N>/msg/00000000000000000001     u32 length, u32 CRC-32 of offset and payload, payload
 *
 * Opening lists the files; a file whose length or CRC does not check (a write cut by a crash)
 * is deleted, and so is everything after the first gap.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { CraftError } from '../../../core/errors.js';
import { RECORD_PAYLOAD_MAX, syncDir, type Record } from './segments.js';

const name = (offset: number): string => String(offset).padStart(20, '0');

function checksum(offset: number, payload: Uint8Array): number {
  const head = Buffer.allocUnsafe(8);
  head.writeDoubleLE(offset, 0);
  return crc32(payload, crc32(head));
}

export class FilePerMessageLog {
  private first = 1;
  private last = 0;
  durableOffset = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  onDurable: () => void = () => undefined;
  flushes = 0;
  private readonly msgDir: string;

  constructor(readonly dir: string) {
    this.msgDir = join(dir, 'msg');
  }

  open(): number {
    mkdirSync(this.msgDir, { recursive: true });
    const offsets = readdirSync(this.msgDir).filter((f) => /^\d{20}$/.test(f)).map(Number).sort((a, b) => a - b);
    let dropped = 0;
    let expected = offsets[0] ?? 1;
    this.first = expected;
    for (const offset of offsets) {
      const path = join(this.msgDir, name(offset));
      const bytes = readFileSync(path);
      const ok = offset === expected && bytes.length >= 8 && bytes.readUInt32LE(0) === bytes.length - 8 && bytes.readUInt32LE(4) === checksum(offset, bytes.subarray(8));
      if (!ok || dropped > 0) {
        unlinkSync(path);
        dropped += 1;
        continue;
      }
      expected = offset + 1;
    }
    this.last = this.durableOffset = expected - 1;
    return dropped;
  }

  get lastOffset(): number {
    return this.last;
  }

  get firstOffset(): number {
    return this.first;
  }

  get retained(): number {
    return this.durableOffset - this.first + 1;
  }

  /** Writes and fsyncs this message's file after the previous one's: one at a time. */
  append(payload: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new CraftError('CRAFT_BAD_REQUEST', 'the file log is closed'));
    if (payload.length > RECORD_PAYLOAD_MAX) return Promise.reject(new CraftError('CRAFT_BAD_REQUEST', `a message of ${payload.length} bytes is over RECORD_PAYLOAD_MAX=${RECORD_PAYLOAD_MAX}`));
    // The offset is taken when the write starts, so a failed write leaves no gap: the next append reuses it.
    const done = this.chain.then(() => {
      const offset = this.last + 1;
      const bytes = Buffer.allocUnsafe(8 + payload.length);
      bytes.writeUInt32LE(payload.length, 0);
      bytes.writeUInt32LE(checksum(offset, payload), 4);
      bytes.set(payload, 8);
      const path = join(this.msgDir, name(offset));
      const fd = openSync(path, 'w');
      try {
        writeSync(fd, bytes);
        fsyncSync(fd);
      } catch (error) {
        closeSync(fd);
        rmSync(path, { force: true });
        throw error;
      }
      closeSync(fd);
      syncDir(this.msgDir);
      this.last = this.durableOffset = offset;
      this.flushes += 1;
      this.onDurable();
      return offset;
    });
    this.chain = done.catch(() => undefined);
    return done;
  }

  /** The baseline has no batches: one file and fsync per message, in turn. */
  async appendMany(payloads: readonly Uint8Array[]): Promise<number> {
    let last = this.last;
    for (const payload of payloads) last = await this.append(payload);
    return last;
  }

  read(afterOffset: number, maxMessages: number, maxBytes: number): Record[] {
    const out: Record[] = [];
    let bytes = 0;
    for (let offset = Math.max(afterOffset + 1, this.first); offset <= this.durableOffset && out.length < maxMessages; offset++) {
      const file = readFileSync(join(this.msgDir, name(offset)));
      if (bytes + file.length - 8 > maxBytes) break;
      out.push({ offset, payload: file.subarray(8) });
      bytes += file.length - 8;
    }
    return out;
  }

  /** Deletes consumed messages, always keeping the newest: the file that says where offsets go on after a reopen. */
  trim(offset: number): void {
    for (; this.first <= Math.min(offset, this.durableOffset - 1); this.first++) unlinkSync(join(this.msgDir, name(this.first)));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }
}
