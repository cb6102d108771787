// Options of the local stack, their defaults, and where everything lives under `<root>/.stack/`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type StackLogger = (level: LogLevel, message: string) => void;

export interface KafkaOptions {
  /** org.apache.kafka:kafka_2.13 version. 4.x needs Java 17+. */
  version?: string;
  /** PLAINTEXT listener on 127.0.0.1. */
  port?: number;
  /** KRaft controller listener on 127.0.0.1. */
  controllerPort?: number;
  /** JVM max heap in MiB. */
  heapMb?: number;
  /**
   * After the broker answers, make it create its internal topics (__consumer_offsets,
   * __transaction_state) and load their coordinators, so the first consumer group or transaction of a
   * test does not race that (seen: NOT_COORDINATOR from TxnOffsetCommit on a fresh broker).
   */
  warmUp?: boolean;
}

export interface RegistryOptions {
  /** io.apicurio:apicurio-registry-app version (3.x needs Java 21+). */
  version?: string;
  /** HTTP port on 127.0.0.1 (API at /apis/ccompat/v7). */
  port?: number;
  /** Quarkus management interface (health, metrics) on 127.0.0.1; it defaults to 0.0.0.0:9000 otherwise. */
  managementPort?: number;
  heapMb?: number;
  /**
   * `memory`: H2 in memory, empty after every restart. `file`: H2 database under
   * .stack/data/registry, so schema ids survive a restart like the Kafka records that carry them.
   */
  storage?: 'memory' | 'file';
}

export interface LocalStackOptions {
  /** The repository root; everything goes to `<rootDir>/.stack/`. */
  rootDir: string;
  kafka?: KafkaOptions;
  registry?: RegistryOptions;
  /** org.apache.logging.log4j version of the log4j2 binding for Kafka. */
  log4jVersion?: string;
  /** Called for progress messages; default: silent. */
  logger?: StackLogger;
  /** Maven executable (default `mvn`). */
  mavenCommand?: string;
  /** Extra arguments for every mvn call (e.g. `-o`, `-Dmaven.repo.local=...`). */
  mavenArgs?: readonly string[];
  /** A JDK to prefer over JAVA_HOME / PATH / /usr/lib/jvm for every component. */
  javaHome?: string;
  /** How long `up()` waits for each component to become ready. */
  startTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL in `down()`. */
  stopGraceMs?: number;
  /** Environment to read JAVA_HOME/PATH from (default process.env); injectable for tests. */
  env?: NodeJS.ProcessEnv;
}

export const DEFAULTS = {
  kafkaVersion: '4.4.0',
  kafkaPort: 9092,
  kafkaControllerPort: 9093,
  kafkaHeapMb: 768,
  registryVersion: '3.3.3',
  registryPort: 8081,
  registryManagementPort: 8082,
  registryHeapMb: 512,
  registryStorage: 'file',
  log4jVersion: '2.26.1',
  startTimeoutMs: 120_000,
  stopGraceMs: 30_000,
} as const;

export const HOST = '127.0.0.1';

export interface ResolvedConfig {
  rootDir: string;
  kafka: Required<KafkaOptions>;
  registry: Required<RegistryOptions>;
  log4jVersion: string;
  logger: StackLogger;
  mavenCommand: string;
  mavenArgs: readonly string[];
  javaHome: string | undefined;
  startTimeoutMs: number;
  stopGraceMs: number;
  env: NodeJS.ProcessEnv;
  paths: StackPaths;
}

export interface StackPaths {
  stack: string;
  artifacts: string;
  data: string;
  logs: string;
  run: string;
  conf: string;
  /** The poms live beside the sources: deploy/local/maven/. */
  maven: string;
  lock: string;
}

function positivePort(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65_535) {
    throw new RangeError(`${name} must be a port number (1-65535), got ${value}`);
  }
  return value;
}

export function resolveConfig(options: LocalStackOptions): ResolvedConfig {
  const rootDir = path.resolve(options.rootDir);
  const stack = path.join(rootDir, '.stack');
  const kafka: Required<KafkaOptions> = {
    version: options.kafka?.version ?? DEFAULTS.kafkaVersion,
    port: positivePort('kafka.port', options.kafka?.port ?? DEFAULTS.kafkaPort),
    controllerPort: positivePort('kafka.controllerPort', options.kafka?.controllerPort ?? DEFAULTS.kafkaControllerPort),
    heapMb: options.kafka?.heapMb ?? DEFAULTS.kafkaHeapMb,
    warmUp: options.kafka?.warmUp ?? true,
  };
  const registry: Required<RegistryOptions> = {
    version: options.registry?.version ?? DEFAULTS.registryVersion,
    port: positivePort('registry.port', options.registry?.port ?? DEFAULTS.registryPort),
    managementPort: positivePort(
      'registry.managementPort',
      options.registry?.managementPort ?? DEFAULTS.registryManagementPort,
    ),
    heapMb: options.registry?.heapMb ?? DEFAULTS.registryHeapMb,
    storage: options.registry?.storage ?? DEFAULTS.registryStorage,
  };
  const ports = [kafka.port, kafka.controllerPort, registry.port, registry.managementPort];
  if (new Set(ports).size !== ports.length) {
    throw new RangeError(`the stack's ports must differ, got ${ports.join(', ')}`);
  }
  return {
    rootDir,
    kafka,
    registry,
    log4jVersion: options.log4jVersion ?? DEFAULTS.log4jVersion,
    logger: options.logger ?? (() => {}),
    mavenCommand: options.mavenCommand ?? 'mvn',
    mavenArgs: options.mavenArgs ?? [],
    javaHome: options.javaHome,
    startTimeoutMs: options.startTimeoutMs ?? DEFAULTS.startTimeoutMs,
    stopGraceMs: options.stopGraceMs ?? DEFAULTS.stopGraceMs,
    env: options.env ?? process.env,
    paths: {
      stack,
      artifacts: path.join(stack, 'artifacts'),
      data: path.join(stack, 'data'),
      logs: path.join(stack, 'logs'),
      run: path.join(stack, 'run'),
      conf: path.join(stack, 'conf'),
      maven: fileURLToPath(new URL('../maven/', import.meta.url)),
      lock: path.join(stack, 'run', 'stack.lock'),
    },
  };
}
