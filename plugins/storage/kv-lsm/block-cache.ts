/**
 * A least-recently-used cache of decoded blocks, shared by the tables of one engine and
 * bounded in bytes. Point reads fill it; range reads and compactions only look in it (a scan
 * would otherwise evict the blocks point reads keep coming back to, as LevelDB's
 * `fill_cache = false` avoids).
 *
 * Keys are "<table number>/<block index>"; table numbers are never reused, so a deleted
 * table's blocks are never served again, they only age out.
 */
import type { DecodedBlock } from './block.js';

export class BlockCache {
  /** A Map iterates in insertion order: re-inserting on a hit makes its first entry the least recently used. */
  private readonly blocks = new Map<string, DecodedBlock>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly bytesMax: number) {}

  get(table: number, block: number): DecodedBlock | undefined {
    const key = `${table}/${block}`;
    const found = this.blocks.get(key);
    if (found === undefined) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    this.blocks.delete(key);
    this.blocks.set(key, found);
    return found;
  }

  set(table: number, block: number, decoded: DecodedBlock): void {
    if (decoded.bytes > this.bytesMax) return;
    const key = `${table}/${block}`;
    const previous = this.blocks.get(key);
    if (previous !== undefined) {
      this.bytes -= previous.bytes;
      this.blocks.delete(key);
    }
    this.blocks.set(key, decoded);
    this.bytes += decoded.bytes;
    for (const [oldest, block] of this.blocks) {
      if (this.bytes <= this.bytesMax) break;
      this.blocks.delete(oldest);
      this.bytes -= block.bytes;
    }
  }
}
