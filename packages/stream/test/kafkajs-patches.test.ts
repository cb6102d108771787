// The installed kafkajs is the pinned version with the install-time patch applied (patch-package,
// root postinstall), its producer's grouping behaves as kafkajs's contract requires, and a kafkajs
// without the patch is refused at start-up with a clear error.
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { assertKafkajsPatched, installedKafkajs, kafkajsPatchProblem, KAFKAJS_VERSION } from '../src/kafka/kafkajs-patches.js';
import { createKafka } from '../src/kafka/client.js';
import { FatalError } from '../src/errors.js';
import type * as PatchesModule from '../src/kafka/kafkajs-patches.js';

type Grouping = (o: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: (a: { message: unknown }) => number }) => Record<number, unknown[]>;
const require = createRequire(import.meta.url);
// The module kafkajs's producer loads (src/producer/createTopicData/sendMessages require it by this path).
const grouping = require('kafkajs/src/producer/groupMessagesPerPartition.js') as Grouping;
// The checksum of every record batch kafkajs writes (src/protocol/recordBatch/v0/index.js).
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;

interface Encoder {
  writeVarLong(v: number): Encoder;
  writeVarInt(v: number): Encoder;
  writeVarIntBytes(b: Buffer): Encoder;
  writeInt32(v: number): Encoder;
  buffer: Buffer;
}
const EncoderClass = require('kafkajs/src/protocol/encoder.js') as new () => Encoder;

