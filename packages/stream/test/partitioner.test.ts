import { describe, expect, it } from 'vitest';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { explicitPartitionFirst } from '../src/kafka/client.js';

const metadata = (n: number, down: number[] = []): PartitionerArgs['partitionMetadata'] =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: down.includes(partitionId) ? -1 : 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));

describe('explicitPartitionFirst', () => {
  it('gives the partition kafkajs 2 default partitioner gives for a named partition or a key', () => {
    const ours = explicitPartitionFirst();
    const theirs = Partitioners.DefaultPartitioner();
    const partitionMetadata = metadata(12, [3]);
    for (let i = 0; i < 500; i++) {
      const key = i % 3 === 0 ? Buffer.from(`m-${i}`) : `merchant-${i * 7919}`;
      const named = { topic: 't', partitionMetadata, message: { key, value: null, partition: i % 12 } };
      expect(ours(named)).toBe(i % 12);
      expect(ours(named)).toBe(theirs(named));
      const keyed = { topic: 't', partitionMetadata, message: { key, value: null } };
      expect(ours(keyed)).toBe(theirs(keyed));
    }
  });

  it('falls back to round robin over the partitions with a leader when a message has neither', () => {
    const ours = explicitPartitionFirst();
    const partitionMetadata = metadata(6, [0, 2]);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) seen.add(ours({ topic: 't', partitionMetadata, message: { value: 'v', partition: null as unknown as undefined } }));
    expect([...seen].sort()).toEqual([1, 3, 4, 5]);
  });
});
