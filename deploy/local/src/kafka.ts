// Apache Kafka, single node in KRaft combined mode (broker + controller in one JVM), on loopback.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { fetchKafka } from './artifacts.js';
import type { Component, ComponentStatus, ProcessSpec } from './component.js';
import { checkPorts, processStatus, startProcess, stopComponentProcess } from './component.js';
import { HOST } from './config.js';
import type { ResolvedConfig } from './config.js';
import { DataIncompatibleError, ProcessStartError } from './errors.js';
import type { JavaFinder } from './java.js';
import { processMarker, spawnDetached } from './process.js';

/** Kafka 4.x brokers run on Java 17+ (KIP-750 dropped 8 and 11 for the broker). */
export const KAFKA_MIN_JAVA = 17;
const NODE_ID = 1;

export interface KafkaPaths {
  confDir: string;
  serverProperties: string;
  log4jProperties: string;
  dataDir: string;
  /** Written by us beside Kafka's meta.properties: who formatted this data dir. */
  formatInfo: string;
  logPath: string;
  outPath: string;
  pidFile: string;
}

export function kafkaPaths(cfg: ResolvedConfig): KafkaPaths {
  const confDir = path.join(cfg.paths.conf, 'kafka');
  const dataDir = path.join(cfg.paths.data, 'kafka');
  return {
    confDir,
    serverProperties: path.join(confDir, 'server.properties'),
    log4jProperties: path.join(confDir, 'log4j2.properties'),
    dataDir,
    formatInfo: path.join(dataDir, 'tillwatch-format.json'),
    logPath: path.join(cfg.paths.logs, 'kafka.log'),
    outPath: path.join(cfg.paths.logs, 'kafka.out'),
    pidFile: path.join(cfg.paths.run, 'kafka.pid'),
  };
}

/**
 * server.properties for a dev single node. A static voter set (controller.quorum.voters) rather than
 * KIP-853's dynamic quorum (`format --standalone` + controller.quorum.bootstrap.servers): the dynamic
 * one records the controller endpoint in the metadata log at format time, so a later change of the
 * controller port would leave the node unable to find its quorum; the static set is read from this
 * file on every start.
 */
