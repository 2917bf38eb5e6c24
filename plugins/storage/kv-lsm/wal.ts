/**
 * The write-ahead log: every batch is appended here as one record before it reaches the
 * memtable, so a crash loses no acknowledged batch, and never part of one.
 *
 *   record  = [payloadLength u32][crc u32][payload]
 *   crc     = CRC32 of the 4 length bytes followed by the payload
 *   payload = [opCount u32] ([kind u8: 0 put, 1 delete][key: u32 length, bytes][value: u32 length, bytes — puts only])*
 *
 * One record per batch is what makes a batch atomic: recovery replays whole records only.
 * The CRC covers the length too, so a torn length prefix is caught, not trusted.
 *
 * Recovery reads records until the first one that does not check out (shorter than its
 * length, CRC mismatch, or a payload that does not decode to exactly its length) and
 * truncates the file there: that is the tail a crash tore mid-write. Everything before it
 * was written completely and is kept. LevelDB's 32 KiB block framing, which lets it skip a
 * corrupt record in the middle and read on, is left out: a bad record ends the file.
 *
 * Sequence numbers are not logged: they exist only in memory, to order versions for
 * snapshots, and snapshots do not survive a restart.
 */
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { KvOp } from '../../../core/slots/kv.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX, WAL_RECORD_BYTES_MAX } from './limits.js';
import { KvLimitError } from './errors.js';
import { writeAll } from './files.js';

const RECORD_HEADER_BYTES = 8;
const KIND_PUT = 0;
const KIND_DELETE = 1;

/** One operation decoded from a record; key and value are views into the record. */
export interface LoggedOp {
  key: Buffer;
  /** null for a delete. */
  value: Buffer | null;
}

/** Encodes a batch as one record; refuses a batch that breaks a limit (`KvLimitError`). */
export function encodeRecord(ops: KvOp[]): Buffer {
  if (ops.length > BATCH_OPS_MAX) throw new KvLimitError('BATCH_OPS_MAX', `batch of ${ops.length} operations, at most ${BATCH_OPS_MAX}`);
  let bytes = RECORD_HEADER_BYTES + 4;
  for (const op of ops) {
    if (!(op.key instanceof Uint8Array)) throw new TypeError(`kv.lsm: key must be a Uint8Array`);
    if (op.key.length > KEY_BYTES_MAX) throw new KvLimitError('KEY_BYTES_MAX', `key of ${op.key.length} bytes, at most ${KEY_BYTES_MAX}`);
    bytes += 1 + 4 + op.key.length;
    if (op.type === 'put') {
      if (!(op.value instanceof Uint8Array)) throw new TypeError(`kv.lsm: value must be a Uint8Array`);
      if (op.value.length > VALUE_BYTES_MAX) throw new KvLimitError('VALUE_BYTES_MAX', `value of ${op.value.length} bytes, at most ${VALUE_BYTES_MAX}`);
      bytes += 4 + op.value.length;
    } else if (op.type !== 'del') {
      throw new TypeError(`kv.lsm: operation type must be put or del, got ${String((op as { type: unknown }).type)}`);
    }
  }
  if (bytes - RECORD_HEADER_BYTES > WAL_RECORD_BYTES_MAX) throw new KvLimitError('WAL_RECORD_BYTES_MAX', `batch of ${bytes} bytes, at most ${WAL_RECORD_BYTES_MAX}`);
  const writer = new ByteWriter(bytes);
  writer.u32(bytes - RECORD_HEADER_BYTES).u32(0).u32(ops.length);
  for (const op of ops) {
    writer.u8(op.type === 'put' ? KIND_PUT : KIND_DELETE).sized(op.key);
    if (op.type === 'put') writer.sized(op.value);
  }
  // The writer's buffer is exactly the record's size: take it as it is, no copy.
  const record = writer.view();
  record.writeUInt32LE(crc32(record.subarray(RECORD_HEADER_BYTES), crc32(record.subarray(0, 4))), 4);
  return record;
}

/** The operations of a record (header included); undefined when the payload does not decode to exactly its length. */
export function decodeRecord(record: Buffer): LoggedOp[] | undefined {
  try {
    const reader = new ByteReader(record, RECORD_HEADER_BYTES);
    const count = reader.u32();
    if (count > BATCH_OPS_MAX) return undefined;
    const ops: LoggedOp[] = new Array<LoggedOp>(count);
    for (let i = 0; i < count; i++) {
      const kind = reader.u8();
      const key = reader.sized();
      if (kind === KIND_PUT) ops[i] = { key, value: reader.sized() };
      else if (kind === KIND_DELETE) ops[i] = { key, value: null };
      else return undefined;
    }
    return reader.remaining === 0 ? ops : undefined;
  } catch {
    return undefined;
  }
}

export interface WalContents {
  /** Whole, checked records in log order (each a view including its header). */
  records: Buffer[];
  /** Bytes up to the end of the last good record. */
  validBytes: number;
  fileBytes: number;
}

/** Reads a log file's good records; stops at the first torn or corrupt one. */
export async function readWal(path: string): Promise<WalContents> {
  const file = await readFile(path);
  const records: Buffer[] = [];
  let at = 0;
  while (at + RECORD_HEADER_BYTES <= file.length) {
    const length = file.readUInt32LE(at);
    if (length > WAL_RECORD_BYTES_MAX || at + RECORD_HEADER_BYTES + length > file.length) break;
    const crc = crc32(file.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length), crc32(file.subarray(at, at + 4)));
    if (crc !== file.readUInt32LE(at + 4)) break;
    const record = file.subarray(at, at + RECORD_HEADER_BYTES + length);
    if (decodeRecord(record) === undefined) break;
    records.push(record);
    at += RECORD_HEADER_BYTES + length;
  }
  return { records, validBytes: at, fileBytes: file.length };
}

/** Cuts a log file back to its good records and makes the cut durable. */
export async function truncateWal(path: string, validBytes: number): Promise<void> {
  await truncate(path, validBytes);
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Appends records to one log file. Not safe for concurrent use: the engine's commit loop is its only writer. */
export class WalWriter {
  private constructor(
    readonly number: number,
    readonly path: string,
    private readonly handle: FileHandle,
    /** Bytes in the file. */
    public bytes: number,
  ) {}

  /** Opens for appending (creating it if needed); `bytes` is the file's current length. */
  static async open(path: string, number: number, bytes: number): Promise<WalWriter> {
    return new WalWriter(number, path, await open(path, 'a'), bytes);
  }

  /** Writes the records to the file (the OS has them: they survive a process crash). */
  async append(records: Buffer[]): Promise<void> {
    await writeAll(this.handle, records);
    for (const record of records) this.bytes += record.length;
  }

  /** Makes everything appended so far durable (fdatasync: data and the file length). */
  async sync(): Promise<void> {
    await this.handle.datasync();
  }

  async close(): Promise<void> {
    await this.handle.sync();
    await this.handle.close();
  }
}
