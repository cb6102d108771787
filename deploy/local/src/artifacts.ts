// Fetches the stack's JVM artifacts from Maven Central with the poms in deploy/local/maven/, into
// <root>/.stack/artifacts/. A marker file per artifact means "complete": a fetch that died half way
// left only a `.partial` folder, which the next fetch throws away.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from './config.js';
import { ArtifactFetchError, MavenNotFoundError } from './errors.js';

const MARKER = '.fetched.json';

export interface KafkaArtifact {
  kind: 'kafka';
  version: string;
  dir: string;
  /** Folder of jars: the JVM classpath is `<libDir>/*`. */
  libDir: string;
}

export interface RegistryArtifact {
  kind: 'registry';
  version: string;
  dir: string;
  /** quarkus-run.jar (3.x fast-jar) or the -runner.jar. */
  jar: string;
}

interface Marker {
  artifact: string;
  versions: Record<string, string>;
  fetchedAt: string;
  /** Path of the runnable jar or lib dir, relative to the artifact folder. */
  entry: string;
}

function readMarker(dir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

function sameVersions(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => a[k] === b[k]);
}

/** Strips ANSI colour codes (mvn 3.8 prints some even with -B). */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

export async function runMaven(
  cfg: ResolvedConfig,
  pom: string,
  goals: readonly string[],
  properties: Record<string, string>,
  artifact: string,
): Promise<void> {
  const args = [
    '-B',
    '-q',
    '-f',
    pom,
    ...cfg.mavenArgs,
    ...Object.entries(properties).map(([k, v]) => `-D${k}=${v}`),
    ...goals,
  ];
  cfg.logger('debug', `mvn ${args.join(' ')}`);
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(cfg.mavenCommand, args, { env: cfg.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      if (output.length > 2_000) output.splice(0, output.length - 1_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new MavenNotFoundError(cfg.mavenCommand) : error);
    });
    child.on('close', (exitCode) => resolve(exitCode));
  });
  if (code !== 0) {
    const lines = plain(output.join('')).split('\n').filter((l) => l.trim() !== '');
    throw new ArtifactFetchError(artifact, code, lines.slice(-40).join('\n'));
  }
}

async function fetchInto(
  cfg: ResolvedConfig,
  finalDir: string,
  versions: Record<string, string>,
  artifact: string,
  fill: (partialDir: string, buildDir: string) => Promise<string>,
): Promise<{ dir: string; entry: string; fetched: boolean }> {
  const marker = readMarker(finalDir);
  if (marker && sameVersions(marker.versions, versions) && existsSync(path.join(finalDir, marker.entry))) {
    return { dir: finalDir, entry: marker.entry, fetched: false };
  }
  mkdirSync(cfg.paths.artifacts, { recursive: true });
  const partial = `${finalDir}.partial`;
  const buildDir = path.join(cfg.paths.artifacts, `.maven-build-${process.pid}`);
  rmSync(partial, { recursive: true, force: true });
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  cfg.logger('info', `fetching ${artifact} from Maven Central into ${path.relative(cfg.rootDir, finalDir)}`);
  const started = Date.now();
  try {
    const entry = await fill(partial, buildDir);
    const done: Marker = { artifact, versions, fetchedAt: new Date().toISOString(), entry };
    writeFileSync(path.join(partial, MARKER), `${JSON.stringify(done, null, 2)}\n`);
    rmSync(finalDir, { recursive: true, force: true });
    renameSync(partial, finalDir);
    cfg.logger('info', `fetched ${artifact} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { dir: finalDir, entry, fetched: true };
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}

export async function fetchKafka(cfg: ResolvedConfig): Promise<KafkaArtifact & { fetched: boolean }> {
  const version = cfg.kafka.version;
  const dir = path.join(cfg.paths.artifacts, `kafka-${version}`);
  const artifact = `org.apache.kafka:kafka_2.13:${version} + log4j ${cfg.log4jVersion}`;
  const result = await fetchInto(cfg, dir, { kafka: version, log4j: cfg.log4jVersion }, artifact, async (partial, buildDir) => {
    const libDir = path.join(partial, 'lib');
    await runMaven(
      cfg,
      path.join(cfg.paths.maven, 'kafka.pom.xml'),
      ['dependency:copy-dependencies'],
      { 'kafka.version': version, 'log4j.version': cfg.log4jVersion, 'stack.lib.dir': libDir, 'stack.build.dir': buildDir },
      artifact,
    );
    const jars = existsSync(libDir) ? readdirSync(libDir).filter((f) => f.endsWith('.jar')) : [];
    if (!jars.some((j) => j.startsWith(`kafka_2.13-${version}`))) {
      throw new ArtifactFetchError(artifact, 0, `mvn succeeded but ${libDir} has no kafka_2.13-${version}.jar`);
    }
    return 'lib';
  });
  return { kind: 'kafka', version, dir: result.dir, libDir: path.join(result.dir, result.entry), fetched: result.fetched };
}

/** Finds the runnable jar of an unpacked Quarkus app: quarkus-run.jar (fast-jar) or *-runner.jar. */
export function findRunnableJar(dir: string, depth = 2): string | undefined {
  const entries = readdirSync(dir);
  for (const name of ['quarkus-run.jar']) if (entries.includes(name)) return name;
  const runner = entries.find((e) => e.endsWith('-runner.jar'));
  if (runner) return runner;
  if (depth === 0) return undefined;
  for (const e of entries.sort()) {
    const sub = path.join(dir, e);
    if (!statSync(sub).isDirectory()) continue;
    const found = findRunnableJar(sub, depth - 1);
    if (found) return path.join(e, found);
  }
  return undefined;
}

export async function fetchRegistry(cfg: ResolvedConfig): Promise<RegistryArtifact & { fetched: boolean }> {
  const version = cfg.registry.version;
  const dir = path.join(cfg.paths.artifacts, `apicurio-${version}`);
  const artifact = `io.apicurio:apicurio-registry-app:${version}:tar.gz:all`;
  const result = await fetchInto(cfg, dir, { apicurio: version }, artifact, async (partial, buildDir) => {
    await runMaven(
      cfg,
      path.join(cfg.paths.maven, 'apicurio.pom.xml'),
      ['dependency:unpack'],
      { 'apicurio.version': version, 'stack.unpack.dir': partial, 'stack.build.dir': buildDir },
      artifact,
    );
    const jar = findRunnableJar(partial);
    if (!jar) throw new ArtifactFetchError(artifact, 0, `mvn succeeded but ${partial} holds no quarkus-run.jar or *-runner.jar`);
    return jar;
  });
  return { kind: 'registry', version, dir: result.dir, jar: path.join(result.dir, result.entry), fetched: result.fetched };
}

/** Disk use of a folder in bytes (what `du -sb` would say, without following links). */
export function diskUsage(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const current = stack.pop() as string;
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const p = path.join(current, entry.name);
      if (entry.isDirectory()) stack.push(p);
      else if (entry.isFile()) total += statSync(p).size;
    }
  }
  return total;
}
