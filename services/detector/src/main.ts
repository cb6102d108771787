// `tillwatch detector`: the detector as a production process, configured by environment variables.
// Connects, listens on /metrics /healthz /readyz, and on SIGTERM/SIGINT finishes the batch in
// flight, commits, leaves the group and exits 0. A fatal error (at start: Kafka or the registry
// unreachable; at run time: onFatal) prints one line, turns /healthz 503 and exits 1; a stop that
// outlasts SHUTDOWN_TIMEOUT_MS is abandoned with exit 1 (createServiceLifecycle in @tillwatch/stream).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { bool, int, kafkaConfig, parseAll, parseEnv, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import { defaultGroupId, topicNames } from '@tillwatch/schemas';
import { defaultRulesConfig, loadRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { checkStreamDependencies, createKafka, createRegistryClient, createServiceLifecycle } from '@tillwatch/stream';
import { createDetectorMetrics, createLogger, createOpsServer, createRegistry } from '@tillwatch/telemetry';
import { createDetector, DEFAULT_SESSION_TIMEOUT_MS } from './detector.js';
import { createRulesMetrics } from './live-rules.js';

export function loadRules(path: string | undefined): RulesConfig {
  if (!path) return defaultRulesConfig();
  const text = readFileSync(path, 'utf8');
  return loadRulesConfig(text, extname(path) === '.json' ? 'json' : 'yaml');
}

export async function runDetectorMain(env: Env = process.env): Promise<number> {
  // Every wrong variable of every group in one error, before anything is opened.
  const cfg = parseAll(
    {
      svc: (e) => serviceConfig(e, { httpPort: 9464 }),
      kafka: kafkaConfig,
      registry: registryConfig,
      own: (e) =>
        parseEnv(
          {
            wallClockTimers: { env: 'DETECTOR_WALL_CLOCK_TIMERS', field: bool(), default: true },
            stage: { env: 'DETECTOR_STAGE', field: bool(), default: true },
            // How far a quiet partition's stage watermark trails its clock (services/stage/README.md, "Latency").
            stageGraceMs: { env: 'DETECTOR_STAGE_GRACE_MS', field: int(0, 600_000), default: 5000 },
            // The broker refuses a session outside group.min/max.session.timeout.ms (6 s to 30 min by default).
            changelogFormat: { env: 'DETECTOR_CHANGELOG_FORMAT', field: int(1, 2), default: 2 },
            sessionTimeoutMs: { env: 'DETECTOR_SESSION_TIMEOUT_MS', field: int(1_000, 1_800_000), default: DEFAULT_SESSION_TIMEOUT_MS },
          },
          e,
        ),
    },
    env,
  );
  const { svc, kafka: kcfg } = cfg;
  const logger = createLogger({ service: 'detector', level: svc.logLevel });
  const rules = loadRules(svc.rulesFile);
  const kafka = createKafka({ config: kcfg, logger, service: 'detector' });
  const names = topicNames(kcfg.topicPrefix);
  const registry = createRegistryClient(cfg.registry);
  const promRegistry = createRegistry({ service: 'detector' });
  const metrics = createDetectorMetrics(promRegistry);
  const life = createServiceLifecycle({ service: 'detector', logger, shutdownTimeoutMs: svc.shutdownTimeoutMs });
  const detector = createDetector({ onFatal: (e) => life.fail(e), kafka, registry, rules, metrics, logger, groupId: env.DETECTOR_GROUP_ID || defaultGroupId('detector', kcfg.topicPrefix), topics: { ...names, changelog: names.detectorChangelog }, wallClockTimers: cfg.own.wallClockTimers, sessionTimeoutMs: cfg.own.sessionTimeoutMs, changelogFormat: cfg.own.changelogFormat === 1 ? 1 : 2, ...(cfg.own.stage ? { stage: { topic: names.stageInput, graceMs: cfg.own.stageGraceMs } } : {}), liveRules: { topic: names.rules, metrics: createRulesMetrics(promRegistry) } });
  // /healthz turns 503 the moment a fatal error is seen, while the stop is still running.
  const ops = createOpsServer({ registry: promRegistry, healthy: life.healthy, ready: () => ({ ready: detector.ready(), detail: { partitions: detector.assignedPartitions() } }), host: svc.httpHost, port: svc.httpPort });
  const { url } = await ops.listen();
  logger.info({ metrics: `${url}/metrics` }, 'detector ops endpoints listening');
  return life.run({
    async start() {
      // An absent Kafka or registry is one line within seconds, not kafkajs retrying for half a minute.
      await checkStreamDependencies({ kafka: kcfg, registry });
      await detector.start();
    },
    stop: () => detector.stop(),
    // The ops server too: left open it keeps the process alive (and /healthz answering) after a stop.
    close: () => ops.close(),
  });
}
