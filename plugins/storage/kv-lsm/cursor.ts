/**
 * A cursor walks one sorted source (a memtable, a table, or a merge of them) in one
 * direction within bounds, one distinct key at a time. It is the single shape that range
 * reads, flushes and compactions are built from.
 *
 * `next()` returns a promise only when it has to read from disk; callers write
 * `const wait = cursor.next(); if (wait) await wait;` so that entries already in memory cost
 * no microtask each.
 */
import type { KvRange } from '../../../core/slots/kv.js';
import { compareBytes } from './bytes.js';

export interface Cursor {
  /** False once the cursor has passed its last entry in range. */
  valid(): boolean;
  /** The current key (a view: the caller copies what it keeps). Only when valid. */
  key(): Uint8Array;
  /** The current value; null is a tombstone. Only when valid. */
  value(): Uint8Array | null;
  /** Moves to the next distinct key in the cursor's direction. */
  next(): void | Promise<void>;
}

export interface Bound {
  key: Uint8Array;
  inclusive: boolean;
}

/** A key interval; either end may be open. */
export interface Bounds {
  lower?: Bound;
  upper?: Bound;
}

/** The bounds of a range read: `gte`/`lte` take precedence over `gt`/`lt`, as in LevelDB. */
export function boundsOf(range: KvRange): Bounds {
  const bounds: Bounds = {};
  if (range.gte !== undefined) bounds.lower = { key: range.gte, inclusive: true };
  else if (range.gt !== undefined) bounds.lower = { key: range.gt, inclusive: false };
  if (range.lte !== undefined) bounds.upper = { key: range.lte, inclusive: true };
  else if (range.lt !== undefined) bounds.upper = { key: range.lt, inclusive: false };
  return bounds;
}

export function aboveLower(key: Uint8Array, lower: Bound | undefined): boolean {
  if (lower === undefined) return true;
  const order = compareBytes(key, lower.key);
  return order > 0 || (order === 0 && lower.inclusive);
}

export function belowUpper(key: Uint8Array, upper: Bound | undefined): boolean {
  if (upper === undefined) return true;
  const order = compareBytes(key, upper.key);
  return order < 0 || (order === 0 && upper.inclusive);
}

export function inBounds(key: Uint8Array, bounds: Bounds): boolean {
  return aboveLower(key, bounds.lower) && belowUpper(key, bounds.upper);
}

/** Whether [smallest, largest] can meet the bounds at all. */
export function overlaps(smallest: Uint8Array, largest: Uint8Array, bounds: Bounds): boolean {
  return belowUpper(smallest, bounds.upper) && aboveLower(largest, bounds.lower);
}

/** A cursor over nothing. */
export const EMPTY_CURSOR: Cursor = {
  valid: () => false,
  key: () => {
    throw new Error('empty cursor has no key');
  },
  value: () => {
    throw new Error('empty cursor has no value');
  },
  next: () => undefined,
};
