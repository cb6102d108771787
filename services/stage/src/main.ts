// `tillwatch stage`: the second stage as a production process, configured by environment variables.
// Connects, listens on /metrics /healthz /readyz, and on SIGTERM/SIGINT finishes the batch in flight,
// commits and exits 0; a fatal error exits 1 (createServiceLifecycle in @tillwatch/stream).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { kafkaConfig, parseAll, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import { defaultGroupId, topicNames } from '@tillwatch/schemas';
import { defaultRulesConfig, loadRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { createRulesMetrics } from '@tillwatch/rules-live';
import { checkStreamDependencies, createKafka, createRegistryClient, createServiceLifecycle } from '@tillwatch/stream';
import { createLogger, createOpsServer, createRegistry } from '@tillwatch/telemetry';
import { createStageMetrics } from './metrics.js';
import { createStage } from './stage.js';

function loadRules(path: string | undefined): RulesConfig {
  if (!path) return defaultRulesConfig();
  return loadRulesConfig(readFileSync(path, 'utf8'), extname(path) === '.json' ? 'json' : 'yaml');
}

export async function runStageMain(env: Env = process.env): Promise<number> {
  const cfg = parseAll({ svc: (e) => serviceConfig(e, { httpPort: 9467 }), kafka: kafkaConfig, registry: registryConfig }, env);
  const { svc, kafka: kcfg } = cfg;
  const logger = createLogger({ service: 'stage', level: svc.logLevel });
  const rules = loadRules(svc.rulesFile);
  const kafka = createKafka({ config: kcfg, logger, service: 'stage' });
  const names = topicNames(kcfg.topicPrefix);
  const registry = createRegistryClient(cfg.registry);
  const promRegistry = createRegistry({ service: 'stage' });
  const metrics = createStageMetrics(promRegistry);
  const life = createServiceLifecycle({ service: 'stage', logger, shutdownTimeoutMs: svc.shutdownTimeoutMs });
  const stage = createStage({
    onFatal: (e) => life.fail(e),
    kafka,
    registry,
    rules,
    metrics,
    logger,
    groupId: env.STAGE_GROUP_ID || defaultGroupId('stage', kcfg.topicPrefix),
    topics: { ...names, input: names.stageInput, changelog: names.stageChangelog },
    liveRules: { topic: names.rules, metrics: createRulesMetrics(promRegistry) },
  });
  const ops = createOpsServer({ registry: promRegistry, healthy: life.healthy, ready: () => ({ ready: stage.ready(), detail: {} }), host: svc.httpHost, port: svc.httpPort });
  const { url } = await ops.listen();
  logger.info({ metrics: `${url}/metrics` }, 'stage ops endpoints listening');
  return life.run({
    async start() {
      await checkStreamDependencies({ kafka: kcfg, registry });
      await stage.start();
    },
    stop: () => stage.stop(),
    close: () => ops.close(),
  });
}