export function serverProperties(cfg: ResolvedConfig, paths: KafkaPaths): string {
  const { port, controllerPort } = cfg.kafka;
  const props: Array<[string, string | number]> = [
    ['process.roles', 'broker,controller'],
    ['node.id', NODE_ID],
    ['controller.quorum.voters', `${NODE_ID}@${HOST}:${controllerPort}`],
    ['listeners', `PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://${HOST}:${port}`],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['log.dirs', paths.dataDir],
    // One broker: every replication factor is 1, and topics are created explicitly by provisioning.
    ['num.partitions', 1],
    ['default.replication.factor', 1],
    ['min.insync.replicas', 1],
    ['auto.create.topics.enable', 'false'],
    ['offsets.topic.replication.factor', 1],
    ['transaction.state.log.replication.factor', 1],
    ['transaction.state.log.min.isr', 1],
    ['share.coordinator.state.topic.replication.factor', 1],
    ['share.coordinator.state.topic.min.isr', 1],
    // Fewer coordinator partitions than the default 50: created and loaded faster on a fresh node.
    ['offsets.topic.num.partitions', 8],
    ['transaction.state.log.num.partitions', 8],
    // Consumers join at once instead of waiting 3 s for more members (tests start many groups).
    ['group.initial.rebalance.delay.ms', 0],
    // The log cleaner (compacted changelogs) reserves this much heap; 128 MiB by default.
    ['log.cleaner.dedupe.buffer.size', 32 * 1024 * 1024],
  ];
  return `# Written by @tillwatch/local-stack on every start; edit the options, not this file.\n${props
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
}

/** A log4j2 .properties config: one size-rolled file, config dumps at WARN. */
export function log4jProperties(paths: KafkaPaths): string {
  const file = paths.logPath;
  return [
    '# Written by @tillwatch/local-stack on every start.',
    'status = warn',
    'name = tillwatch-kafka',
    'appender.file.type = RollingFile',
    'appender.file.name = FILE',
    `appender.file.fileName = ${file}`,
    `appender.file.filePattern = ${file}.%i`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'appender.file.policies.type = Policies',
    'appender.file.policies.size.type = SizeBasedTriggeringPolicy',
    'appender.file.policies.size.size = 50MB',
    'appender.file.strategy.type = DefaultRolloverStrategy',
    'appender.file.strategy.max = 3',
    'rootLogger.level = INFO',
    'rootLogger.appenderRef.file.ref = FILE',
    // Hundreds of lines per start ("... values: ...") that would push the useful lines out of a tail.
    'logger.config.name = org.apache.kafka.common.config.AbstractConfig',
    'logger.config.level = WARN',
    'logger.request.name = kafka.request.logger',
    'logger.request.level = WARN',
    '',
  ].join('\n');
}

/**
 * A KRaft cluster id: a random UUID as 22 chars of URL-safe base64 without padding (what
 * `kafka-storage random-uuid` prints); never starting with '-', which a command line would take
 * for an option (Kafka's own Uuid.randomUuid avoids it for the same reason).
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Compares dotted versions numerically: -1, 0, 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10));
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

interface FormatInfo {
  clusterId: string;
  kafkaVersion: string;
  formattedAt: string;
}

function run(bin: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: 120_000, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

export function createKafka(cfg: ResolvedConfig, java: JavaFinder): Component {
  const paths = kafkaPaths(cfg);
  const { version, port } = cfg.kafka;
  const bootstrap = `${HOST}:${port}`;

  const client = (timeoutMs: number) =>
    new Kafka({
      clientId: 'tillwatch-local-stack',
      brokers: [bootstrap],
      connectionTimeout: Math.min(timeoutMs, 3_000),
      requestTimeout: timeoutMs,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    });

  /** Ready = the broker accepts a connection and describes a cluster that includes itself. */
  async function probe(timeoutMs: number): Promise<void> {
    const admin = client(timeoutMs).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (!cluster.brokers.some((b) => b.nodeId === NODE_ID)) throw new Error('broker not registered yet');
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  /**
   * Makes the broker create __consumer_offsets and __transaction_state and load their coordinators
   * now. Without it the first TxnOffsetCommit on a fresh node failed with NOT_COORDINATOR while the
   * offsets topic was still being created, and kafkajs' sendOffsets does not retry that.
   */
  async function warmUp(deadline: number): Promise<void> {
    const kafka = new Kafka({
      clientId: 'tillwatch-local-stack-warmup',
      brokers: [bootstrap],
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 200 },
    });
    let lastError: unknown;
    while (Date.now() < deadline) {
      const admin = kafka.admin();
      const producer = kafka.producer({
        transactionalId: 'tillwatch-local-stack-warmup',
        idempotent: true,
        maxInFlightRequests: 1,
      });
      try {
        await admin.connect();
        await admin.fetchOffsets({ groupId: 'tillwatch-local-stack-warmup', topics: [] });
        await producer.connect();
        const txn = await producer.transaction();
        await txn.abort();
        return;
      } catch (error) {
        lastError = error;
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await producer.disconnect().catch(() => {});
        await admin.disconnect().catch(() => {});
      }
    }
    throw new Error(`Kafka warm-up (group and transaction coordinators) failed: ${String(lastError)}`);
  }

  async function format(javaBin: string, classpath: string): Promise<void> {
    const metaProps = path.join(paths.dataDir, 'meta.properties');
    if (existsSync(metaProps)) {
      let info: FormatInfo | undefined;
      try {
        info = JSON.parse(readFileSync(paths.formatInfo, 'utf8')) as FormatInfo;
      } catch {
        info = undefined;
      }
      if (info && compareVersions(version, info.kafkaVersion) < 0) {
        throw new DataIncompatibleError(
          `${paths.dataDir} was formatted by Kafka ${info.kafkaVersion}, newer than the configured ${version}; ` +
            `a broker cannot run on metadata from a newer release. Run \`down({ wipeData: true })\` ` +
            `(CLI: tillwatch stack down --wipe) or configure Kafka ${info.kafkaVersion}.`,
        );
      }
      return;
    }
    mkdirSync(paths.dataDir, { recursive: true });
    const clusterId = newClusterId();
    cfg.logger('info', `kafka: formatting ${paths.dataDir} (cluster id ${clusterId})`);
    const { code, output } = await run(
      javaBin,
      [
        `-Dlog4j2.configurationFile=${paths.log4jProperties}`,
        '-cp',
        classpath,
        'kafka.tools.StorageTool',
        'format',
        '-t',
        clusterId,
        '-c',
        paths.serverProperties,
      ],
      cfg.env,
    );
    if (code !== 0) {
      throw new ProcessStartError(
        'kafka',
        paths.logPath,
        output.trim().split('\n').slice(-20).join('\n'),
        `storage format failed (exit ${code})`,
      );
    }
    const info: FormatInfo = { clusterId, kafkaVersion: version, formattedAt: new Date().toISOString() };
    writeFileSync(paths.formatInfo, `${JSON.stringify(info, null, 2)}\n`);
  }

  const spec: ProcessSpec = {
    name: 'kafka',
    pidFile: paths.pidFile,
    logPath: paths.logPath,
    outPath: paths.outPath,
    ports: [cfg.kafka.port, cfg.kafka.controllerPort],
    host: HOST,
    probe,
    async launch() {
      const artifact = await fetchKafka(cfg);
      const runtime = await java.find(KAFKA_MIN_JAVA, `Kafka ${version}`);
      const classpath = `${artifact.libDir}${path.sep}*`;
      mkdirSync(paths.confDir, { recursive: true });
      mkdirSync(cfg.paths.logs, { recursive: true });
      writeFileSync(paths.serverProperties, serverProperties(cfg, paths));
      writeFileSync(paths.log4jProperties, log4jProperties(paths));
      await format(runtime.bin, classpath);
      const heap = cfg.kafka.heapMb;
      const args = [
        `-Xms${Math.min(256, heap)}m`,
        `-Xmx${heap}m`,
        // kafka-run-class.sh's defaults.
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:InitiatingHeapOccupancyPercent=35',
        '-XX:+ExplicitGCInvokesConcurrent',
        '-Djava.awt.headless=true',
        `-Dkafka.logs.dir=${cfg.paths.logs}`,
        `-Dlog4j2.configurationFile=${paths.log4jProperties}`,
        ...processMarker(cfg.rootDir, 'kafka'),
        '-cp',
        classpath,
        'kafka.Kafka',
        paths.serverProperties,
      ];
      cfg.logger('debug', `kafka: ${runtime.bin} ${args.join(' ')}`);
      return spawnDetached(runtime.bin, args, { cwd: cfg.paths.stack, outFile: paths.outPath, env: cfg.env }).pid;
    },
    ...(cfg.kafka.warmUp ? { afterReady: warmUp } : {}),
  };

  const base = (): Pick<ComponentStatus, 'name' | 'version' | 'port' | 'url'> => ({
    name: 'kafka',
    version,
    port,
    url: bootstrap,
  });

  return {
    name: 'kafka',
    version,
    async fetch() {
      const { fetched } = await fetchKafka(cfg);
      return { fetched };
    },
    preflight: () => checkPorts(cfg, spec),
    start: () => startProcess(cfg, spec),
    stop: () => stopComponentProcess(cfg, spec),
    status: () => processStatus(cfg, spec, base()),
  };
}
