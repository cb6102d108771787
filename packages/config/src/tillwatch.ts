// Tillwatch's environment variables, grouped by what uses them. Pointing the services at external
// Kafka, registry and ClickHouse needs only these variables.
import { bool, ConfigError, hostPortList, int, oneOf, parseEnv, port, str, throwConfigErrors, url, type Env } from './env.js';

export const DEFAULT_REGISTRY_URL = 'http://127.0.0.1:8081/apis/ccompat/v7';

export function kafkaConfig(env: Env = process.env) {
  const c = parseEnv(
    {
      brokers: { env: 'KAFKA_BROKERS', field: hostPortList(), default: ['127.0.0.1:9092'] },
      clientId: { env: 'KAFKA_CLIENT_ID', field: str(), default: 'tillwatch' },
      ssl: { env: 'KAFKA_SSL', field: bool(), default: false },
      saslMechanism: { env: 'KAFKA_SASL_MECHANISM', field: oneOf(['plain', 'scram-sha-256', 'scram-sha-512'] as const), optional: true },
      saslUsername: { env: 'KAFKA_SASL_USERNAME', field: str(), optional: true },
      saslPassword: { env: 'KAFKA_SASL_PASSWORD', field: str(), optional: true },
      partitions: { env: 'TOPIC_PARTITIONS', field: int(1, 1024), default: 6 },
      replicationFactor: { env: 'TOPIC_REPLICATION_FACTOR', field: int(1, 7), default: 1 },
      /** Prefix for every topic name (tenants, environments, tests); empty = the catalogue's names. */
      topicPrefix: { env: 'TOPIC_PREFIX', field: { expected: 'a topic-name prefix of [A-Za-z0-9._-]', parse: (r: string) => (/^[A-Za-z0-9._-]+$/.test(r) ? r : undefined) }, default: '' },
    },
    env,
  );
  // SASL is all three or none: credentials without a mechanism would connect without SASL, a
  // mechanism without credentials would send empty ones; neither says why the broker then refuses.
  const errors: ConfigError[] = [];
  if (c.saslMechanism === undefined) {
    if (c.saslUsername !== undefined) errors.push(new ConfigError('KAFKA_SASL_MECHANISM', 'plain, scram-sha-256 or scram-sha-512 when KAFKA_SASL_USERNAME is set', undefined));
    else if (c.saslPassword !== undefined) errors.push(new ConfigError('KAFKA_SASL_MECHANISM', 'plain, scram-sha-256 or scram-sha-512 when KAFKA_SASL_PASSWORD is set', undefined));
  } else {
    if (c.saslUsername === undefined) errors.push(new ConfigError('KAFKA_SASL_USERNAME', `a user name with KAFKA_SASL_MECHANISM=${c.saslMechanism}`, undefined));
    if (c.saslPassword === undefined) errors.push(new ConfigError('KAFKA_SASL_PASSWORD', `a password with KAFKA_SASL_MECHANISM=${c.saslMechanism}`, undefined));
  }
  throwConfigErrors(errors);
  return c;
}
export type KafkaConfig = ReturnType<typeof kafkaConfig>;

export function registryConfig(env: Env = process.env) {
  return parseEnv(
    {
      url: { env: 'SCHEMA_REGISTRY_URL', field: url(), default: DEFAULT_REGISTRY_URL },
      username: { env: 'SCHEMA_REGISTRY_USERNAME', field: str(), optional: true },
      password: { env: 'SCHEMA_REGISTRY_PASSWORD', field: str(), optional: true },
    },
    env,
  );
}
export type RegistryConfig = ReturnType<typeof registryConfig>;

export function clickhouseConfig(env: Env = process.env) {
  return parseEnv(
    {
      /** Unset = embedded chDB at `path`; set = HTTP to that server. */
      url: { env: 'CLICKHOUSE_URL', field: url(), optional: true },
      database: { env: 'CLICKHOUSE_DATABASE', field: { expected: 'a database name ([A-Za-z_][A-Za-z0-9_]*)', parse: (r: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(r) ? r : undefined) }, default: 'tillwatch' },
      username: { env: 'CLICKHOUSE_USER', field: str(), optional: true },
      password: { env: 'CLICKHOUSE_PASSWORD', field: str(), optional: true },
      path: { env: 'CLICKHOUSE_PATH', field: str('a directory path'), default: '.stack/data/chdb' },
    },
    env,
  );
}
export type ClickHouseConfig = ReturnType<typeof clickhouseConfig>;

export function serviceConfig(env: Env = process.env, defaults: { httpPort: number }) {
  return parseEnv(
    {
      httpHost: { env: 'HTTP_HOST', field: str('a host or IP to listen on'), default: '127.0.0.1' },
      httpPort: { env: 'HTTP_PORT', field: port(), default: defaults.httpPort },
      logLevel: { env: 'LOG_LEVEL', field: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const), default: 'info' },
      rulesFile: { env: 'TILLWATCH_RULES', field: str('a path to a rules file (.yaml or .json)'), optional: true },
      /** How long a stop (SIGTERM, fatal error) may take before the process exits anyway, non-zero. */
      shutdownTimeoutMs: { env: 'SHUTDOWN_TIMEOUT_MS', field: int(100, 600_000), default: 25_000 },
    },
    env,
  );
}
export type ServiceConfig = ReturnType<typeof serviceConfig>;
