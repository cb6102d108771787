// The kafkajs replacements: same answers as the code they replace, and really in use once
// @tillwatch/stream is imported (kafkajs resolves them from the module cache).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { groupMessagesPerPartition, kafkajsPatchesActive } from '../src/kafka/kafkajs-patches.js';

/** kafkajs 2.2.4's grouping, as it behaves: a reduce that copies the partition's array per message. */
const reference = ({ topic, partitionMetadata, messages, partitioner }: Parameters<typeof groupMessagesPerPartition>[0]) => {
  if (partitionMetadata.length === 0) return {};
  return messages.reduce<Record<number, unknown[]>>((result, message) => {
    const partition = partitioner({ topic, partitionMetadata, message });
    const current = result[partition] ?? [];
    return Object.assign(result, { [partition]: [...current, message] });
  }, {});
};

describe('kafkajs patches', () => {
  it('groups messages per partition exactly as kafkajs does: same partitions, same order', () => {
    let seed = 3;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let round = 0; round < 50; round++) {
      const partitions = 1 + Math.floor(rand() * 8);
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0 }));
      const messages = Array.from({ length: Math.floor(rand() * 300) }, (_, i) => ({ key: `k${i}`, value: Buffer.from(String(i)), partition: Math.floor(rand() * partitions) }));
      const partitioner = ({ message }: { message: unknown }) => (message as { partition: number }).partition;
      const input = { topic: 't', partitionMetadata, messages, partitioner };
      expect(groupMessagesPerPartition(input)).toEqual(reference(input));
    }
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages: [{}], partitioner: () => 0 })).toEqual({});
  });

  it('is what kafkajs loads once @tillwatch/stream is imported', () => {
    expect(kafkajsPatchesActive()).toBe(true);
    const require = createRequire(import.meta.url);
    expect(require('kafkajs/src/producer/groupMessagesPerPartition.js')).toBe(groupMessagesPerPartition);
    // In a fresh process, through the package's entry point, before anything else loads kafkajs.
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', "const s = await import('@tillwatch/stream'); process.stdout.write(String(s.kafkajsPatchesActive()));"], { encoding: 'utf8' });
    expect(out).toBe('true');
  });
});
