// Every ClickHouse read of the API goes through one function: timed by query name, errors mapped
// to the ClickHouse package's classes (a 503 for an unreachable store) and counted.
import { mapClickHouseError, type ClickHouse } from '@tillwatch/clickhouse';
import type { ApiMetrics } from './metrics.js';

export type Select = <T>(name: string, query: string, params?: Record<string, unknown>) => Promise<T[]>;

export function createSelect(ch: ClickHouse, metrics: ApiMetrics): Select {
  return async <T>(name: string, query: string, params: Record<string, unknown> = {}): Promise<T[]> => {
    const end = metrics.queries.startTimer({ query: name });
    try {
      const rs = await ch.client.query({ query, query_params: params, format: 'JSONEachRow' });
      return await rs.json<T>();
    } catch (e) {
      const mapped = mapClickHouseError(e);
      metrics.queryErrors.inc({ query: name, kind: 'kind' in mapped ? String((mapped as { kind: unknown }).kind) : 'other' });
      throw mapped;
    } finally {
      end();
    }
  };
}
