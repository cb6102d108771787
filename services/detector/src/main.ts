// `tillwatch detector`: the detector as a production process, configured by environment variables.
// Connects, listens on /metrics /healthz /readyz, and on SIGTERM/SIGINT finishes the batch in
// flight, commits, leaves the group and exits 0.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { bool, kafkaConfig, parseEnv, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import { topicNames } from '@tillwatch/schemas';
import { defaultRulesConfig, loadRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { createKafka, createRegistryClient } from '@tillwatch/stream';
import { createDetectorMetrics, createLogger, createOpsServer, createRegistry } from '@tillwatch/telemetry';
import { createDetector } from './detector.js';
import { createRulesMetrics } from './live-rules.js';

export function loadRules(path: string | undefined): RulesConfig {
  if (!path) return defaultRulesConfig();
  const text = readFileSync(path, 'utf8');
  return loadRulesConfig(text, extname(path) === '.json' ? 'json' : 'yaml');
}

export async function runDetectorMain(env: Env = process.env): Promise<number> {
  const svc = serviceConfig(env, { httpPort: 9464 });
  const logger = createLogger({ service: 'detector', level: svc.logLevel });
  const kcfg = kafkaConfig(env);
  const own = parseEnv({ wallClockTimers: { env: 'DETECTOR_WALL_CLOCK_TIMERS', field: bool(), default: true } }, env);
  const kafka = createKafka({ config: kcfg, logger, clientId: 'tillwatch-detector' });
  const names = topicNames(kcfg.topicPrefix);
  const registry = createRegistryClient(registryConfig(env));
  const promRegistry = createRegistry({ service: 'detector' });
  const metrics = createDetectorMetrics(promRegistry);
  let failWith: ((e: Error) => void) | undefined;
  const detector = createDetector({ onFatal: (e) => failWith?.(e), kafka, registry, rules: loadRules(svc.rulesFile), metrics, logger, groupId: env.DETECTOR_GROUP_ID || 'tillwatch-detector', topics: { ...names, changelog: names.detectorChangelog }, wallClockTimers: own.wallClockTimers, liveRules: { topic: names.rules, metrics: createRulesMetrics(promRegistry) } });
  const ops = createOpsServer({ registry: promRegistry, ready: () => ({ ready: detector.ready(), detail: { partitions: detector.assignedPartitions() } }), host: svc.httpHost, port: svc.httpPort });
  const { url } = await ops.listen();
  logger.info({ metrics: `${url}/metrics` }, 'detector ops endpoints listening');
  await detector.start();
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'stopping detector: finishing the batch in flight');
      void detector
        .stop()
        .then(() => ops.close())
        .then(() => resolve(0), (err: unknown) => {
          logger.error({ err }, 'detector stop failed');
          resolve(1);
        });
    };
    failWith = (e) => {
      logger.fatal({ err: e }, 'detector cannot continue');
      console.error(`tillwatch detector: fatal: ${e.message}`);
      // The ops server too: left open it keeps the process alive (and /healthz green) after a fatal error.
      void detector
        .stop()
        .catch((err: unknown) => logger.error({ err }, 'detector stop failed'))
        .then(() => ops.close())
        .finally(() => resolve(1));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}
