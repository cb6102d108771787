// `tillwatch sink`: the sink as a production process, configured by environment variables.
import { clickhouseConfig, kafkaConfig, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import { createClickHouse, migrate } from '@tillwatch/clickhouse';
import { clickhouseMigrationsDir, topicNames } from '@tillwatch/schemas';
import { createKafka, createRegistryClient } from '@tillwatch/stream';
import { createLogger, createOpsServer, createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createSink } from './sink.js';

export async function runSinkMain(env: Env = process.env): Promise<number> {
  const svc = serviceConfig(env, { httpPort: 9465 });
  const chCfg = clickhouseConfig(env);
  const logger = createLogger({ service: 'sink', level: svc.logLevel });
  const ch = createClickHouse({ url: chCfg.url, path: chCfg.path, database: chCfg.database, username: chCfg.username, password: chCfg.password });
  await migrate(ch, { dir: clickhouseMigrationsDir });
  const promRegistry = createRegistry({ service: 'sink' });
  const kcfg = kafkaConfig(env);
  const sink = createSink({
    kafka: createKafka({ config: kcfg, logger, clientId: 'tillwatch-sink' }),
    topics: topicNames(kcfg.topicPrefix),
    registry: createRegistryClient(registryConfig(env)),
    ch,
    metrics: createSinkMetrics(promRegistry),
    logger,
    groupId: env.SINK_GROUP_ID || 'tillwatch-sink',
  });
  const ops = createOpsServer({ registry: promRegistry, ready: () => sink.ready(), host: svc.httpHost, port: svc.httpPort });
  await ops.listen();
  await sink.start();
  return new Promise<number>((resolve) => {
    const shutdown = () =>
      void sink
        .stop()
        .then(() => ch.close())
        .then(() => ops.close())
        .then(() => resolve(0), (err: unknown) => {
          logger.error({ err }, 'sink stop failed');
          resolve(1);
        });
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
}