/** Kafka's record varints (zigzag then base-128, least significant group first), from the protocol guide, in BigInt. */
function varlongReference(v: number): Buffer {
  let z = BigInt.asUintN(64, (BigInt(v) << 1n) ^ (BigInt(v) >> 63n));
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit, straight from its definition. */
function crc32cReference(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('kafkajs install-time patch', () => {
  it('is applied to the pinned kafkajs version', () => {
    expect(installedKafkajs().version).toBe(KAFKAJS_VERSION);
    expect(kafkajsPatchProblem()).toBeUndefined();
    expect(() => assertKafkajsPatched()).not.toThrow();
  });

  it('groups messages per partition with every message once, in send order', () => {
    let seed = 3;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let round = 0; round < 50; round++) {
      const partitions = 1 + Math.floor(rand() * 8);
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0 }));
      const messages = Array.from({ length: Math.floor(rand() * 300) }, (_, i) => ({ i, partition: Math.floor(rand() * partitions) }));
      const out = grouping({ topic: 't', partitionMetadata, messages, partitioner: ({ message }) => (message as { partition: number }).partition });
      const seen: number[] = [];
      for (const [p, list] of Object.entries(out)) {
        const ids = (list as Array<{ i: number; partition: number }>).map((m) => {
          expect(m.partition).toBe(Number(p));
          return m.i;
        });
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        seen.push(...ids);
      }
      expect(seen.sort((a, b) => a - b)).toEqual(messages.map((m) => m.i));
    }
    expect(grouping({ topic: 't', partitionMetadata: [], messages: [{}], partitioner: () => 0 })).toEqual({});
  }, 30_000);

  it('checksums record batches as CRC-32C defines it, at every length and alignment', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283); // the standard check value (RFC 3720, B.4)
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const big = Buffer.from(Array.from({ length: 4096 }, rand));
    for (let len = 0; len <= 70; len++) for (const off of [0, 1, 3, 5]) expect(crc32C(big.subarray(off, off + len))).toBe(crc32cReference(big.subarray(off, off + len)));
    expect(crc32C(big)).toBe(crc32cReference(big));
  });

  it('encodes record varints as the Kafka protocol defines them, and only the bytes it wrote', () => {
    let seed = 11;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const values = [0, 1, -1, 63, 64, -64, -65, 2 ** 30 - 1, -(2 ** 30), 2 ** 30, -(2 ** 30) - 1, 2 ** 31 - 1, -(2 ** 31), 1_767_603_600_123, -1_767_603_600_123, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 2000; i++) values.push(Math.floor((rand() - 0.5) * 2 ** (1 + Math.floor(rand() * 52))));
    for (const v of values) {
      expect(new EncoderClass().writeVarLong(v).buffer).toEqual(varlongReference(v));
      if (Math.abs(v) < 2 ** 31) expect(new EncoderClass().writeVarInt(v).buffer).toEqual(varlongReference(v));
    }
    // A record-like sequence growing past the initial buffer: exactly the bytes written, in order.
    const payload = Buffer.from(Array.from({ length: 700 }, (_, i) => i % 251));
    const out = new EncoderClass().writeVarInt(payload.length).writeVarIntBytes(payload).writeInt32(7).buffer;
    expect(out).toEqual(Buffer.concat([varlongReference(payload.length), varlongReference(payload.length), payload, Buffer.from([0, 0, 0, 7])]));
  }, 30_000);

  it('writes a partition\'s record batch in one pass with the same bytes as kafkajs\'s own encoder, which takes any other input', async () => {
    type Message = { key?: string | Buffer | null; value: string | Buffer | null; timestamp?: number; headers?: Record<string, string> };
    type PartitionData = { partition: number; messages: Message[]; transactionalId?: string | null; firstSequence?: number; producerId?: number; producerEpoch?: number };
    type Out = { buffer: Buffer } | undefined;
    const produceV3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as Record<symbol, { fast(d: PartitionData): Out; reference(compression: number, d: PartitionData): Promise<Out> }>;
    const { fast, reference } = produceV3[Symbol.for('tillwatch.kafkajs.produceV3.paths')]!;
    let seed = 5;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const text = (n: number) => Array.from({ length: n }, () => (rand() < 0.1 ? 'é€😀'[Math.floor(rand() * 3)] : String.fromCharCode(32 + Math.floor(rand() * 90)))).join('');
    const field = (): string | Buffer | null => {
      const r = rand();
      if (r < 0.1) return null;
      const n = rand() < 0.1 ? Math.floor(rand() * 400) : Math.floor(rand() * 20);
      return r < 0.5 ? text(n) : Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    };
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_767_603_600_123);
    try {
      for (let round = 0; round < 200; round++) {
        const messages: Message[] = Array.from({ length: 1 + Math.floor(rand() * (round % 10 === 0 ? 300 : 12)) }, () => ({ key: field(), value: field() }));
        const data: PartitionData = { partition: Math.floor(rand() * 12), messages, transactionalId: rand() < 0.5 ? 'app.3' : null, firstSequence: Math.floor(rand() * 2 ** 31), producerId: Math.floor(rand() * 2 ** 40), producerEpoch: Math.floor(rand() * 100) };
        const got = fast(data)?.buffer;
        expect(got).toBeDefined();
        expect(got).toEqual((await reference(0, data))!.buffer);
        // The CRC-32C covers everything from the attributes on (record batch bytes 21.. after the partition and size fields).
        expect(got!.readUInt32BE(8 + 17)).toBe(crc32cReference(got!.subarray(8 + 21)));
      }
      // Timestamps, headers and non-string fields take kafkajs's own path.
      expect(fast({ partition: 0, messages: [{ key: 'k', value: 'v', timestamp: 5 }] })).toBeUndefined();
      expect(fast({ partition: 0, messages: [{ key: 'k', value: 'v', headers: { h: '1' } }] })).toBeUndefined();
      expect(fast({ partition: 0, messages: [{ key: 'k', value: 7 as unknown as string }] })).toBeUndefined();
      expect(fast({ partition: 0, messages: [] })).toBeUndefined();
    } finally {
      now.mockRestore();
    }
  });

  it('decodes a record\'s offset, timestamp, key, value and headers as kafkajs defines them, on its fast path and off it', () => {
    type Rec = { offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: Record<string, unknown> };
    const RecordEncoder = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (r: { offsetDelta: number; timestampDelta: number; key: Buffer | null; value: Buffer | null; headers?: Record<string, string | string[]> }) => { buffer: Buffer };
    const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as (d: unknown, ctx: object) => Rec;
    const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => { readVarIntBytes(): Buffer };
    let seed = 9;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const bases = ['0', '-1', '41', '1767603600123', '999999999999999', '1000000000000000', '9007199254740993', '-9007199254740993', '9223372036854775000'];
    for (let i = 0; i < 1000; i++) {
      const firstOffset = bases[i % bases.length]!;
      const firstTimestamp = bases[(i * 7) % bases.length]!;
      const size = Math.floor(rand() * 5);
      const timestampDelta = Math.floor((rand() - 0.5) * 2 ** [3, 14, 27, 28, 40][size]!);
      const offsetDelta = Math.floor(rand() * 2 ** [3, 14, 20, 28, 30][size]!);
      const headers = rand() < 0.3 ? { a: 'x', b: ['1', '2'] } : undefined;
      const key = rand() < 0.2 ? null : Buffer.from(`k${i}`);
      const value = Buffer.from(`v${i}`);
      const encoded = RecordEncoder({ offsetDelta, timestampDelta, key, value, ...(headers ? { headers } : {}) }).buffer;
      // The record batch decoder reads a record's length-prefixed bytes, then decodes them.
      const rec = decodeRecord(new Decoder(new Decoder(encoded).readVarIntBytes()), { firstOffset, firstTimestamp, magicByte: 2 });
      expect(rec.offset).toBe((BigInt(firstOffset) + BigInt(offsetDelta)).toString());
      expect(rec.timestamp).toBe((BigInt(firstTimestamp) + BigInt(timestampDelta)).toString());
      expect(rec.key).toEqual(key);
      expect(rec.value).toEqual(value);
      expect(rec.headers).toEqual(headers ? { a: Buffer.from('x'), b: [Buffer.from('1'), Buffer.from('2')] } : {});
    }
  });

  it('keeps a fetched batch\'s records at or after the fetch offset, compared as kafkajs compares them (Long), at any magnitude', () => {
    const Batch = require('kafkajs/src/consumer/batch.js') as new (topic: string, fetchedOffset: string, data: object) => { messages: Array<{ offset: string }>; messagesWithinOffset: unknown[] };
    const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: string): { gte(o: unknown): boolean } };
    const offsets = ['0', '1', '41', '42', '43', '9007199254740990', '9007199254740991', '9007199254740992', '9007199254740993', '9223372036854775000'];
    for (const fetched of offsets) {
      const messages = offsets.map((offset) => ({ offset, isControlRecord: false }));
      const batch = new Batch('t', fetched, { partition: 0, highWatermark: '0', abortedTransactions: [], messages });
      const expected = offsets.filter((o) => Long.fromValue(o).gte(Long.fromValue(fetched)));
      expect(batch.messages.map((m) => m.offset)).toEqual(expected);
    }
  });

  it('decodes every record of a fetched batch as kafkajs does, in place, and a record with bytes past its fields kafkajs\'s way', async () => {
    type Enc = { buffer: Buffer; writeVarInt(v: number): Enc; writeBuffer(b: Buffer): Enc };
    const EncoderCtor = require('kafkajs/src/protocol/encoder.js') as new () => Enc;
    const RecordEncoder = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (r: object) => Enc;
    const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (b: object) => Promise<{ buffer: Buffer }> };
    const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: unknown) => Promise<{ records: Array<{ offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: Record<string, unknown> }> }>;
    const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => { readVarInt(): number; offset: number };
    let seed = 5;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    let paddedTotal = 0;
    for (let round = 0; round < 30; round++) {
      const n = 1 + Math.floor(rand() * 40);
      const padded = new Set<number>();
      const inputs = Array.from({ length: n }, (_, i) => ({
        offsetDelta: i,
        timestampDelta: Math.floor(rand() * 5000),
        key: rand() < 0.2 ? null : Buffer.from(`k${round}-${i}`),
        value: rand() < 0.05 ? null : Buffer.from('v'.repeat(Math.floor(rand() * 300))),
        headers: rand() < 0.3 ? { h: `x${i}` } : {},
      }));
      const records = inputs.map((r, i) => {
        const enc = RecordEncoder(r);
        if (rand() >= 0.1) return enc;
        // Declared longer than its fields: kafkajs decodes the declared bytes and ignores the rest.
        padded.add(i);
        const d = new Decoder(enc.buffer);
        const length = d.readVarInt();
        return new EncoderCtor().writeVarInt(length + 3).writeBuffer(Buffer.concat([enc.buffer.subarray(d.offset), Buffer.from([7, 7, 7])]));
      });
      const batch = await RecordBatch({ firstOffset: '1000', firstTimestamp: 1_767_603_600_000, maxTimestamp: 1_767_603_600_000, lastOffsetDelta: n - 1, records });
      const { records: got } = await decodeBatch(new Decoder(batch.buffer));
      expect(got).toHaveLength(n);
      got.forEach((r, i) => {
        const x = inputs[i]!;
        expect(r.offset).toBe(String(1000 + i));
        expect(r.timestamp).toBe(String(1_767_603_600_000 + x.timestampDelta));
        expect(r.key).toEqual(x.key);
        expect(r.value).toEqual(x.value);
        expect(r.headers).toEqual(Object.fromEntries(Object.entries(x.headers).map(([k, v]) => [k, Buffer.from(v)])));
      });
      paddedTotal += padded.size;
    }
    expect(paddedTotal).toBeGreaterThan(5); // the fallback path was taken
  });

  it('refuses an unpatched or other kafkajs at start-up with a clear fatal error', () => {
    const real = installedKafkajs();
    const unpatched = { ...real.modules, 'kafkajs/src/protocol/recordBatch/crc32C/crc32C.js': (b: Buffer) => b.length };
    expect(() => assertKafkajsPatched({ version: KAFKAJS_VERSION, modules: unpatched })).toThrow(FatalError);
    expect(kafkajsPatchProblem({ version: KAFKAJS_VERSION, modules: unpatched })).toMatch(/without the Tillwatch patch of .*crc32C\.js.*npm ci/);
    expect(kafkajsPatchProblem({ version: '2.3.0', modules: real.modules })).toMatch(/kafkajs 2\.3\.0 is installed but .* pinned to 2\.2\.4/);
    // createKafka (every service's start-up) runs the check on the real install: here it passes.
    const logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Parameters<typeof createKafka>[0]['logger'];
    expect(() => createKafka({ config: { brokers: ['127.0.0.1:1'], clientId: 't', ssl: false } as Parameters<typeof createKafka>[0]['config'], logger })).not.toThrow();
  });
});

describe('createKafka start-up check', () => {
  afterEach(() => {
    vi.doUnmock('../src/kafka/kafkajs-patches.js');
    vi.resetModules();
  });

  it('refuses to create a client when the installed kafkajs is not the patched one', async () => {
    // The same check, told it found kafkajs 2.3.0: createKafka (every service's start-up) must throw it.
    vi.resetModules();
    vi.doMock('../src/kafka/kafkajs-patches.js', async (importOriginal) => {
      const real = await importOriginal<typeof PatchesModule>();
      return { ...real, assertKafkajsPatched: () => real.assertKafkajsPatched({ ...real.installedKafkajs(), version: '2.3.0' }) };
    });
    const { createKafka: create } = await import('../src/kafka/client.js');
    const logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Parameters<typeof create>[0]['logger'];
    expect(() => create({ config: { brokers: ['127.0.0.1:1'], clientId: 't', ssl: false } as Parameters<typeof create>[0]['config'], logger })).toThrow(/kafkajs 2\.3\.0 is installed/);
  });
});
