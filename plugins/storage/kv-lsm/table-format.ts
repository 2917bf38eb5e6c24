/**
 * The SSTable file layout, shared by the writer and the reader:
 *
 *   [data block 0] … [data block n-1]   sorted entries, each block with its own CRC (block.ts)
 *   [bloom filter]                      bloom.ts
 *   [index]                             sparse index: one entry per block, plus table facts
 *   [footer, 48 bytes]                  where the bloom filter and the index are, their CRCs
 *
 *   index  = [blockCount u32] ([offset u64][length u32][firstKey: u32 length, bytes])*
 *            [smallest key: sized][largest key: sized][entries u64][tombstones u64]
 *   footer = [bloomOffset u64][bloomLength u32][bloomCrc u32]
 *            [indexOffset u64][indexLength u32][indexCrc u32]
 *            [formatVersion u32][footerCrc u32 = CRC32 of the 36 bytes before it]
 *            [magic, 8 bytes "SCLSMT01"]
 *
 * A table is written once, front to back, and never changed: the footer comes last, so a
 * table cut short by a crash has no valid footer (and is not in the manifest anyway).
 */
import { crc32 } from 'node:zlib';
import { ByteReader, ByteWriter } from './bytes.js';

export const FOOTER_BYTES = 48;
export const TABLE_FORMAT_VERSION = 1;
export const TABLE_MAGIC = Buffer.from('SCLSMT01', 'latin1');
const FOOTER_CRC_AT = 36;

export interface Footer {
  bloomOffset: number;
  bloomLength: number;
  bloomCrc: number;
  indexOffset: number;
  indexLength: number;
  indexCrc: number;
}

export function encodeFooter(footer: Footer): Buffer {
  const writer = new ByteWriter(FOOTER_BYTES);
  writer.u64(footer.bloomOffset).u32(footer.bloomLength).u32(footer.bloomCrc);
  writer.u64(footer.indexOffset).u32(footer.indexLength).u32(footer.indexCrc);
  writer.u32(TABLE_FORMAT_VERSION);
  writer.u32(crc32(writer.view()));
  writer.bytes(TABLE_MAGIC);
  return writer.take();
}

/** The footer, or the reason the last 48 bytes are not one. */
export function decodeFooter(buffer: Buffer): Footer | string {
  if (buffer.length !== FOOTER_BYTES) return `footer of ${buffer.length} bytes`;
  if (!buffer.subarray(FOOTER_BYTES - TABLE_MAGIC.length).equals(TABLE_MAGIC)) return 'bad magic';
  if (crc32(buffer.subarray(0, FOOTER_CRC_AT)) !== buffer.readUInt32LE(FOOTER_CRC_AT)) return 'footer CRC mismatch';
  const reader = new ByteReader(buffer);
  const footer: Footer = { bloomOffset: reader.u64(), bloomLength: reader.u32(), bloomCrc: reader.u32(), indexOffset: reader.u64(), indexLength: reader.u32(), indexCrc: reader.u32() };
  const version = reader.u32();
  if (version !== TABLE_FORMAT_VERSION) return `format version ${version}`;
  return footer;
}

/** What the index says about a table: where each block is and its first key, plus the table's key range and counts. */
export interface TableIndex {
  offsets: number[];
  lengths: number[];
  firstKeys: Uint8Array[];
  smallest: Uint8Array;
  largest: Uint8Array;
  entries: number;
  tombstones: number;
}

export function encodeIndex(index: TableIndex): Buffer {
  const writer = new ByteWriter(64 + index.offsets.length * 32);
  writer.u32(index.offsets.length);
  for (let i = 0; i < index.offsets.length; i++) writer.u64(index.offsets[i]!).u32(index.lengths[i]!).sized(index.firstKeys[i]!);
  writer.sized(index.smallest).sized(index.largest).u64(index.entries).u64(index.tombstones);
  return writer.take();
}

export function decodeIndex(buffer: Buffer): TableIndex {
  const reader = new ByteReader(buffer);
  const count = reader.u32();
  const index: TableIndex = { offsets: [], lengths: [], firstKeys: [], smallest: new Uint8Array(0), largest: new Uint8Array(0), entries: 0, tombstones: 0 };
  for (let i = 0; i < count; i++) {
    index.offsets.push(reader.u64());
    index.lengths.push(reader.u32());
    index.firstKeys.push(reader.sized());
  }
  index.smallest = reader.sized();
  index.largest = reader.sized();
  index.entries = reader.u64();
  index.tombstones = reader.u64();
  if (reader.remaining !== 0) throw new RangeError(`${reader.remaining} bytes after the index`);
  return index;
}
