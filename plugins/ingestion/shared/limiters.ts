/** Rate limiter choices of the phases, from the configured limit. */
import { availableParallelism } from 'node:os';
import { SharedRateLimiter } from './shared-limiter.js';
import { SlidingWindowLimiter, unlimited, type RateLimiter } from '../../../core/ingestion/rate-limit.js';
import type { IngestionLimits } from '../../../core/slots/ingestion.js';

/** Lock stripes of the sharded limiter (phase 4 on). */
export const LIMITER_SHARDS = 16;
/** Bytes the async writer buffers before answering 503. */
export const WRITER_BUFFERED_BYTES_MAX = 64 * 1024 * 1024;

/** Shared state for worker threads: one global lock (`shards` = 1) or striped locks. */
export const sharedLimiter = (limits: IngestionLimits, shards: number): SharedRateLimiter | null =>
  limits.rateLimitPerSecond > 0 ? SharedRateLimiter.create(limits.rateLimitPerSecond, shards) : null;

/** Limiter state owned by one event loop: no locks at all. */
export const loopLimiter = (limits: IngestionLimits): RateLimiter => (limits.rateLimitPerSecond > 0 ? new SlidingWindowLimiter(limits.rateLimitPerSecond) : unlimited);

/** Worker threads of the pool phases: configured, or one per core. */
export const poolSize = (limits: IngestionLimits): number => (limits.workers > 0 ? limits.workers : availableParallelism());
