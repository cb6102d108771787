// The registry is a port: this in-memory fake stands in for it so the serde's wire format and
// schema resolution are tested without a network. The real registry is covered by integration tests.
import { describe, expect, it } from 'vitest';
import { AvroSchemas, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, UndecodableRecordError, UnknownSchemaIdError, InvalidRecordError, type RegistryClient } from '@tillwatch/stream';

function fakeRegistry(): RegistryClient & { schemas: Map<number, object> } {
  const schemas = new Map<number, object>();
  let next = 1;
  const fail = () => Promise.reject(new Error('not used'));
  return {
    url: 'mem://',
    schemas,
    async register(_s, schema) {
      for (const [id, s] of schemas) if (JSON.stringify(s) === JSON.stringify(schema)) return id;
      schemas.set(next, schema);
      return next++;
    },
    async getSchemaById(id) {
      const s = schemas.get(id);
      if (!s) throw new UnknownSchemaIdError(id);
      return s;
    },
    setCompatibility: fail, getCompatibility: fail, isCompatible: fail, latest: fail, subjects: fail, ping: fail,
  };
}

const txn: Transaction = {
  event_id: 'e1', txn_id: 't1', kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1', card_token: 'tok_1',
  amount_minor: 1250, currency: 'EUR', terminal_seq: 7, original_txn_id: null, event_time: 1_700_000_000_000, received_time: 1_700_000_001_000,
};

describe('Avro serde (Confluent wire format)', () => {
  it('round-trips with magic byte and schema id', async () => {
    const reg = fakeRegistry();
    const serde = createAvroSerde<Transaction>(reg, 'pos.transactions.v1-value', AvroSchemas.transaction);
    const id = await serde.init();
    const buf = serde.encode(txn);
    expect(buf[0]).toBe(0);
    expect(buf.readUInt32BE(1)).toBe(id);
    await serde.prefetch([buf]);
    expect(serde.decode(buf)).toEqual(txn);
  });

  it('reads a newer writer version with an added optional field as the reader contract', async () => {
    const reg = fakeRegistry();
    const v2 = structuredClone(AvroSchemas.transaction) as { fields: object[] };
    v2.fields.push({ name: 'tip_minor', type: ['null', 'long'], default: null });
    const writer = createAvroSerde<Transaction & { tip_minor: number | null }>(reg, 's', v2);
    await writer.init();
    const buf = writer.encode({ ...txn, tip_minor: 100 });
    const reader = createAvroSerde<Transaction>(reg, 's', AvroSchemas.transaction);
    await reader.init();
    await reader.prefetch([buf]);
    expect(reader.decode(buf)).toEqual(txn);
  });

  it('classifies poison: not wire format, truncated body, unknown id, unreadable writer schema', async () => {
    const reg = fakeRegistry();
    const serde = createAvroSerde<Transaction>(reg, 's', AvroSchemas.transaction);
    await serde.init();
    expect(() => serde.decode(Buffer.from('{"json":true}'))).toThrowError(UndecodableRecordError);
    expect(() => serde.decode(null)).toThrowError(UndecodableRecordError);
    const good = serde.encode(txn);
    expect(() => serde.decode(good.subarray(0, 12))).toThrowError(UndecodableRecordError);
    const unknown = Buffer.from(good);
    unknown.writeUInt32BE(999, 1);
    await serde.prefetch([unknown]);
    expect(() => serde.decode(unknown)).toThrowError(UnknownSchemaIdError);
    const other = await reg.register('x', { type: 'record', name: 'Other', fields: [{ name: 'q', type: 'int' }] });
    const foreign = Buffer.from(good);
    foreign.writeUInt32BE(other, 1);
    await serde.prefetch([foreign]);
    expect(() => serde.decode(foreign)).toThrowError(InvalidRecordError);
  });
});
