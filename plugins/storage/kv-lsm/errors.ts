/**
 * The failures of the LSM engine, one class each (with `name`, and `cause` when there is one),
 * so that callers match on `name` rather than on message text.
 */

/** Returned when the engine, or the snapshot or iteration read through, is closed (or never opened). */
export class KvClosedError extends Error {
  override readonly name = 'KvClosedError';
  constructor(what: string) {
    super(`kv.lsm: ${what} is closed`);
  }
}

/** Returned when a batch breaks a named limit (key or value too long, too many operations). */
export class KvLimitError extends Error {
  override readonly name = 'KvLimitError';
  constructor(
    readonly limit: string,
    message: string,
  ) {
    super(`kv.lsm: ${message} (limit ${limit})`);
  }
}

/**
 * Returned when a file the engine wrote does not read back as written (CRC, magic or length
 * mismatch) in a place recovery cannot cut off: a table, the manifest. A torn WAL tail is not
 * this error; recovery truncates it.
 */
export class KvCorruptionError extends Error {
  override readonly name = 'KvCorruptionError';
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`kv.lsm: ${file}: ${message}`, options);
  }
}

/**
 * Returned for every write after a background flush, a compaction or a log write failed:
 * the engine no longer knows what is on disk, so it stops accepting writes until reopened.
 */
export class KvBackgroundError extends Error {
  override readonly name = 'KvBackgroundError';
  constructor(cause: unknown) {
    super(`kv.lsm: a background write failed, reopen the engine: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/** A broken invariant: a bug, never an operating condition. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`kv.lsm invariant broken: ${message}`);
}
