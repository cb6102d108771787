// The API as a process: parse env, connect ClickHouse, listen. `startApi` is the same without the
// signal handling, for the lead's single-process `npm start`. Fail fast and loud as the other
// services (createServiceLifecycle in @tillwatch/stream): a ClickHouse server that does not answer
// is one line naming it, its address and the fix; a stop that outlasts SHUTDOWN_TIMEOUT_MS is
// abandoned with exit 1.
import { pathToFileURL } from 'node:url';
import { clickhouseConfig, serviceConfig, type Env } from '@tillwatch/config';
import { createClickHouse, migrate, type ClickHouse } from '@tillwatch/clickhouse';
import { checkClickHouseReachable, createServiceLifecycle } from '@tillwatch/stream';
import { clickhouseMigrationsDir } from '@tillwatch/schemas';
import { createLogger, createOpsServer, createRegistry, type Logger } from '@tillwatch/telemetry';
import type { Registry } from 'prom-client';
import { createApp, type ApiApp } from './app.js';
import { rulesBackendFromEnv } from './routes/rules-backend.js';
import { createAuthenticator, generateDevKey } from './auth.js';
import { apiConfig, readModelEnabled } from './config.js';
import { createPollingAlertFeed, type AlertFeed } from './feed.js';
import { createApiMetrics } from './metrics.js';
import { createAlertReadModel } from './read-model/read-model.js';

export interface StartApiOptions {
  /** Environment to read (HTTP_*, LOG_LEVEL, API_*, CLICKHOUSE_*). Default process.env. */
  env?: Env;
  /** A ClickHouse handle to share (one process owns an embedded path). If absent, one is created from CLICKHOUSE_* and migrated, and closed by close(). */
  ch?: ClickHouse;
  /** Live alert source for /stream/alerts (e.g. a Kafka consumer of pos.alerts.v1). Default: ClickHouse polling every API_FEED_POLL_MS. */
  alertFeed?: AlertFeed;
  logger?: Logger;
  metricsRegistry?: Registry;
  /** Override HTTP_HOST / HTTP_PORT (port 0 = random). */
  host?: string;
  port?: number;
  /** Override API_OPS_PORT, where /metrics is served (0 = random). */
  opsPort?: number;
  /** Liveness answered by the ops port's /healthz (runApiMain: false once the process decided to die). Default: always healthy. */
  healthy?: () => boolean;
}

export interface RunningApi {
  /** http://host:port */
  url: string;
  /** http://host:opsPort: /metrics, /healthz, /readyz (not on the public API port). */
  opsUrl: string;
  /** Set when API_KEYS was unset outside production: a generated admin key to print once. */
  devKey?: string;
  app: ApiApp;
  /** Stop listening (ends SSE streams), stop the read model and the polling feed, close the ClickHouse handle if startApi created it. */
  close(): Promise<void>;
}

