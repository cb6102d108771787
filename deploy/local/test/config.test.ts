import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findRunnableJar } from '../src/artifacts.js';
import { DEFAULTS, resolveConfig } from '../src/config.js';
import { createJavaFinder, parseJavaVersion } from '../src/java.js';
import { JavaNotFoundError } from '../src/errors.js';
import { compareVersions, kafkaPaths, log4jProperties, newClusterId, serverProperties } from '../src/kafka.js';
import { registryPaths, registryProperties } from '../src/registry.js';

function props(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')).trim(), l.slice(l.indexOf('=') + 1).trim()]),
  );
}

describe('resolveConfig', () => {
  it('puts everything under <root>/.stack with the documented defaults', () => {
    const cfg = resolveConfig({ rootDir: '/repo' });
    expect(cfg.paths.stack).toBe('/repo/.stack');
    expect(cfg.paths.artifacts).toBe('/repo/.stack/artifacts');
    expect(cfg.kafka).toMatchObject({ version: DEFAULTS.kafkaVersion, port: 9092, controllerPort: 9093 });
    expect(cfg.registry).toMatchObject({ version: DEFAULTS.registryVersion, port: 8081, managementPort: 8082 });
    expect(cfg.paths.maven.endsWith(path.join('deploy', 'local', 'maven') + path.sep)).toBe(true);
  });

  it('rejects clashing or invalid ports', () => {
    expect(() => resolveConfig({ rootDir: '/r', kafka: { port: 8081 } })).toThrow(/ports must differ/);
    expect(() => resolveConfig({ rootDir: '/r', registry: { port: 70_000 } })).toThrow(/registry.port/);
  });
});

describe('Kafka configuration', () => {
  const cfg = resolveConfig({ rootDir: '/repo', kafka: { port: 19092, controllerPort: 19093 } });
  const paths = kafkaPaths(cfg);
  const server = props(serverProperties(cfg, paths));

  it('is a single combined KRaft node on loopback with a static voter set', () => {
    expect(server).toMatchObject({
      'process.roles': 'broker,controller',
      'node.id': '1',
      'controller.quorum.voters': '1@127.0.0.1:19093',
      listeners: 'PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:19092',
      'controller.listener.names': 'CONTROLLER',
      'log.dirs': '/repo/.stack/data/kafka',
    });
  });

  it('has single-node replication and dev settings', () => {
    expect(server).toMatchObject({
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'group.initial.rebalance.delay.ms': '0',
      'auto.create.topics.enable': 'false',
    });
  });

  it('logs to .stack/logs/kafka.log', () => {
    expect(props(log4jProperties(paths))['appender.file.fileName']).toBe('/repo/.stack/logs/kafka.log');
  });

  it('makes cluster ids as kafka-storage random-uuid does', () => {
    for (let i = 0; i < 200; i++) {
      const id = newClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
  });

  it('compares versions numerically', () => {
    expect(compareVersions('4.4.0', '4.10.0')).toBe(-1);
    expect(compareVersions('4.4.0', '4.4.0')).toBe(0);
    expect(compareVersions('4.4.1', '3.9.1')).toBe(1);
  });
});

describe('registry configuration', () => {
  it('binds loopback and sets the Confluent-like ccompat properties', () => {
    const cfg = resolveConfig({ rootDir: '/repo', registry: { port: 18081, managementPort: 18082, storage: 'memory' } });
    const p = registryProperties(cfg, registryPaths(cfg));
    expect(p).toMatchObject({
      'quarkus.http.host': '127.0.0.1',
      'quarkus.http.port': '18081',
      'quarkus.management.host': '127.0.0.1',
      'quarkus.management.port': '18082',
      'apicurio.datasource.url': 'jdbc:h2:mem:registry',
      'apicurio.rules.global.compatibility': 'BACKWARD',
      'apicurio.ccompat.legacy-id-mode.enabled': 'false',
      'apicurio.ccompat.use-canonical-hash': 'true',
    });
  });

  it('keeps the database under .stack/data/registry with file storage', () => {
    const cfg = resolveConfig({ rootDir: '/repo' });
    expect(registryProperties(cfg, registryPaths(cfg))['apicurio.datasource.url']).toBe(
      'jdbc:h2:file:/repo/.stack/data/registry/registry',
    );
  });
});

describe('parseJavaVersion', () => {
  it('reads modern and legacy version strings', () => {
    expect(parseJavaVersion('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime')).toEqual({ version: '17.0.15', major: 17 });
    expect(parseJavaVersion('openjdk version "25.0.3" 2026-04-21 LTS')).toEqual({ version: '25.0.3', major: 25 });
    expect(parseJavaVersion('java version "1.8.0_412"')).toEqual({ version: '1.8.0_412', major: 8 });
    expect(parseJavaVersion('openjdk version "21" 2023-09-19')).toEqual({ version: '21', major: 21 });
    expect(parseJavaVersion('bash: java: command not found')).toBeUndefined();
  });
});

describe('findRunnableJar', () => {
  it('finds quarkus-run.jar at the top or a -runner.jar one level down', () => {
    const a = mkdtempSync(path.join(tmpdir(), 'stack-jar-'));
    writeFileSync(path.join(a, 'quarkus-run.jar'), '');
    expect(findRunnableJar(a)).toBe('quarkus-run.jar');

    const b = mkdtempSync(path.join(tmpdir(), 'stack-jar-'));
    mkdirSync(path.join(b, 'apicurio-registry-app-2.6.13.Final'));
    writeFileSync(path.join(b, 'apicurio-registry-app-2.6.13.Final', 'apicurio-registry-app-2.6.13.Final-runner.jar'), '');
    expect(findRunnableJar(b)).toBe(path.join('apicurio-registry-app-2.6.13.Final', 'apicurio-registry-app-2.6.13.Final-runner.jar'));

    expect(findRunnableJar(mkdtempSync(path.join(tmpdir(), 'stack-jar-')))).toBeUndefined();
  });
});

describe('createJavaFinder', () => {
  function fakeJdk(version: string): string {
    const home = mkdtempSync(path.join(tmpdir(), 'stack-jdk-'));
    mkdirSync(path.join(home, 'bin'));
    writeFileSync(path.join(home, 'bin', 'java'), `#!/bin/sh\necho 'openjdk version "${version}" 2024-01-01' >&2\n`, { mode: 0o755 });
    return home;
  }

  it('takes the first runtime that is new enough, in order javaHome, JAVA_HOME, PATH, JDK folders', async () => {
    const old = fakeJdk('11.0.2');
    const recent = fakeJdk('21.0.1');
    const finder = createJavaFinder({ javaHome: old, env: { JAVA_HOME: recent, PATH: '' }, jdkRoots: [] });
    expect(await finder.find(17, 'Kafka')).toMatchObject({ bin: path.join(recent, 'bin', 'java'), major: 21 });
  });

  it('says which runtimes it tried when none is new enough', async () => {
    const old = fakeJdk('17.0.9');
    const finder = createJavaFinder({ javaHome: old, env: { PATH: '' }, jdkRoots: ['/nonexistent'] });
    const error = await finder.find(21, 'Apicurio Registry 3.3.3').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JavaNotFoundError);
    expect((error as Error).message).toContain('Apicurio Registry 3.3.3 needs Java 21 or newer');
    expect((error as Error).message).toContain('(17.0.9)');
  });
});
