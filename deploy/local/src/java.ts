// Finds a Java runtime of at least a given major version. Kafka 4.x needs 17; Apicurio Registry 3.x
// is compiled for 21 (class file version 65: on 17 it fails with UnsupportedClassVersionError), so on
// a machine whose default java is 17 the registry runs on another JDK found here.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { JavaNotFoundError } from './errors.js';

export interface JavaRuntime {
  /** Absolute path of the `java` executable. */
  bin: string;
  major: number;
  version: string;
}

/** Parses the first line of `java -version` (`openjdk version "17.0.15" ...`, `"1.8.0_412"`). */
export function parseJavaVersion(output: string): { version: string; major: number } | undefined {
  const m = /version "([^"]+)"/.exec(output);
  if (!m?.[1]) return undefined;
  const version = m[1];
  const parts = version.split(/[.+_-]/).map((p) => Number.parseInt(p, 10));
  const first = parts[0];
  if (first === undefined || Number.isNaN(first)) return undefined;
  const major = first === 1 ? (parts[1] ?? 1) : first;
  return { version, major };
}

function probe(bin: string): Promise<JavaRuntime | undefined> {
  return new Promise((resolve) => {
    execFile(bin, ['-version'], { timeout: 15_000 }, (error, stdout, stderr) => {
      if (error) return resolve(undefined);
      const parsed = parseJavaVersion(`${stderr}\n${stdout}`);
      resolve(parsed ? { bin, ...parsed } : undefined);
    });
  });
}

function onPath(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** JDKs installed under `roots` (by default the usual Linux place), newest-looking first. */
function installedJdks(roots: readonly string[]): string[] {
  return roots.flatMap((root) =>
    existsSync(root)
      ? readdirSync(root)
          .map((d) => path.join(root, d, 'bin', 'java'))
          .filter((bin) => existsSync(bin))
          .sort()
          .reverse()
      : [],
  );
}

/**
 * Resolves Java runtimes for the stack; results are memoised per finder (one finder per stack, no
 * module-level cache).
 */
export function createJavaFinder(opts: {
  javaHome: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Folders holding one JDK per subfolder; default /usr/lib/jvm. */
  jdkRoots?: readonly string[];
}) {
  const probed = new Map<string, Promise<JavaRuntime | undefined>>();
  const cachedProbe = (bin: string) => {
    let p = probed.get(bin);
    if (!p) {
      p = probe(bin);
      probed.set(bin, p);
    }
    return p;
  };

  return {
    async find(minMajor: number, purpose: string): Promise<JavaRuntime> {
      const candidates: string[] = [];
      if (opts.javaHome) candidates.push(path.join(opts.javaHome, 'bin', 'java'));
      if (opts.env.JAVA_HOME) candidates.push(path.join(opts.env.JAVA_HOME, 'bin', 'java'));
      const fromPath = onPath('java', opts.env);
      if (fromPath) candidates.push(fromPath);
      candidates.push(...installedJdks(opts.jdkRoots ?? ['/usr/lib/jvm']));

      const tried: string[] = [];
      const seen = new Set<string>();
      for (const bin of candidates) {
        if (seen.has(bin)) continue;
        seen.add(bin);
        const runtime = await cachedProbe(bin);
        if (!runtime) {
          tried.push(`${bin} (not runnable)`);
          continue;
        }
        if (runtime.major >= minMajor) return runtime;
        tried.push(`${bin} (${runtime.version})`);
      }
      throw new JavaNotFoundError(minMajor, purpose, tried);
    },
  };
}

export type JavaFinder = ReturnType<typeof createJavaFinder>;
