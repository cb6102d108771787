import { describe, expect, it } from 'vitest';
import { RulesConfigError } from '@tillwatch/rules';
import type { RulesDocument } from '@tillwatch/schemas';
import { RulesLedger, checkRecord, formatOfPath, validateRulesDocument } from '../src/index.js';

const doc = (version: number, ratio = 10, extra = ''): string => `version: ${version}\nrules:\n  abnormal_amount:\n    ratio: ${ratio}\n${extra}`;
const rec = (version: number, document = doc(version), over: Partial<RulesDocument> = {}): RulesDocument => ({
  version,
  format: 'yaml',
  document,
  pushed_by: 'ana',
  pushed_at: 1_767_000_000_000 + version,
  via: 'cli',
  comment: null,
  ...over,
});

describe('validateRulesDocument', () => {
  it('returns the config of a valid document with its version', () => {
    expect(validateRulesDocument(doc(3, 6), 'yaml').version).toBe(3);
    expect(validateRulesDocument(JSON.stringify({ version: 2, rules: { sync_lag: { threshold: '20m' } } }), 'json').rules.sync_lag.threshold).toBe(20 * 60_000);
  });

  it('lists every problem at once, including a missing version', () => {
    try {
      validateRulesDocument('rules:\n  abnormal_amount:\n    ratio: 1\n  sync_lag:\n    severity: urgent\n', 'yaml');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RulesConfigError);
      expect((e as RulesConfigError).issues.map((i) => i.path).sort()).toEqual(['rules.abnormal_amount.ratio', 'rules.sync_lag.severity', 'version']);
    }
    expect(() => validateRulesDocument('', 'yaml')).toThrow(/declare its version/);
    expect(() => validateRulesDocument('{', 'json')).toThrow(/not valid JSON/);
    expect(() => validateRulesDocument('version: 0\n', 'yaml')).toThrow(/version/);
  });

  it('takes the format from the file name', () => {
    expect(formatOfPath('a/rules.JSON')).toBe('json');
    expect(formatOfPath('rules.yml')).toBe('yaml');
    expect(formatOfPath('rules')).toBe('yaml');
  });
});

describe('checkRecord', () => {
  it('refuses a record whose version differs from its document', () => {
    const r = checkRecord(rec(3, doc(2)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.problem).toMatch(/record is version 3 but its document says version 2/);
  });
});

describe('a refund_after_deadline deadline equal to the lookback', () => {
  const equal = (v: number) => doc(v, 10, 'engine:\n  refund_lookback: 8d\noverrides:\n  merchants:\n    M0200:\n      refund_after_deadline: { deadline: 8d }\n');
  it('is refused in a new document (push, validate, PUT /rules)', () => {
    expect(() => validateRulesDocument(equal(2), 'yaml')).toThrow(/overrides\.merchants\.M0200\.refund_after_deadline\.deadline: must be shorter than engine\.refund_lookback/);
  });

  it('keeps a version pushed before that check in force on replay, instead of falling back to an older one', () => {
    const l = new RulesLedger();
    l.apply(rec(1), '0');
    expect(l.apply(rec(2, equal(2)), '1').kind).toBe('applied');
    expect(l.active()!.config.version).toBe(2);
    expect(l.active()!.config.overrides.merchants['M0200']!.refund_after_deadline!.deadline).toBe(8 * 86_400_000);
    // Longer than the lookback was always refused, and still is.
    expect(l.apply(rec(3, equal(3).replace('deadline: 8d', 'deadline: 9d')), '2').kind).toBe('rejected');
  });
});

describe('RulesLedger', () => {
  it('applies increasing versions and keeps every record in the history', () => {
    const l = new RulesLedger();
    expect(l.active()).toBeNull();
    expect(l.apply(rec(1), '0').kind).toBe('applied');
    expect(l.apply(rec(2, doc(2, 6)), '1').kind).toBe('applied');
    expect(l.active()!.config.version).toBe(2);
    expect(l.active()!.config.rules.abnormal_amount.ratio).toBe(6);
    expect(l.history().map((e) => [e.version, e.status])).toEqual([
      [1, 'superseded'],
      [2, 'active'],
    ]);
  });

  it('refuses an invalid document and keeps the last good version', () => {
    const l = new RulesLedger();
    l.apply(rec(1), '0');
    const o = l.apply(rec(2, doc(2, 1)), '1');
    expect(o.kind).toBe('rejected');
    if (o.kind === 'rejected') {
      expect(o.reason).toBe('invalid');
      expect(o.entry.problems[0]!.path).toBe('rules.abnormal_amount.ratio');
    }
    expect(l.active()!.config.version).toBe(1);
    expect(l.history().map((e) => e.status)).toEqual(['active', 'rejected']);
  });

  it('refuses a stale version, ignores an identical re-publication, and records undecodable records', () => {
    const l = new RulesLedger();
    l.apply(rec(3), '0');
    expect(l.apply(rec(2), '1')).toMatchObject({ kind: 'rejected', reason: 'stale' });
    expect(l.apply(rec(3, doc(3, 7)), '2')).toMatchObject({ kind: 'rejected', reason: 'stale' });
    expect(l.apply(rec(3), '3')).toMatchObject({ kind: 'duplicate' });
    expect(l.reject('4', 'not Avro')).toMatchObject({ kind: 'rejected', reason: 'undecodable' });
    expect(l.active()!.entry.offset).toBe('0');
    expect(l.history().map((e) => e.status)).toEqual(['active', 'rejected', 'rejected', 'duplicate', 'rejected']);
  });

  it('is deterministic: the same records in the same order give the same version in force', () => {
    const records = [rec(1), rec(3, doc(2)), rec(2, doc(2, 5)), rec(2, doc(2, 4)), rec(4, doc(4, 3.5))];
    const fold = () => {
      const l = new RulesLedger();
      records.forEach((r, i) => l.apply(r, String(i)));
      return [l.active()!.config.version, l.active()!.config.rules.abnormal_amount.ratio, l.history().map((e) => e.status)];
    };
    expect(fold()).toEqual(fold());
    expect(fold()[0]).toBe(4);
  });
});
