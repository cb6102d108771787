// kafkajs is pinned to an exact version (package.json) and patched at install time by
// patch-package (patches/kafkajs+2.2.4.patch, applied by the root package's postinstall, so
// `npm ci` alone applies it; `--error-on-fail` fails the install when the patch no longer applies,
// `--error-on-warn` when the installed kafkajs is not the version the patch was made for).
// The patch replaces the producer's O(n^2) per-partition grouping with a one-pass equivalent
// (src/producer/groupMessagesPerPartition.js) and the byte-wise CRC-32C of every record batch with
// @node-rs/crc32's native one (src/protocol/recordBatch/crc32C/crc32C.js; @node-rs/crc32 is a dependency
// of this package, prebuilt per platform on npm), and makes the protocol encoder
// allocate less per record (src/protocol/encoder.js: pooled buffers, varints written in place),
// and writes an uncompressed partition's record batch in one pass when its messages have no
// timestamps and no headers (src/protocol/requests/produce/v3/request.js, used for Produce v3-v7),
// and decodes a consumed record's offset and timestamp without Long arithmetic when they are
// below 2^53 (src/protocol/recordBatch/record/v0/decoder.js), and compares a fetched record's offset
// with the fetch offset as numbers below 2^53 (src/consumer/batch.js), and decodes each record of a
// fetched batch in place instead of on a slice (src/protocol/recordBatch/v0/decoder.js); the patch
// says why, with figures.
//
// A kafkajs that is not the pinned version or lacks the patch (installed with --ignore-scripts,
// upgraded without refreshing the patch) would run correctly but several times slower on large
// batches: assertKafkajsPatched() refuses it at start-up with a clear error (createKafka calls it).
import { createRequire } from 'node:module';
import { FatalError } from '../errors.js';

export const KAFKAJS_VERSION = '2.2.4';
/** Patched module (as kafkajs requires it) -> the mark the patch puts on its export. */
export const KAFKAJS_PATCHES: Record<string, string> = {
  'kafkajs/src/producer/groupMessagesPerPartition.js': 'groupMessagesPerPartition@1',
  'kafkajs/src/protocol/recordBatch/crc32C/crc32C.js': 'crc32C@2',
  'kafkajs/src/protocol/encoder.js': 'encoder@1',
  'kafkajs/src/protocol/requests/produce/v3/request.js': 'produceV3@1',
  'kafkajs/src/protocol/recordBatch/record/v0/decoder.js': 'recordDecoder@1',
  'kafkajs/src/consumer/batch.js': 'batch@1',
  'kafkajs/src/protocol/recordBatch/v0/decoder.js': 'recordBatchDecoder@1',
};
const MARK = Symbol.for('tillwatch.kafkajs.patch');

const require = createRequire(import.meta.url);

export interface KafkajsInstall {
  version: string;
  /** module path -> its export */
  modules: Record<string, unknown>;
}

/** What is installed: kafkajs's version and the patched modules, as kafkajs itself loads them. */
export function installedKafkajs(): KafkajsInstall {
  return {
    version: (require('kafkajs/package.json') as { version: string }).version,
    modules: Object.fromEntries(Object.keys(KAFKAJS_PATCHES).map((m) => [m, require(m) as unknown])),
  };
}

/** Why an installed kafkajs is refused, or undefined when it is the pinned version with the patch applied. */
export function kafkajsPatchProblem(k: KafkajsInstall = installedKafkajs()): string | undefined {
  if (k.version !== KAFKAJS_VERSION) {
    return `kafkajs ${k.version} is installed but @tillwatch/stream is pinned to ${KAFKAJS_VERSION} and patched for it (patches/kafkajs+${KAFKAJS_VERSION}.patch): pin the new version, refresh the patch with \`npx patch-package kafkajs\`, and update KAFKAJS_VERSION`;
  }
  for (const [module, expected] of Object.entries(KAFKAJS_PATCHES)) {
    const exported = k.modules[module];
    const mark = typeof exported === 'function' ? (exported as unknown as Record<symbol, unknown>)[MARK] : undefined;
    if (mark !== expected) {
      return `kafkajs ${k.version} is installed without the Tillwatch patch of ${module} (${expected}): run \`npm ci\` (or \`npx patch-package --error-on-fail\`) from the repository root; installs with --ignore-scripts skip it`;
    }
  }
  return undefined;
}

export function kafkajsPatchesActive(): boolean {
  return kafkajsPatchProblem() === undefined;
}

/** Start-up check: throws a FatalError when kafkajs is not the pinned, patched version. */
export function assertKafkajsPatched(k?: KafkajsInstall): void {
  const problem = kafkajsPatchProblem(k);
  if (problem) throw new FatalError(problem);
}
