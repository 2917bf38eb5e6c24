/**
 * A tenant's view of the store: every select, series, label-name and label-value lookup also
 * requires `tenant="<id>"` (the label ingestion sets on every series when auth is on), so a query
 * sees its tenant's series only, whatever matchers it brings.
 */
import { TENANT_LABEL } from '../auth/tokens.js';
import type { LabelMatcher } from '../model.js';
import type { Queryable } from '../slots/storage.js';

export function tenantScoped(source: Queryable, tenant: string): Queryable {
  const own: LabelMatcher = { name: TENANT_LABEL, op: '=', value: tenant };
  const scoped = (matchers: LabelMatcher[] | undefined): LabelMatcher[] => [...(matchers ?? []), own];
  return {
    querier(minTimeMs, maxTimeMs) {
      const querier = source.querier(minTimeMs, maxTimeMs);
      return {
        select: (matchers, hints) => querier.select(scoped(matchers), hints),
        series: (matchers) => querier.series(scoped(matchers)),
        labelNames: (matchers) => querier.labelNames(scoped(matchers)),
        labelValues: (name, matchers) => querier.labelValues(name, scoped(matchers)),
        rollup: (matchers, stepMs) => querier.rollup(scoped(matchers), stepMs),
      };
    },
  };
}
