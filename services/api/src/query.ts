// Every ClickHouse read of the API goes through one function: timed by query name, errors mapped
// to the ClickHouse package's classes (a 503 for an unreachable store) and counted.
import { mapClickHouseError, type ClickHouse } from '@tillwatch/clickhouse';
import { TIME_TABLE } from './alert-view.js';
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

/**
 * Whether the time-ordered alerts table (TIME_TABLE: migration 015's `alerts_by_detected_v2`) exists. Asked once and remembered; a
 * failure (ClickHouse down at start) is not remembered, the next call asks again.
 */
export function timeTableDetector(ch: ClickHouse, select: Select): () => Promise<boolean> {
  let known: Promise<boolean> | undefined;
  return () => {
    known ??= select<{ n: number | string }>('read_paths', 'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}', { db: ch.database, t: TIME_TABLE }).then(
      (rows) => Number(rows[0]?.n ?? 0) > 0,
      (e: unknown) => {
        known = undefined;
        throw e;
      },
    );
    return known;
  };
}
