// `tillwatch sink`: the sink as a production process, configured by environment variables.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { loadRulesConfig } from '@tillwatch/rules';
import { clickhouseConfig, kafkaConfig, parseAll, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import { createClickHouse, migrate } from '@tillwatch/clickhouse';
import { clickhouseMigrationsDir, defaultGroupId, topicNames } from '@tillwatch/schemas';
import { checkClickHouseReachable, checkStreamDependencies, createKafka, createRegistryClient, createServiceLifecycle } from '@tillwatch/stream';
import { createLogger, createOpsServer, createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createRulesMetrics } from '@tillwatch/rules-live';
import { createSink } from './sink.js';

export async function runSinkMain(env: Env = process.env): Promise<number> {
  // Every wrong variable of every group in one error, before anything is opened.
  const cfg = parseAll({ svc: (e) => serviceConfig(e, { httpPort: 9465 }), clickhouse: clickhouseConfig, kafka: kafkaConfig, registry: registryConfig }, env);
  const { svc, clickhouse: chCfg, kafka: kcfg } = cfg;
  const logger = createLogger({ service: 'sink', level: svc.logLevel });
  const registry = createRegistryClient(cfg.registry);
  const promRegistry = createRegistry({ service: 'sink' });
  const life = createServiceLifecycle({ service: 'sink', logger, shutdownTimeoutMs: svc.shutdownTimeoutMs });
  const ch = createClickHouse({ url: chCfg.url, path: chCfg.path, database: chCfg.database, username: chCfg.username, password: chCfg.password });
  // As the detector: a FatalError (here ClickHouse refusing the statement, e.g. a missing table)
  // stops the sink, prints one line and exits 1; the sink has already logged it with the details.
  // Validation bound shared with the detector (TILLWATCH_RULES, engine.max_clock_skew).
  const maxClockSkewMs = svc.rulesFile ? loadRulesConfig(readFileSync(svc.rulesFile, 'utf8'), extname(svc.rulesFile) === '.json' ? 'json' : 'yaml').engine.max_clock_skew : undefined;
  const sink = createSink({
    ...(maxClockSkewMs !== undefined ? { maxClockSkewMs } : {}),
    kafka: createKafka({ config: kcfg, logger, service: 'sink' }),
    topics: topicNames(kcfg.topicPrefix),
    registry,
    ch,
    metrics: createSinkMetrics(promRegistry),
    logger,
    groupId: env.SINK_GROUP_ID || defaultGroupId('sink', kcfg.topicPrefix),
    // engine.max_clock_skew of the rules version in force, as the detector (pos.rules.v1; the file above until it holds one).
    liveRules: { topic: topicNames(kcfg.topicPrefix).rules, metrics: createRulesMetrics(promRegistry) },
    onFatal: (e) => life.fail(e),
  });
  // /healthz turns 503 the moment a fatal error is seen, while the stop is still running.
  const ops = createOpsServer({ registry: promRegistry, healthy: life.healthy, ready: () => sink.ready(), host: svc.httpHost, port: svc.httpPort });
  try {
    await ops.listen();
  } catch (e) {
    await ch.close();
    throw e;
  }
  return life.run({
    async start() {
      // Absent dependencies are one line within seconds each, all probed before anything retries.
      await Promise.all([
        chCfg.url ? checkClickHouseReachable(ch, chCfg.url) : Promise.resolve(),
        checkStreamDependencies({ kafka: kcfg, registry }),
      ]);
      await migrate(ch, { dir: clickhouseMigrationsDir });
      await sink.start();
    },
    stop: () => sink.stop(),
    close: async () => {
      await ch.close();
      await ops.close();
    },
  });
}
