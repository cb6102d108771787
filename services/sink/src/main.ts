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
  // As the detector: a FatalError (here ClickHouse refusing the statement, e.g. a missing table)
  // stops the sink, prints one line and exits 1; the sink has already logged it with the details.
  let fatal: Error | undefined;
  let failWith: ((e: Error) => void) | undefined;
  const sink = createSink({
    kafka: createKafka({ config: kcfg, logger, clientId: 'tillwatch-sink' }),
    topics: topicNames(kcfg.topicPrefix),
    registry: createRegistryClient(registryConfig(env)),
    ch,
    metrics: createSinkMetrics(promRegistry),
    logger,
    groupId: env.SINK_GROUP_ID || 'tillwatch-sink',
    onFatal: (e) => {
      fatal ??= e;
      failWith?.(e);
    },
  });
  const ops = createOpsServer({ registry: promRegistry, ready: () => sink.ready(), host: svc.httpHost, port: svc.httpPort });
  await ops.listen();
  await sink.start();
  return new Promise<number>((resolve) => {
    let settled = false;
    // Leaves the group and closes what keeps the process alive, then resolves with `code`.
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      void sink
        .stop()
        .then(() => ch.close())
        .then(() => ops.close())
        .then(() => resolve(code), (err: unknown) => {
          logger.error({ err }, 'sink stop failed');
          resolve(1);
        });
    };
    failWith = (e) => {
      console.error(`tillwatch sink: fatal: ${e.message}`);
      finish(1);
    };
    const shutdown = () => finish(fatal ? 1 : 0);
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
    if (fatal) failWith(fatal);
  });
}
