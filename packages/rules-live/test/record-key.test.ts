// pos.rules.v1 keys (topic.ts, rulesRecordKey): compaction keeps the last record per key, so two
// different records must never share one: a broken document written straight to the topic as "its
// version" must not be able to replace, under compaction, the good record of that version.
import { describe, expect, it } from 'vitest';
import { rulesRecordKey } from '../src/topic.js';

describe('rules record key', () => {
  it('is the version and a digest of the record: identical records share a key, different records of one version do not', () => {
    const good = Buffer.from('version: 4\nrules:\n  abnormal_amount:\n    ratio: 10\n');
    const bad = Buffer.from('version: 4\nrules:\n  abnormal_amount:\n    ratio: 1\n');
    expect(rulesRecordKey(4, good)).toMatch(/^4:[0-9a-f]{16}$/);
    expect(rulesRecordKey(4, Buffer.from(good))).toBe(rulesRecordKey(4, good));
    expect(rulesRecordKey(4, bad)).not.toBe(rulesRecordKey(4, good));
    expect(rulesRecordKey(4, good)).not.toBe('4');
  });
});
