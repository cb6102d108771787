// The environment variables each kind of command reads, for its --help (details: the root README).
export const KAFKA_ENV = [
  '  KAFKA_BROKERS          bootstrap brokers host:port[,host:port] (default 127.0.0.1:9092, the local stack)',
  '  SCHEMA_REGISTRY_URL    Confluent-compatible registry API (default http://127.0.0.1:8081/apis/ccompat/v7)',
  '  TOPIC_PREFIX           prefix of every topic name (default none)',
  '  KAFKA_SSL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD   broker security',
];
export const CLICKHOUSE_ENV = [
  '  CLICKHOUSE_URL         ClickHouse HTTP server; unset = embedded chDB at CLICKHOUSE_PATH',
  '  CLICKHOUSE_PATH        embedded data directory (default .stack/data/chdb)',
  '  CLICKHOUSE_DATABASE    database (default tillwatch); CLICKHOUSE_USER, CLICKHOUSE_PASSWORD',
];
export const SERVICE_ENV = [
  '  HTTP_HOST, HTTP_PORT   where /metrics /healthz /readyz listen',
  '  LOG_LEVEL              trace | debug | info | warn | error | fatal | silent (default info)',
  '  SHUTDOWN_TIMEOUT_MS    a stop taking longer is abandoned, exit 1 (default 25000; after a fatal error 8000 at most)',
];
export const DEPENDENCY_NOTE = 'A dependency that cannot be reached is reported in one line within seconds (which one, its address, how to start it).';

export function envNotes(...groups: string[][]): string[] {
  return ['environment:', ...groups.flat(), '', DEPENDENCY_NOTE];
}
