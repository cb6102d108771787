import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { AvroSchemas, InvalidValueError, TopicContracts, Topics, alertUpdateId, contractJson, topicNames, topicSpecs, validateTransaction } from '@tillwatch/schemas';
import { generate } from '../scripts/gen-types.js';

const valid = {
  event_id: '6f1c1a52-3f9e-4c1e-9a59-2f0a9d1f3b11', txn_id: 'tx1', kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1',
  card_token: 'tok_abc', amount_minor: 1250, currency: 'EUR', terminal_seq: 7, original_txn_id: null, event_time: 1_767_000_000_000, received_time: 1_767_000_000_500,
};

describe('contracts', () => {
  it('the generated TypeScript types are up to date with schemas/avro (run: npx tsx schemas/scripts/gen-types.ts)', () => {
    const onDisk = readFileSync(fileURLToPath(new URL('../src/generated.ts', import.meta.url)), 'utf8');
    expect(onDisk).toBe(generate());
  });

  it('every Avro schema parses and every contract topic is versioned', () => {
    for (const schema of Object.values(AvroSchemas)) expect(() => avro.Type.forSchema(schema as avro.Schema)).not.toThrow();
    for (const topic of Object.values(Topics)) expect(topic).toMatch(/\.v\d+$/);
    for (const topic of Object.keys(TopicContracts)) expect(Object.values(Topics)).toContain(topic);
  });

  it('keeps the changelog co-partitioned with its input and compacted', () => {
    const specs = topicSpecs(12);
    const byRole = Object.fromEntries(specs.map((s) => [s.role, s]));
    expect(byRole.detectorChangelog!.partitions).toBe(byRole.transactions!.partitions);
    expect(byRole.detectorChangelog!.config['cleanup.policy']).toBe('compact');
  });

  it('prefixes every topic name with TOPIC_PREFIX', () => {
    expect(topicNames('tenant-a').transactions).toBe('tenant-a.pos.transactions.v1');
    expect(topicNames().alerts).toBe('pos.alerts.v1');
  });

  it('validates a transaction and names the offending field', () => {
    expect(validateTransaction(valid)).toEqual(valid);
    const bad = (patch: object) => () => validateTransaction({ ...valid, ...patch });
    expect(bad({ amount_minor: -1 })).toThrowError(/amount_minor/);
    expect(bad({ kind: 'REFUNDED' })).toThrowError(/kind: expected one of SALE, REFUND, REVERSAL, VOID/);
    expect(bad({ currency: 'euro' })).toThrowError(/currency/);
    expect(bad({ terminal_id: '' })).toThrowError(/terminal_id/);
    expect(bad({ card_token: '4111111111111111' })).toThrowError(/PAN/);
    expect(bad({ event_time: 1.5 })).toThrowError(InvalidValueError);
    expect(() => validateTransaction('x')).toThrowError(InvalidValueError);
  });
});

describe('money-trail contracts', () => {
  it('alert updates and refund reasons are provisioned like alerts (same partitions, merchant key)', () => {
    const byRole = Object.fromEntries(topicSpecs(12).map((s) => [s.role, s]));
    expect(Topics.alertUpdates).toBe('pos.alerts.updates.v1');
    expect(Topics.refundReasons).toBe('pos.refunds.reasons.v1');
    expect(byRole.alertUpdates!.partitions).toBe(byRole.alerts!.partitions);
    expect(byRole.refundReasons!.partitions).toBe(byRole.transactions!.partitions);
    expect(TopicContracts[Topics.alertUpdates]).toBe('alertUpdate');
    expect(TopicContracts[Topics.refundReasons]).toBe('refundReason');
    // Deterministic, independent of the evidence order, different per resolution.
    const id = alertUpdateId('a1', 'auto_resolved', 'refunded', ['e2', 'e1']);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(alertUpdateId('a1', 'auto_resolved', 'refunded', ['e1', 'e2'])).toBe(id);
    expect(alertUpdateId('a1', 'auto_resolved', 'reversed', ['e1', 'e2'])).not.toBe(id);
    expect(alertUpdateId('a2', 'auto_resolved', 'refunded', ['e1', 'e2'])).not.toBe(id);
    // A record omitting a null-default field and one decoded with it as null give the same line.
    expect(contractJson('refundReason', { event_id: 'e', txn_id: 't' })).toBe(contractJson('refundReason', { event_id: 'e', txn_id: 't', original_txn_id: null, alert_id: null }));
  });

  it('alert.avsc gains currency and amount_minor backward-compatibly: old alerts read with null', () => {
    const current = avro.Type.forSchema(AvroSchemas.alert as avro.Schema);
    const oldSchema = { ...AvroSchemas.alert, fields: (AvroSchemas.alert as { fields: { name: string }[] }).fields.filter((f) => f.name !== 'currency' && f.name !== 'amount_minor') };
    const old = avro.Type.forSchema(oldSchema as avro.Schema);
    const a = { alert_id: 'a', rule: 'r', rule_version: 1, severity: 'low', terminal_id: 'T', merchant_id: 'M', card_token: null, event_ids: [], window_start: 1, window_end: 1, detected_at: 1, summary: 's', details: {} };
    const read = current.fromBuffer(old.toBuffer(a), current.createResolver(old)) as Record<string, unknown>;
    expect(read.currency).toBeNull();
    expect(read.amount_minor).toBeNull();
    // And a producer may omit them.
    expect((current.fromBuffer(current.toBuffer(a)) as Record<string, unknown>).currency).toBeNull();
  });
});
