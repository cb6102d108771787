// The API's own environment variables (HTTP_HOST/HTTP_PORT/LOG_LEVEL come from serviceConfig,
// CLICKHOUSE_* from clickhouseConfig). Parsed once at start; a wrong value stops the process with
// a message naming the variable.
import { ConfigError, int, oneOf, parseEnv, port, type Env } from '@tillwatch/config';
import { parseApiKeys, type ApiKeyEntry } from './auth.js';

export interface ApiConfig {
  /** Keys from API_KEYS; undefined = unset (a dev key is generated outside production). */
  apiKeys: ApiKeyEntry[] | undefined;
  /** NODE_ENV=production (or TILLWATCH_ENV=production): API_KEYS becomes mandatory. */
  production: boolean;
  /** Requests per key per window; 0 disables rate limiting. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** TTL of the GET /alerts page cache (and request coalescing); 0 disables. */
  alertsCacheMs: number;
  /** Serve a cached page up to this long past its TTL while it refreshes in the background. */
  alertsCacheStaleMs: number;
  /** Polling interval of the ClickHouse alert feed (fallback when no Kafka feed is wired). */
  feedPollMs: number;
  /** Interval of SSE keep-alive comments. */
  sseHeartbeatMs: number;
  /**
   * API_READ_MODEL: 'on', 'off', or 'auto' (default): on over embedded chDB (one query at a time, the
   * reason the model exists), off over a ClickHouse server (CLICKHOUSE_URL), where it is opt-in.
   */
  readModel: 'on' | 'off' | 'auto';
  /** Alerts the in-memory read model holds (the newest); 0 turns it off (every read queries ClickHouse). */
  readModelMaxAlerts: number;
  /** Bytes of the read model's row arena. */
  readModelRowBytes: number;
  /** API_OPS_PORT: /metrics (and /healthz, /readyz) on their own port, not on the public API port. 0 = any free port. */
  opsPort: number;
}

export function apiConfig(env: Env = process.env): ApiConfig {
  const parsed = parseEnv(
    {
      rateLimitMax: { env: 'API_RATE_LIMIT_MAX', field: int(0, 10_000_000), default: 6000 },
      rateLimitWindowMs: { env: 'API_RATE_LIMIT_WINDOW_MS', field: int(1000, 86_400_000), default: 60_000 },
      alertsCacheMs: { env: 'API_ALERTS_CACHE_MS', field: int(0, 60_000), default: 1000 },
      alertsCacheStaleMs: { env: 'API_ALERTS_CACHE_STALE_MS', field: int(0, 600_000), default: 5000 },
      feedPollMs: { env: 'API_FEED_POLL_MS', field: int(100, 60_000), default: 1000 },
      sseHeartbeatMs: { env: 'API_SSE_HEARTBEAT_MS', field: int(1000, 300_000), default: 15_000 },
      readModel: { env: 'API_READ_MODEL', field: oneOf(['on', 'off', 'auto'] as const), default: 'auto' },
      opsPort: { env: 'API_OPS_PORT', field: port(), default: 9466 },
      readModelMaxAlerts: { env: 'API_READ_MODEL_MAX_ALERTS', field: int(0, 200_000_000), default: 2_000_000 },
      readModelRowsMb: { env: 'API_READ_MODEL_ROWS_MB', field: int(1, 1_048_576), default: 256 },
      nodeEnv: { env: 'NODE_ENV', field: oneOf(['development', 'production', 'test'] as const), default: 'development' },
      tillwatchEnv: { env: 'TILLWATCH_ENV', field: oneOf(['development', 'production', 'test'] as const), optional: true },
    },
    env,
  );
  const production = parsed.nodeEnv === 'production' || parsed.tillwatchEnv === 'production';
  const raw = env['API_KEYS'];
  const apiKeys = raw === undefined || raw.trim() === '' ? undefined : parseApiKeys(raw);
  if (apiKeys === undefined && production) {
    throw new ConfigError('API_KEYS', 'key:role:name entries (mandatory in production; a development key is only generated outside production)', undefined);
  }
  return {
    apiKeys,
    production,
    rateLimitMax: parsed.rateLimitMax,
    rateLimitWindowMs: parsed.rateLimitWindowMs,
    alertsCacheMs: parsed.alertsCacheMs,
    alertsCacheStaleMs: parsed.alertsCacheStaleMs,
    feedPollMs: parsed.feedPollMs,
    sseHeartbeatMs: parsed.sseHeartbeatMs,
    readModel: parsed.readModel,
    readModelMaxAlerts: parsed.readModelMaxAlerts,
    readModelRowBytes: parsed.readModelRowsMb * 1024 * 1024,
    opsPort: parsed.opsPort,
  };
}

/** Whether startApi builds the read model, given the ClickHouse backend it reads. */
export function readModelEnabled(cfg: Pick<ApiConfig, 'readModel' | 'readModelMaxAlerts'>, backend: 'http' | 'embedded'): boolean {
  if (cfg.readModelMaxAlerts === 0 || cfg.readModel === 'off') return false;
  return cfg.readModel === 'on' || backend === 'embedded';
}
