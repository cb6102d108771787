// The local stack as one object: fetch artifacts, start (idempotently), stop, report.
import { rmSync } from 'node:fs';
import { diskUsage } from './artifacts.js';
import type { Component, ComponentStatus, StartResult, StopResult } from './component.js';
import { resolveConfig } from './config.js';
import type { LocalStackOptions, ResolvedConfig } from './config.js';
import { createJavaFinder } from './java.js';
import { KAFKA_MIN_JAVA, createKafka, kafkaPaths } from './kafka.js';
import { withLock } from './process.js';
import { createRegistry, registryPaths } from './registry.js';

export interface FetchResult {
  /** Per component: true when it was downloaded now, false when the cache already had it. */
  fetched: Record<Component['name'], boolean>;
  /** Bytes under .stack/artifacts/. */
  artifactBytes: number;
}

export interface UpResult {
  components: Record<Component['name'], StartResult>;
  /** Wall time of the whole `up()`, fetch included. */
  elapsedMs: number;
}

export interface DownOptions {
  /** Also delete .stack/data/kafka and .stack/data/registry: the next `up()` starts empty. */
  wipeData?: boolean;
  /** Stop only these components (default: every one), e.g. the ones a command started itself. */
  only?: readonly Component['name'][];
}

export interface StackStatus {
  components: ComponentStatus[];
  /** True when every component is running and healthy. */
  healthy: boolean;
}

export interface LocalStack {
  /** The resolved options and paths (ports, versions, .stack/ folders). */
  readonly config: Readonly<ResolvedConfig>;
  /** Downloads what is missing into .stack/artifacts (Maven Central); a no-op when cached. */
  fetch(): Promise<FetchResult>;
  /** Fetches, formats and starts what is not running, and waits until everything is ready. */
  up(): Promise<UpResult>;
  /** Stops every component (SIGTERM, SIGKILL after the grace period) and waits for the exits. */
  down(options?: DownOptions): Promise<Record<Component['name'], StopResult>>;
  /** Per component: version, port/url, state (running/stopped/unhealthy), pid, memory. */
  status(): Promise<StackStatus>;
}

/** How long a second `up()`/`down()` waits for the one holding .stack/run/stack.lock. */
const LOCK_WAIT_MS = 10 * 60_000;

export function createLocalStack(options: LocalStackOptions): LocalStack {
  const config = resolveConfig(options);
  const java = createJavaFinder({ javaHome: config.javaHome, env: config.env });
  const kafka = createKafka(config, java);
  const registry = createRegistry(config, java);
  const components: readonly Component[] = [kafka, registry];
  const log = config.logger;

  async function fetchAll(): Promise<FetchResult> {
    // Maven itself needs a JVM: report a missing Java before mvn prints something obscure.
    await java.find(KAFKA_MIN_JAVA, 'Maven (to fetch the stack) and Kafka');
    // One after the other: two Maven 3.8 processes writing one local repository can corrupt it.
    const fetched = {} as Record<Component['name'], boolean>;
    for (const c of components) fetched[c.name] = (await c.fetch()).fetched;
    return { fetched, artifactBytes: diskUsage(config.paths.artifacts) };
  }

  return {
    config,

    fetch: () => withLock(config.paths.lock, LOCK_WAIT_MS, fetchAll),

    up: () =>
      withLock(config.paths.lock, LOCK_WAIT_MS, async () => {
        const started = Date.now();
        await fetchAll();
        // Every port first, so a taken port fails `up()` before anything was started.
        for (const c of components) await c.preflight();
        // Kafka and the registry do not depend on each other (the registry stores in H2): start both
        // at once, and report every failure rather than only the first.
        const results = await Promise.allSettled(components.map((c) => c.start()));
        const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        if (failures.length > 0) {
          for (const extra of failures.slice(1)) log('error', extra instanceof Error ? extra.message : String(extra));
          throw failures[0];
        }
        const out = {} as Record<Component['name'], StartResult>;
        components.forEach((c, i) => {
          const r = results[i];
          if (r?.status === 'fulfilled') out[c.name] = r.value;
        });
        const elapsedMs = Date.now() - started;
        log('info', `stack up in ${(elapsedMs / 1000).toFixed(1)} s`);
        return { components: out, elapsedMs };
      }),

    down: (opts?: DownOptions) =>
      withLock(config.paths.lock, LOCK_WAIT_MS, async () => {
        const targets = opts?.only ? components.filter((c) => opts.only!.includes(c.name)) : components;
        const results = await Promise.allSettled(targets.map((c) => c.stop()));
        const failure = results.find((r) => r.status === 'rejected');
        if (failure?.status === 'rejected') throw failure.reason;
        const out = {} as Record<Component['name'], StopResult>;
        targets.forEach((c, i) => {
          const r = results[i];
          if (r?.status === 'fulfilled') out[c.name] = r.value;
        });
        if (opts?.wipeData && !opts.only) {
          // Only our components' folders: others (e.g. an embedded ClickHouse path) may live beside them.
          for (const dir of [kafkaPaths(config).dataDir, registryPaths(config).dataDir]) {
            log('info', `deleting ${dir}`);
            rmSync(dir, { recursive: true, force: true });
          }
        }
        return out;
      }),

    async status() {
      const list = await Promise.all(components.map((c) => c.status()));
      return { components: list, healthy: list.every((c) => c.state === 'running') };
    },
  };
}
