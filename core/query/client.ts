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

/**
 * Splits a result into parts that each fit one NATS message (`craft.query.run` answers in
 * parts, like `craft.storage.select`): series for a matrix, entries for a vector.
 */
export function queryResultParts(result: QueryResult): unknown[] {
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

export function mergeQueryParts(parts: QueryResult[]): QueryResult {
  const first = parts[0];
  if (first === undefined) return { resultType: 'vector', result: [] };
  if (first.resultType === 'matrix') return { resultType: 'matrix', result: mergeSeriesParts(parts.map((p) => (p as typeof first).result)) };
  if (first.resultType === 'vector') return { resultType: 'vector', result: parts.flatMap((p) => (p as typeof first).result) };
  return first;
}

export class QueryClient {
  constructor(private readonly bus: Bus) {}

  explain(request: QueryRequest, timeoutMs = 30_000): Promise<QueryPlan> {
    return this.bus.request<QueryPlan>(SUBJECTS.queryExplain, request, { timeoutMs });
  }

  async query(request: QueryRequest, timeoutMs = 30_000): Promise<QueryResult> {
    const parts = await this.bus.requestParts<QueryResult>(SUBJECTS.queryRun, request, { timeoutMs });
    return decodeQueryResult(mergeQueryParts(parts));
  }
}
