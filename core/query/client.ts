/**
 * How other actors and the CLI ask the query actor: `craft.query.run` with a JSON
 * `QueryRequest`, answered with a `QueryResult` whose non-finite values travel as strings.
 */
import type { Bus } from '../nats/bus.js';
import { SUBJECTS } from '../subjects.js';
import { decodeValue, encodeValue } from '../model.js';
import type { QueryRequest, QueryResult } from '../slots/query.js';
import { encodeSeriesValues } from '../storage/client.js';

export function encodeQueryResult(result: QueryResult): unknown {
  switch (result.resultType) {
    case 'matrix':
      return { resultType: 'matrix', result: encodeSeriesValues(result.result) };
    case 'vector':
      return { resultType: 'vector', result: result.result.map((r) => ({ ...r, value: encodeValue(r.value) })) };
    case 'scalar':
      return { resultType: 'scalar', result: { ...result.result, value: encodeValue(result.result.value) } };
  }
}

const num = (v: unknown): number => (typeof v === 'number' ? v : decodeValue(v));

export function decodeQueryResult(wire: QueryResult): QueryResult {
  switch (wire.resultType) {
    case 'matrix':
      return { resultType: 'matrix', result: wire.result.map((s) => ({ ...s, values: s.values.map(num) })) };
    case 'vector':
      return { resultType: 'vector', result: wire.result.map((r) => ({ ...r, value: num(r.value) })) };
    case 'scalar':
      return { resultType: 'scalar', result: { ...wire.result, value: num(wire.result.value) } };
  }
}

export class QueryClient {
  constructor(private readonly bus: Bus) {}

  async query(request: QueryRequest, timeoutMs = 30_000): Promise<QueryResult> {
    return decodeQueryResult(await this.bus.request<QueryResult>(SUBJECTS.queryRun, request, { timeoutMs }));
  }
}
