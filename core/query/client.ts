/**
 * How other actors and the CLI ask the query actor: `craft.query.run` with a JSON
 * `QueryRequest`, answered with a `QueryResult` whose non-finite values travel as strings.
 */
import type { Bus } from '../nats/bus.js';
import { SUBJECTS } from '../subjects.js';
import { decodeValue, encodeValue } from '../model.js';
import type { QueryPlan, QueryRequest, QueryResult } from '../slots/query.js';
import { encodeSeriesValues } from '../storage/client.js';
import { chunkSeries, mergeSeriesParts } from '../series-chunks.js';

export function encodeQueryResult(result: QueryResult): unknown {
  switch (result.resultType) {
    case 'matrix':
      return { resultType: 'matrix', result: encodeSeriesValues(result.result) };
    case 'vector':
      return { resultType: 'vector', result: result.result.map((r) => ({ ...r, value: encodeValue(r.value) })) };
    case 'scalar':
      return { resultType: 'scalar', result: { ...result.result, value: encodeValue(result.result.value) } };
    case 'string':
      return result;
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : decodeValue(v));

export function decodeQueryResult(wire: QueryResult): QueryResult {
  switch (wire.resultType) {
    case 'matrix':
      return { resultType: 'matrix', result: wire.result.map((s) => ({ ...s, values: Float64Array.from(s.values as ArrayLike<unknown>, num) })) };
    case 'vector':
      return { resultType: 'vector', result: wire.result.map((r) => ({ ...r, value: num(r.value) })) };
    case 'scalar':
      return { resultType: 'scalar', result: { ...wire.result, value: num(wire.result.value) } };
    case 'string':
      return wire;
  }
}

/** A result with what the answer may lack (storage members gone), as the query API's `warnings`. */
export type WarnedQueryResult = QueryResult & { warnings?: string[] };

/**
 * Splits a result into parts that each fit one NATS message (`craft.query.run` answers in
 * parts, like `craft.storage.select`): series for a matrix, entries for a vector. Warnings
 * travel in the first part.
 */
export function queryResultParts(result: QueryResult, warnings: string[] = []): unknown[] {
  const parts = resultParts(result);
  return warnings.length === 0 ? parts : [{ ...(parts[0] as object), warnings }, ...parts.slice(1)];
}

function resultParts(result: QueryResult): unknown[] {
  switch (result.resultType) {
    case 'matrix':
      return chunkSeries(result.result).map((part) => encodeQueryResult({ resultType: 'matrix', result: part }));
    case 'vector': {
      const parts: unknown[] = [];
      for (let i = 0; i < result.result.length || i === 0; i += VECTOR_ENTRIES_PER_PART) {
        parts.push(encodeQueryResult({ resultType: 'vector', result: result.result.slice(i, i + VECTOR_ENTRIES_PER_PART) }));
      }
      return parts;
    }
    case 'scalar':
    case 'string':
      return [encodeQueryResult(result)];
  }
}

const VECTOR_ENTRIES_PER_PART = 2_000;

export function mergeQueryParts(parts: WarnedQueryResult[]): WarnedQueryResult {
  const first = parts[0];
  if (first === undefined) return { resultType: 'vector', result: [] };
  const warned = first.warnings === undefined ? {} : { warnings: first.warnings };
  if (first.resultType === 'matrix') return { resultType: 'matrix', result: mergeSeriesParts(parts.map((p) => (p as typeof first).result)), ...warned };
  if (first.resultType === 'vector') return { resultType: 'vector', result: parts.flatMap((p) => (p as typeof first).result), ...warned };
  return first;
}

export class QueryClient {
  constructor(private readonly bus: Bus) {}

  explain(request: QueryRequest, timeoutMs = 30_000): Promise<QueryPlan> {
    return this.bus.request<QueryPlan>(SUBJECTS.queryExplain, request, { timeoutMs });
  }

  /** The result, with `warnings` when storage members that went away are missing from it. */
  async query(request: QueryRequest, timeoutMs = 30_000): Promise<WarnedQueryResult> {
    const merged = mergeQueryParts(await this.bus.requestParts<WarnedQueryResult>(SUBJECTS.queryRun, request, { timeoutMs }));
    const result: WarnedQueryResult = decodeQueryResult(merged);
    return merged.warnings === undefined ? result : { ...result, warnings: merged.warnings };
  }
}
