// The changelog value encoding: any plain data round-trips exactly; JSON values written before the
// binary format still decode; an unknown format byte is refused, never guessed.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CHANGELOG_FORMAT_MSGPACK, decodeChangelogValue, encodeChangelogValue, UnknownChangelogFormatError } from '../src/processor/changelog-codec.js';

describe('changelog codec', () => {
  it('round-trips plain data as exactly as JSON did, behind format byte 0x01', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const buf = encodeChangelogValue(v);
        expect(buf[0]).toBe(CHANGELOG_FORMAT_MSGPACK);
        // What JSON (the encoding it replaces) gives back: the same values (-0 becomes 0 in both).
        expect(decodeChangelogValue(buf)).toStrictEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
    const entity = { id: 'T0000001', last_received: 1_767_603_600_123, max_seq: 2 ** 40 + 3, lag_episode: false, sample: [2500, 1999.5, 0], gaps: [], card: null };
    expect(decodeChangelogValue(encodeChangelogValue(entity))).toStrictEqual(entity);
  }, 30_000);

  it('is smaller than the JSON it replaces for an entity value', () => {
    const sale = { seq: 123456, sale: { txn_id: 'txn-5f0c1e2d-0001', event_id: null, card_token: 'tok_00a1b2', terminal_id: 'T0001234', seen: true, voided: false, dup: true, amount: 2599, currency: 'EUR', event_time: 1_767_603_600_123, dup_expiry: 1_767_604_200_123, ref_expiry: 1_770_195_600_123, refunded: 0, refunds: [] } };
    expect(encodeChangelogValue(sale).length).toBeLessThan(Buffer.from(JSON.stringify(sale)).length);
  });

  it('reads values written as JSON (first byte "{") by earlier versions', () => {
    const old = { id: 'T1', sample: [1, 2, 3], gaps: [{ from: 4, to: 6 }], lag_episode: true };
    expect(decodeChangelogValue(Buffer.from(JSON.stringify(old)))).toStrictEqual(old);
  });

  it('refuses a format byte it does not know', () => {
    expect(() => decodeChangelogValue(Buffer.from([0x02, 0x80]))).toThrow(UnknownChangelogFormatError);
    expect(() => decodeChangelogValue(Buffer.alloc(0))).toThrow(/format byte 0x00/);
  });
});
