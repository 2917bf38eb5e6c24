/**
 * The manifest: which tables make up the database, newest first, and which log files still
 * hold writes that are in no table. It is the single point where a flush or a compaction
 * takes effect.
 *
 *   MANIFEST = "<crc32 of the JSON, 8 hex digits> <JSON>\n"
 *   JSON     = { formatVersion, nextFileNumber, logNumber, tables: [{ number, bytes }] }
 *
 * It is replaced whole and atomically: write MANIFEST.tmp, fsync it, rename it over
 * MANIFEST, fsync the directory. A crash at any point leaves either the old file or the new
 * one, never a mix, so after a crash during a flush or compaction the database is the old
 * table set or the new one. (LevelDB instead appends version edits to a log named by a
 * CURRENT file; a whole-state file is simpler and small here: tables stay few, see
 * compaction.ts.)
 *
 * `logNumber`: log files numbered below it are fully in tables and may be deleted; the ones
 * at or above it are replayed on open.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MANIFEST_FILE, MANIFEST_TEMP_FILE, syncDirectory } from './files.js';
import { KvCorruptionError } from './errors.js';

export const MANIFEST_FORMAT_VERSION = 1;
/** A manifest larger than this is not one of ours (it lists at most TABLES_MAX tables). */
const MANIFEST_BYTES_MAX = 1024 * 1024;

export interface ManifestTable {
  number: number;
  bytes: number;
}

export interface Manifest {
  formatVersion: number;
  /** The next file number to hand out (a floor: the directory may hold higher numbers after a crash). */
  nextFileNumber: number;
  /** Smallest log number still needed. */
  logNumber: number;
  /** Live tables, newest first. */
  tables: ManifestTable[];
}

export const emptyManifest = (): Manifest => ({ formatVersion: MANIFEST_FORMAT_VERSION, nextFileNumber: 1, logNumber: 0, tables: [] });

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** The manifest in `dir`, or undefined for a new database; a manifest that does not check out is `KvCorruptionError`. */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MANIFEST_BYTES_MAX) throw new KvCorruptionError(path, `${bytes.length} bytes, more than ${MANIFEST_BYTES_MAX}`);
    text = bytes.toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const match = /^([0-9a-f]{8}) (.*)\n$/s.exec(text);
  if (match === null) throw new KvCorruptionError(path, 'not "<crc> <json>\\n"');
  const json = match[2]!;
  if (crc32(Buffer.from(json, 'utf8')) !== parseInt(match[1]!, 16)) throw new KvCorruptionError(path, 'CRC mismatch');
  let parsed: Manifest;
  try {
    parsed = JSON.parse(json) as Manifest;
  } catch (error) {
    throw new KvCorruptionError(path, 'JSON does not parse', { cause: error });
  }
  const tablesOk = Array.isArray(parsed.tables) && parsed.tables.every((table) => isCount(table?.number) && isCount(table?.bytes));
  if (parsed.formatVersion !== MANIFEST_FORMAT_VERSION || !isCount(parsed.nextFileNumber) || !isCount(parsed.logNumber) || !tablesOk) {
    throw new KvCorruptionError(path, 'fields do not match manifest format 1');
  }
  return parsed;
}

/** Replaces the manifest atomically (temp file, fsync, rename, fsync of the directory). */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const json = JSON.stringify(manifest);
  const line = `${crc32(Buffer.from(json, 'utf8')).toString(16).padStart(8, '0')} ${json}\n`;
  const temp = join(dir, MANIFEST_TEMP_FILE);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(line, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, MANIFEST_FILE));
  await syncDirectory(dir);
}
