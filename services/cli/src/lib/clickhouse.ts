import { clickhouseConfig, type Env } from '@tillwatch/config';
import { createClickHouse, type ClickHouse } from '@tillwatch/clickhouse';

/** HTTP to CLICKHOUSE_URL when set, otherwise the embedded engine at CLICKHOUSE_PATH (one process per path). */
export function openClickHouse(env: Env = process.env): ClickHouse {
  const c = clickhouseConfig(env);
  return createClickHouse({ url: c.url, path: c.path, database: c.database, username: c.username, password: c.password });
}
