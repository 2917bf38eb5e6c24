/**
 * A JetStream call that failed (a timeout while the server purges a long backlog, a leader
 * election, a restart), as the queue's phases answer it: retryable CRAFT_TIMEOUT, not a crash.
 */
import { CraftError } from '../../../core/errors.js';
import { RETRY_AFTER_S } from '../../../core/defaults.js';

export function unavailable(what: string, error: unknown): CraftError {
  if (error instanceof CraftError) return error;
  return new CraftError('CRAFT_TIMEOUT', `${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error, details: { retryAfterS: RETRY_AFTER_S } });
}
