/**
 * The engine's directory: what its files are called and the few file-system steps that
 * durability rests on.
 *
 *   000007.wal      write-ahead log number 7
 *   000012.sst      SSTable number 12
 *   MANIFEST        the live table set (manifest.ts)
 *   MANIFEST.tmp    a manifest being written; never read
 *
 * Numbers come from one counter, so a file number says which of two files is newer.
 * A new file's name is only durable once the directory is fsynced: the engine does that
 * after creating a log file and after renaming a manifest into place.
 */
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export const MANIFEST_FILE = 'MANIFEST';
export const MANIFEST_TEMP_FILE = 'MANIFEST.tmp';
const NUMBER_DIGITS = 6;
const FILE_PATTERN = /^(\d+)\.(wal|sst)$/;

export const walFileName = (number: number): string => `${String(number).padStart(NUMBER_DIGITS, '0')}.wal`;
export const tableFileName = (number: number): string => `${String(number).padStart(NUMBER_DIGITS, '0')}.sst`;

export interface NumberedFile {
  kind: 'wal' | 'sst';
  number: number;
  name: string;
}

/** The numbered files in `dir`, ascending by number. */
export async function listNumberedFiles(dir: string): Promise<NumberedFile[]> {
  const files: NumberedFile[] = [];
  for (const name of await readdir(dir)) {
    const match = FILE_PATTERN.exec(name);
    if (match !== null) files.push({ kind: match[2] as 'wal' | 'sst', number: Number(match[1]), name });
  }
  return files.sort((a, b) => a.number - b.number);
}

/** Makes the directory's entries (created, renamed, deleted files) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes every buffer at the file's current position, continuing after a short write. */
export async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  const first = (await handle.writev(buffers)).bytesWritten;
  if (first === total) return;
  const rest = Buffer.concat(buffers).subarray(first);
  for (let done = 0; done < rest.length; ) done += (await handle.write(rest, done)).bytesWritten;
}

