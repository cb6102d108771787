// Apicurio Registry 3.x (Quarkus fast-jar from Maven Central) with its Confluent-compatible API at
// /apis/ccompat/v7, for @kafkajs/confluent-schema-registry.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fetchRegistry } from './artifacts.js';
import type { Component, ComponentStatus, ProcessSpec } from './component.js';
import { checkPorts, processStatus, startProcess, stopComponentProcess } from './component.js';
import { HOST } from './config.js';
import type { ResolvedConfig } from './config.js';
import { LocalStackError } from './errors.js';
import type { JavaFinder } from './java.js';
import { processMarker, spawnDetached } from './process.js';

/** Apicurio Registry 3.x classes are Java 21 bytecode (class file 65). */
export const REGISTRY_MIN_JAVA = 21;
export const CCOMPAT_PATH = '/apis/ccompat/v7';

export interface RegistryPaths {
  dataDir: string;
  logPath: string;
  pidFile: string;
}

export function registryPaths(cfg: ResolvedConfig): RegistryPaths {
  return {
    dataDir: path.join(cfg.paths.data, 'registry'),
    logPath: path.join(cfg.paths.logs, 'registry.log'),
    pidFile: path.join(cfg.paths.run, 'registry.pid'),
  };
}

/**
 * The Quarkus/Apicurio properties the registry runs with (passed as -D system properties, which
 * outrank the application.properties inside the jar). Names checked against the 3.3.3 jar's
 * application.properties.
 */
export function registryProperties(cfg: ResolvedConfig, paths: RegistryPaths): Record<string, string> {
  const { port, managementPort, storage } = cfg.registry;
  return {
    'quarkus.http.host': HOST,
    'quarkus.http.port': String(port),
    // The management interface (/q/health, /q/metrics) is on by default on 0.0.0.0:9000.
    'quarkus.management.host': HOST,
    'quarkus.management.port': String(managementPort),
    // SQL storage on H2 is the 3.x default ("in-memory": jdbc:h2:mem:db_<uuid>). `file` keeps it on
    // disk so schema ids, which Kafka records carry, survive a restart like the records do.
    'apicurio.storage.kind': 'sql',
    'apicurio.storage.sql.kind': 'h2',
    ...(storage === 'file'
      ? { 'apicurio.datasource.url': `jdbc:h2:file:${path.join(paths.dataDir, 'registry')}` }
      : { 'apicurio.datasource.url': 'jdbc:h2:mem:registry' }),
    // The default pool keeps 20 connections open; a dev registry needs a few.
    'apicurio.datasource.jdbc.initial-size': '2',
    'apicurio.datasource.jdbc.min-size': '2',
    'apicurio.datasource.jdbc.max-size': '20',
    // Confluent's default compatibility is BACKWARD; Apicurio's is no rule ("NONE"). This also makes
    // GET /config/<subject> answer BACKWARD, which @kafkajs/confluent-schema-registry's register()
    // compares with its own default (BACKWARD) and throws on a mismatch.
    'apicurio.rules.global.compatibility': 'BACKWARD',
    // ids in the ccompat API are content ids (one id per distinct schema, shared by subjects), as in
    // Confluent; legacy mode would hand out global ids (one per version).
    'apicurio.ccompat.legacy-id-mode.enabled': 'false',
    // Look schemas up by their canonical form, so formatting differences do not make a new version.
    'apicurio.ccompat.use-canonical-hash': 'true',
  };
}

export function createRegistry(cfg: ResolvedConfig, java: JavaFinder): Component {
  const paths = registryPaths(cfg);
  const { version, port } = cfg.registry;
  const baseUrl = `http://${HOST}:${port}`;
  const url = `${baseUrl}${CCOMPAT_PATH}`;

  if (!version.startsWith('3.')) {
    // 2.x uses other property names (registry.*), another archive layout and Java 11+; not wired up.
    throw new LocalStackError('START_FAILED', `Apicurio Registry ${version} is not supported by the local stack: use 3.x`);
  }

  async function probe(timeoutMs: number): Promise<void> {
    const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`GET ${CCOMPAT_PATH}/subjects answered HTTP ${response.status}`);
  }

  const spec: ProcessSpec = {
    name: 'registry',
    pidFile: paths.pidFile,
    logPath: paths.logPath,
    outPath: paths.logPath,
    ports: [cfg.registry.port, cfg.registry.managementPort],
    host: HOST,
    probe,
    async launch() {
      const artifact = await fetchRegistry(cfg);
      const runtime = await java.find(REGISTRY_MIN_JAVA, `Apicurio Registry ${version}`);
      mkdirSync(paths.dataDir, { recursive: true });
      const heap = cfg.registry.heapMb;
      const args = [
        `-Xms${Math.min(64, heap)}m`,
        `-Xmx${heap}m`,
        // The registry serves a few lookups (clients cache schemas by id): C1 alone starts it in about
        // half the time and ~30 MiB less RSS (measured here: 3.2-3.6 s against 4-7.7 s).
        '-XX:TieredStopAtLevel=1',
        // JDK 19+: a class-data-sharing archive written at the first exit and mapped on later starts
        // (measured: about 1-1.5 s less). The JVM rebuilds it when the JDK or the jar changes.
        ...(runtime.major >= 19
          ? ['-XX:+AutoCreateSharedArchive', `-XX:SharedArchiveFile=${path.join(artifact.dir, `.cds-java${runtime.major}.jsa`)}`]
          : []),
        ...Object.entries(registryProperties(cfg, paths)).map(([k, v]) => `-D${k}=${v}`),
        ...processMarker(cfg.rootDir, 'registry'),
        '-jar',
        artifact.jar,
      ];
      cfg.logger('debug', `registry: ${runtime.bin} ${args.join(' ')}`);
      return spawnDetached(runtime.bin, args, { cwd: paths.dataDir, outFile: paths.logPath, env: cfg.env }).pid;
    },
  };

  const base = (): Pick<ComponentStatus, 'name' | 'version' | 'port' | 'url'> => ({
    name: 'registry',
    version,
    port,
    url,
  });

  return {
    name: 'registry',
    version,
    async fetch() {
      const { fetched } = await fetchRegistry(cfg);
      return { fetched };
    },
    preflight: () => checkPorts(cfg, spec),
    start: () => startProcess(cfg, spec),
    stop: () => stopComponentProcess(cfg, spec),
    status: () => processStatus(cfg, spec, base()),
  };
}
