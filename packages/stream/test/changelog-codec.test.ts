// The changelog value encoding: any plain data round-trips exactly; JSON values written before the
// binary format still decode; an unknown format byte is refused, never guessed.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { CHANGELOG_FORMAT, CHANGELOG_FORMAT_MSGPACK, decodeChangelogValue, encodeChangelogValue, KEY_DICTIONARY_V1, UnknownChangelogFormatError } from '../src/processor/changelog-codec.js';

describe('changelog codec', () => {
  it('round-trips plain data as exactly as JSON did, behind format byte 0x02', () => {
    fc.assert(
      // A key named __proto__ is the one exception (below): generated ~1 run in 13,000.
      fc.property(fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"')), (v) => {
        const buf = encodeChangelogValue(v);
        expect(buf[0]).toBe(CHANGELOG_FORMAT);
        expect(CHANGELOG_FORMAT).toBe(0x02);
        // What JSON (the encoding it replaces) gives back: the same values (-0 becomes 0 in both).
        expect(decodeChangelogValue(buf)).toStrictEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
    const entity = { id: 'T0000001', last_received: 1_767_603_600_123, max_seq: 2 ** 40 + 3, lag_episode: false, sample: [2500, 1999.5, 0], gaps: [], card: null };
    expect(decodeChangelogValue(encodeChangelogValue(entity))).toStrictEqual(entity);
  }, 30_000);

  it('round-trips maps keyed by dictionary names and others, nested, as JSON did', () => {
    const key = fc.oneof(fc.constantFrom(...KEY_DICTIONARY_V1), fc.string().filter((k) => k !== '__proto__'));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(key, tie('node'), { maxKeys: 20 })),
    })).node;
    fc.assert(
      // A key named __proto__ (generated inside jsonValue too) is the one exception, as above.
      fc.property(fc.dictionary(key, value, { maxKeys: 40 }).filter((v) => !JSON.stringify(v).includes('"__proto__"')), (v) => {
        expect(decodeChangelogValue(encodeChangelogValue(v))).toStrictEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  }, 30_000);

  it('writes a dictionary name as one byte, reads what the previous format (0x01, msgpackr) wrote as before', () => {
    // Append-only: these indexes are in changelogs already written.
    expect(KEY_DICTIONARY_V1.slice(0, 3)).toEqual(['alert_id', 'due', 'id']);
    expect(KEY_DICTIONARY_V1.length).toBeLessThanOrEqual(128);
    expect(new Set(KEY_DICTIONARY_V1).size).toBe(KEY_DICTIONARY_V1.length);
    expect([...encodeChangelogValue({ id: 'T1' })]).toEqual([0x02, 0x81, 2, 0xa2, 0x54, 0x31]);
    const sale = { seq: 7, sale: { txn_id: 'tx_1', event_id: null, card_token: 'tok_1', terminal_id: 'T1', seen: true, voided: false, dup: true, amount: 2599, currency: 'EUR', event_time: 1_767_603_600_123, dup_expiry: 1_767_604_200_123, ref_expiry: 1_770_195_600_123, refunded: 0, refunds: [], sale_card_token: 'tok_1' } };
    const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
    const v1 = Buffer.concat([Buffer.from([CHANGELOG_FORMAT_MSGPACK]), packr.pack(sale)]);
    const v2 = encodeChangelogValue(sale);
    expect(decodeChangelogValue(v1)).toStrictEqual(sale);
    expect(decodeChangelogValue(v2)).toStrictEqual(sale);
    // Every key of this value is in the dictionary: its bytes, less one per key.
    const keys = (o: object): string[] => Object.entries(o).flatMap(([k, x]) => [k, ...(x && typeof x === 'object' && !Array.isArray(x) ? keys(x) : [])]);
    expect(v2.length).toBe(v1.length - keys(sale).reduce((n, k) => n + k.length, 0));
  });

  it('writes what msgpackr writes for keys outside the dictionary, at every size class of string, array, map and integer, across slab boundaries', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
    const str = (n: number, c = 'a') => c.repeat(n);
    const map = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i % 3 === 0 ? null : i * 1.5]));
    const samples: unknown[] = [
      0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 1_767_603_600_123, 0.1, -2.5e-300, Number.MAX_SAFE_INTEGER,
      '', str(31), str(32), str(255), str(256), str(65535), str(65536), 'é', str(40, 'é'), str(200, '€'), '😀 emoji', true, false, null,
      [], Array.from({ length: 15 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 70_000 }, (_, i) => i % 200),
      map(0), map(15), map(16), map(300), map(70_000), { nested: [{ a: [map(17)] }], s: str(300_000) },
    ];
    for (const v of samples) {
      const buf = encodeChangelogValue(v);
      expect(buf.subarray(1).equals(packr.pack(v))).toBe(true);
      expect(JSON.stringify(decodeChangelogValue(buf))).toBe(JSON.stringify(v));
    }
    // Thousands of values through the shared slab: each keeps its bytes after later ones are written.
    const values = Array.from({ length: 5000 }, (_, i) => ({ id: `T${i}`, sample: [i, i + 0.5], pad: str(i % 400) }));
    const bufs = values.map((v) => encodeChangelogValue(v));
    bufs.forEach((b, i) => expect(decodeChangelogValue(b)).toStrictEqual(values[i]));
  }, 30_000);

  it('keeps JSON\'s plain-data meaning: undefined properties left out, undefined in arrays null, -0 is 0; refuses anything else', () => {
    expect(decodeChangelogValue(encodeChangelogValue({ a: undefined, b: [undefined, -0], c: 1 }))).toStrictEqual({ b: [null, 0], c: 1 });
    // msgpackr's decoder renames a key __proto__ to __proto_ (its guard against prototype
    // pollution): the engine's entities have fixed field names and never that one.
    expect(decodeChangelogValue(encodeChangelogValue(JSON.parse('{"__proto__":null,"a":1}')))).toStrictEqual({ __proto_: null, a: 1 });
    expect(() => encodeChangelogValue({ at: new Date(0) })).toThrow(TypeError);
    expect(() => encodeChangelogValue({ n: 10n })).toThrow(TypeError);
    expect(() => encodeChangelogValue(new Map())).toThrow(TypeError);
    // A refused value leaves nothing behind: the next one encodes as usual.
    expect(decodeChangelogValue(encodeChangelogValue({ ok: true }))).toStrictEqual({ ok: true });
  });

  it('is smaller than the JSON it replaces for an entity value', () => {
    const sale = { seq: 123456, sale: { txn_id: 'txn-5f0c1e2d-0001', event_id: null, card_token: 'tok_00a1b2', terminal_id: 'T0001234', seen: true, voided: false, dup: true, amount: 2599, currency: 'EUR', event_time: 1_767_603_600_123, dup_expiry: 1_767_604_200_123, ref_expiry: 1_770_195_600_123, refunded: 0, refunds: [] } };
    expect(encodeChangelogValue(sale).length).toBeLessThan(Buffer.from(JSON.stringify(sale)).length);
  });

  it('reads values written as JSON (first byte "{") by earlier versions', () => {
    const old = { id: 'T1', sample: [1, 2, 3], gaps: [{ from: 4, to: 6 }], lag_episode: true };
    expect(decodeChangelogValue(Buffer.from(JSON.stringify(old)))).toStrictEqual(old);
  });

  it('refuses a format byte it does not know', () => {
    expect(() => decodeChangelogValue(Buffer.from([0x03, 0x80]))).toThrow(UnknownChangelogFormatError);
    // A dictionary index this version does not have (a newer writer), or bytes it never writes.
    expect(() => decodeChangelogValue(Buffer.from([0x02, 0x81, 0x7f, 0x00]))).toThrow(UnknownChangelogFormatError);
    expect(() => decodeChangelogValue(Buffer.from([0x02, 0xc4, 0x01, 0x00]))).toThrow(UnknownChangelogFormatError);
    expect(() => decodeChangelogValue(Buffer.from([0x02, 0x92, 0x01]))).toThrow(RangeError);
    expect(() => decodeChangelogValue(Buffer.from([0x02, 0x01, 0x01]))).toThrow(RangeError);
    expect(() => decodeChangelogValue(Buffer.alloc(0))).toThrow(/format byte 0x00/);
  });
});