export async function startApi(options: StartApiOptions = {}): Promise<RunningApi> {
  const env = options.env ?? process.env;
  const svc = serviceConfig(env, { httpPort: 8080 });
  const cfg = apiConfig(env);
  const logger = options.logger ?? createLogger({ service: 'api', level: svc.logLevel });
  const metricsRegistry = options.metricsRegistry ?? createRegistry({ service: 'api' });

  const devEntry = cfg.apiKeys === undefined ? generateDevKey() : undefined;
  const auth = createAuthenticator(cfg.apiKeys ?? [devEntry!]);

  let ownCh: ClickHouse | undefined;
  let ch = options.ch;
  if (!ch) {
    const c = clickhouseConfig(env);
    ownCh = createClickHouse({ url: c.url, path: c.path, database: c.database, username: c.username, password: c.password });
    ch = ownCh;
    try {
      // A server that does not answer (or is no ClickHouse) is the sink's one line, not the client's words.
      if (c.url) await checkClickHouseReachable(ownCh, c.url);
      await migrate(ch, { dir: clickhouseMigrationsDir });
    } catch (e) {
      await ownCh.close();
      throw e;
    }
  }
  const polling = options.alertFeed ? undefined : createPollingAlertFeed({ ch, intervalMs: cfg.feedPollMs, logger });
  const alertFeed = options.alertFeed ?? polling!;

  // Over a ClickHouse server the read model is opt-in (API_READ_MODEL=on): it exists because
  // embedded chDB answers one query at a time.
  const readModel =
    readModelEnabled(cfg, ch.kind)
      ? createAlertReadModel({ ch, metrics: createApiMetrics(metricsRegistry), logger, maxAlerts: cfg.readModelMaxAlerts, rowBytes: cfg.readModelRowBytes, pollMs: cfg.feedPollMs })
      : undefined;
  // Loads in the background: until it is ready, reads go to ClickHouse.
  void readModel?.start();

  const rules = rulesBackendFromEnv(env, logger);
  const app = createApp({
    ch,
    rules,
    ...(readModel ? { readModel } : {}),
    alertFeed,
    auth,
    logger,
    metricsRegistry,
    rateLimit: cfg.rateLimitMax === 0 ? false : { max: cfg.rateLimitMax, timeWindowMs: cfg.rateLimitWindowMs },
    alertsCacheMs: cfg.alertsCacheMs,
    alertsCacheStaleMs: cfg.alertsCacheStaleMs,
    sseHeartbeatMs: cfg.sseHeartbeatMs,
  });
  let ready = false;
  // Prometheus scrapes this port; the public API port serves no /metrics (internal detail, and free
  // of the API's authentication and rate limit).
  const ops = createOpsServer({ registry: metricsRegistry, ready: () => ready, ...(options.healthy ? { healthy: options.healthy } : {}), host: options.host ?? svc.httpHost, port: options.opsPort ?? cfg.opsPort });
  let opsListening = false;
  const close = async () => {
    ready = false;
    if (opsListening) await ops.close();
    await app.close();
    await rules.close();
    await readModel?.close();
    await polling?.close();
    await ownCh?.close();
  };
  try {
    const host = options.host ?? svc.httpHost;
    await app.listen({ host, port: options.port ?? svc.httpPort });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? svc.httpPort);
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const opsUrl = (await ops.listen()).url;
    opsListening = true;
    ready = true;
    logger.info({ url, opsUrl, keys: auth.principals.length, devKey: devEntry !== undefined, readModel: readModel !== undefined }, 'alert API listening');
    return { url, opsUrl, ...(devEntry ? { devKey: devEntry.key } : {}), app, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * `tillwatch api` / `tsx services/api/src/main.ts`: run until SIGTERM/SIGINT; resolves the exit code.
 * A start-up error is one line (`tillwatch api: fatal: ...`) and 1; a stop (close) that outlasts
 * SHUTDOWN_TIMEOUT_MS (default 25 s; set it below the orchestrator's grace period) is abandoned
 * with 1, /healthz on the ops port answering 503 from a fatal error on.
 */
export interface RunApiMainOptions {
  /** Test seam: starts the API (default startApi). */
  start?: (o: StartApiOptions) => Promise<RunningApi>;
  /** Test seam: the process object whose SIGTERM/SIGINT end the run. */
  signals?: Pick<NodeJS.Process, 'once' | 'off'>;
  /** Test seam: where the one-line messages go (default stderr). */
  print?: (line: string) => void;
}

export async function runApiMain(env: Env = process.env, o: RunApiMainOptions = {}): Promise<number> {
  let svc: ReturnType<typeof serviceConfig>;
  try {
    svc = serviceConfig(env, { httpPort: 8080 });
  } catch (e) {
    process.stderr.write(`tillwatch api: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const logger = createLogger({ service: 'api', level: svc.logLevel });
  const life = createServiceLifecycle({ service: 'api', logger, shutdownTimeoutMs: svc.shutdownTimeoutMs, ...(o.signals ? { signals: o.signals } : {}), ...(o.print ? { print: o.print } : {}) });
  const start = o.start ?? startApi;
  let api: RunningApi | undefined;
  return life.run({
    async start() {
      api = await start({ env, logger, healthy: life.healthy });
      process.stdout.write(`Tillwatch alert API: ${api.url}  (docs: ${api.url}/docs, metrics: ${api.opsUrl}/metrics)\n`);
      if (api.devKey) process.stdout.write(`Development admin key (API_KEYS unset): ${api.devKey}\n  curl -H 'x-api-key: ${api.devKey}' ${api.url}/alerts\n`);
    },
    // Stops listening (in-flight requests finish, SSE streams end), the rules follower, the read
    // model, the feed, ClickHouse: all of it within the deadline, or the process exits anyway.
    stop: async () => {
      await api?.close();
    },
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void runApiMain().then((code) => process.exit(code));
}
