// @confluentinc/kafka-javascript for the client comparison only, fetched from the npm registry and
// built on this machine into an ignored cache folder, on the first `npm run load:clients`.
//
// Why not a dependency in package.json: its install script (`node-pre-gyp install
// --fallback-to-build`) first downloads a prebuilt binding from github.com (a host this project may
// not fetch from), and its fallback build asks librdkafka's configure to download the sources of
// zlib, OpenSSL, zstd and curl (`--install-deps --source-deps-only`). Here the package is installed
// with its scripts off, then built from source with `--build-from-source` (no binary download),
// `--nodedir` pointing at this Node's headers (node-gyp downloads none) and CKJS_LINKING=dynamic (the
// package's own switch: librdkafka links the system's libssl and zlib instead of downloading them).
// JOBS=1 for node-gyp's make: with parallel jobs the package's gyp build can start on librdkafka's
// config.h before its configure action has written it (seen here); librdkafka's own make, run by that
// action, still uses parallel jobs. About 2 min once; reused until the version or Node's ABI changes.
// What it leaves out: zstd and curl (no Debian -dev packages here) and SASL/GSSAPI (no libsasl2);
// lz4 is librdkafka's bundled copy. None of them is used by the comparison.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONFLUENT_VERSION = '1.10.1';

const root = fileURLToPath(new URL('../../', import.meta.url));
// Per Node ABI: a binding built for another Node's modules version would not load.
const dir = join(root, '.cache', 'clients', `confluent-kafka-javascript-${CONFLUENT_VERSION}-abi${process.versions.modules}`);
const pkgDir = join(dir, 'node_modules', '@confluentinc', 'kafka-javascript');
const binding = join(pkgDir, 'build', 'Release', 'confluent-kafka-javascript.node');

/** The parts of the package's KafkaJS-compatible API the comparison uses. */
export interface ConfluentModule {
  librdkafkaVersion: string;
  CODES: { ERRORS: { ERR__ASSIGN_PARTITIONS: number } };
  KafkaJS: { Kafka: new (config: Record<string, unknown>) => ConfluentKafka; logLevel: { ERROR: number } };
}
/* eslint-disable @typescript-eslint/no-explicit-any -- the package is loaded from the cache at run time, untyped here */
export interface ConfluentKafka {
  producer(config: Record<string, unknown>): any;
  consumer(config: Record<string, unknown>): any;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export class ConfluentUnavailableError extends Error {
  override name = 'ConfluentUnavailableError';
}

/** Runs a step; its output (stdout and stderr in order) goes to `log` (kept), its end into the error if it fails. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, log: string): void {
  const fd = openSync(log, 'w');
  let r;
  try {
    r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (r.status !== 0) {
    const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-25).join('\n');
    throw new ConfluentUnavailableError(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}) in ${cwd}; whole output in ${log}; its end:\n${tail}`);
  }
}

/** Installs (registry only, scripts off) and builds the package once; returns it loaded. */
export function loadConfluent(log: (line: string) => void): ConfluentModule {
  if (!existsSync(binding)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'confluent-client-cache', private: true }, null, 2)}\n`);
    log(`installing @confluentinc/kafka-javascript@${CONFLUENT_VERSION} from the npm registry into ${dir} (scripts off)...`);
    run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--save-exact', `@confluentinc/kafka-javascript@${CONFLUENT_VERSION}`], dir, process.env, join(dir, 'install.log'));
    // This Node's headers (…/include/node next to …/bin/node): node-gyp then downloads none.
    const nodedir = dirname(dirname(process.execPath));
    if (!existsSync(join(nodedir, 'include', 'node', 'node.h'))) throw new ConfluentUnavailableError(`no Node headers under ${nodedir}/include/node: node-gyp would download them`);
    log('building its librdkafka binding from source (about 2 min, once)...');
    const preGyp = join(dir, 'node_modules', '@mapbox', 'node-pre-gyp', 'bin', 'node-pre-gyp');
    run(process.execPath, [preGyp, 'install', '--build-from-source', `--nodedir=${nodedir}`], pkgDir, { ...process.env, CKJS_LINKING: 'dynamic', JOBS: '1' }, join(dir, 'build.log'));
    if (!existsSync(binding)) throw new ConfluentUnavailableError(`the build finished without ${binding}`);
  }
  return createRequire(join(dir, 'package.json'))('@confluentinc/kafka-javascript') as ConfluentModule;
}
