// Pure parts: PAN masking, cursors, API key parsing and checking, config, the page cache.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@tillwatch/config';
import { luhnValid, maskDeep, maskPan } from '../src/mask.js';
import { CURSOR_PATTERN, CursorError, decodeCursor, encodeCursor } from '../src/cursor.js';
import { createAuthenticator, extractKey, generateDevKey, parseApiKeys, roleAllows } from '../src/auth.js';
import { apiConfig, readModelEnabled } from '../src/config.js';
import { createPageCache } from '../src/cache.js';
import fc from 'fast-check';
import { parseDateTimeParam } from '../src/app.js';

describe('maskPan', () => {
  it('masks Luhn-valid 13-19 digit numbers, plain or grouped, keeping the last four', () => {
    expect(maskPan('4111111111111111')).toBe('[PAN ****1111]');
    expect(maskPan('card 4111 1111 1111 1111 declined')).toBe('card [PAN ****1111] declined');
    expect(maskPan('5500-0000-0000-0004')).toBe('[PAN ****0004]');
    expect(maskPan('378282246310005')).toBe('[PAN ****0005]'); // 15-digit Amex
    expect(maskPan('a=4111111111111111&b=5500000000000004')).toBe('a=[PAN ****1111]&b=[PAN ****0004]');
  });
  it('leaves tokens, ids, timestamps and Luhn-invalid numbers alone', () => {
    for (const s of ['tok_5f3a9c0d1e2b', '4111111111111112', '1795635795410', '12345678-1234-1234-1234-123456789012', '123456789012', 'ev-06701d45105fce3b91b56f44', '41111111111111111111111']) {
      expect(maskPan(s)).toBe(s);
    }
    // ...but a PAN glued into other text is still a PAN.
    expect(maskPan('tok_4111111111111111x')).toBe('tok_[PAN ****1111]x');
    // Grouped digits inside a longer token are not: UUIDs whose digit fragments pass Luhn stay intact.
    for (const s of ['b6ddba8d-a341-4808-8973-281f4352d513', 'ev-a4111-1111-1111-1111', 'x4111 1111 1111 1111']) expect(maskPan(s)).toBe(s);
    expect(luhnValid('34148088973281')).toBe(true);
    // The platform's own 128-bit hex ids (alert_id, update_id) can hold a 13+ digit run that passes
    // Luhn (about 1 id in 250): inside a hex digest it is an id, not a PAN. This id was corrupted once.
    expect(luhnValid('4222222222222')).toBe(true);
    for (const s of ['16240c4222222222222d6ffd71a2b4e5', 'alert 16240c4222222222222d6ffd71a2b4e5 fired']) expect(maskPan(s)).toBe(s);
    // ...but the same digits in a short or non-hex token are still masked.
    expect(maskPan('c4222222222222d')).toBe('c[PAN ****2222]d');
    // Amex and Diners groupings, and a 19-digit 4-4-4-7.
    expect(maskPan('amex 3782-822463-10005 ok')).toBe('amex [PAN ****0005] ok');
    expect(maskPan('(3056 930902 5904)')).toBe('([PAN ****5904])');
    expect(maskPan('6304 0000 0000 0000 018')).toBe('[PAN ****0018]');
  });
  it('luhn', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
  });
  it('maskDeep masks strings only and copies only what changed', () => {
    const input = { a: 'x 4111111111111111', n: 4111111111111111, nested: [{ s: '5500000000000004' }, 'ok'], keep: { k: 'v' } };
    const out = maskDeep(input);
    expect(out).toEqual({ a: 'x [PAN ****1111]', n: 4111111111111111, nested: [{ s: '[PAN ****0004]' }, 'ok'], keep: { k: 'v' } });
    expect(out.keep).toBe(input.keep);
    expect(input.a).toBe('x 4111111111111111');
  });
});

describe('cursor', () => {
  it('round-trips and is opaque url-safe text', () => {
    const c = { t: 1795635795410, id: 'al-abc' };
    const s = encodeCursor(c);
    expect(s).toMatch(new RegExp(CURSOR_PATTERN));
    expect(decodeCursor(s)).toEqual(c);
    const odd = { t: 0, id: 'ü/?&=' };
    expect(decodeCursor(encodeCursor(odd))).toEqual(odd);
  });
  it('decodes every string its schema pattern accepts (a schema-valid cursor is never refused)', () => {
    for (const ok of ['0.A', '007.x', 'zzzzzzzzzz.' + 'A'.repeat(344), 'mj0v5k2q.__--']) {
      const c = decodeCursor(ok);
      expect(Number.isSafeInteger(c.t)).toBe(true);
      expect(typeof c.id).toBe('string');
    }
  });
  it('rejects anything else with a CursorError', () => {
    for (const bad of ['', 'x', '1', '1.', '.a', '-1.a', '1.a=', 'A.a', '12345678901.a', Buffer.from('[1,1,"a"]').toString('base64url')]) {
      expect(() => decodeCursor(bad)).toThrow(CursorError);
    }
  });
});

describe('API keys', () => {
  const k = (s: string) => s.padEnd(20, '0');
  it('parses key:role:name entries', () => {
    expect(parseApiKeys(` ${k('a')}:viewer:alice , ${k('b')}:admin:bob`)).toEqual([
      { key: k('a'), role: 'viewer', name: 'alice' },
      { key: k('b'), role: 'admin', name: 'bob' },
    ]);
  });
  it('rejects bad entries naming the entry, never echoing the key', () => {
    const cases: [string, RegExp][] = [
      [`${k('a')}:superuser:alice`, /entry 1 \(<key redacted>:superuser:alice\) has unknown role "superuser"/],
      ['short:viewer:alice', /entry 1 .* key that is too short/],
      [`${k('a')}:viewer`, /does not have exactly three/],
      [`${k('a')}:viewer:al ice`, /has an invalid name/],
      [`${k('a')}:viewer:alice,${k('b')}:admin:alice`, /entry 2 .* repeats the name "alice"/],
      [`${k('a')}:viewer:alice,${k('a')}:admin:bob`, /entry 2 .* repeats a key/],
      [' , ', /API_KEYS: expected/],
    ];
    for (const [raw, msg] of cases) {
      let err: unknown;
      try {
        parseApiKeys(raw);
      } catch (e) {
        err = e;
      }
      expect(err, raw).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain(k('a'));
    }
  });
  it('authenticates by digest; roles are ordered viewer < analyst < admin', () => {
    const auth = createAuthenticator(parseApiKeys(`${k('a')}:viewer:alice,${k('b')}:analyst:bob`));
    expect(auth.authenticate(k('a'))).toEqual({ name: 'alice', role: 'viewer' });
    expect(auth.authenticate(k('b'))).toEqual({ name: 'bob', role: 'analyst' });
    expect(auth.authenticate(k('c'))).toBeUndefined();
    expect(auth.authenticate('')).toBeUndefined();
    expect(JSON.stringify(auth)).not.toContain(k('a'));
    expect(roleAllows('viewer', 'viewer')).toBe(true);
    expect(roleAllows('viewer', 'analyst')).toBe(false);
    expect(roleAllows('analyst', 'analyst')).toBe(true);
    expect(roleAllows('analyst', 'admin')).toBe(false);
    expect(roleAllows('admin', 'analyst')).toBe(true);
    expect(roleAllows('viewer', 'public')).toBe(true);
  });
  it('extracts the key from x-api-key or Authorization: Bearer', () => {
    expect(extractKey({})).toEqual({ kind: 'missing' });
    expect(extractKey({ 'x-api-key': 'abc' })).toEqual({ kind: 'key', value: 'abc' });
    expect(extractKey({ authorization: 'Bearer abc' })).toEqual({ kind: 'key', value: 'abc' });
    expect(extractKey({ authorization: 'bearer   abc' })).toEqual({ kind: 'key', value: 'abc' });
    expect(extractKey({ authorization: 'Bearer abc', 'x-api-key': 'abc' })).toEqual({ kind: 'key', value: 'abc' });
    expect(extractKey({ authorization: 'Basic abc' }).kind).toBe('malformed');
    expect(extractKey({ authorization: 'Bearer abc', 'x-api-key': 'def' }).kind).toBe('malformed');
    expect(extractKey({ 'x-api-key': ['a', 'b'] }).kind).toBe('malformed');
  });
  it('generates a random admin dev key', () => {
    const a = generateDevKey();
    expect(a).toMatchObject({ role: 'admin', name: 'dev' });
    expect(a.key).toMatch(/^twdev_[A-Za-z0-9_-]{43}$/);
    expect(generateDevKey().key).not.toBe(a.key);
    expect(parseApiKeys(`${a.key}:admin:dev`)[0]!.key).toBe(a.key);
  });
});

describe('apiConfig', () => {
  it('defaults; API_KEYS unset is allowed outside production only', () => {
    expect(apiConfig({})).toEqual({ apiKeys: undefined, production: false, rateLimitMax: 6000, rateLimitWindowMs: 60000, alertsCacheMs: 1000, alertsCacheStaleMs: 5000, feedPollMs: 1000, sseHeartbeatMs: 15000, readModel: 'auto', readModelMaxAlerts: 2_000_000, readModelRowBytes: 256 * 1024 * 1024, opsPort: 9466 });
    expect(apiConfig({ API_READ_MODEL_MAX_ALERTS: '0', API_READ_MODEL_ROWS_MB: '16' })).toMatchObject({ readModelMaxAlerts: 0, readModelRowBytes: 16 * 1024 * 1024 });
    expect(() => apiConfig({ NODE_ENV: 'production' })).toThrow(/API_KEYS: expected key:role:name entries \(mandatory in production/);
    expect(() => apiConfig({ TILLWATCH_ENV: 'production' })).toThrow(ConfigError);
    expect(apiConfig({ NODE_ENV: 'production', API_KEYS: 'k0123456789abcdef0:viewer:v' }).apiKeys).toHaveLength(1);
  });
  it('names the variable and the expectation', () => {
    expect(() => apiConfig({ API_RATE_LIMIT_MAX: '-1' })).toThrow('API_RATE_LIMIT_MAX: expected an integer between 0 and 10000000, got "-1"');
    expect(() => apiConfig({ API_ALERTS_CACHE_MS: 'soon' })).toThrow(/API_ALERTS_CACHE_MS: expected an integer/);
    expect(() => apiConfig({ API_READ_MODEL_ROWS_MB: '0' })).toThrow(/API_READ_MODEL_ROWS_MB: expected an integer between 1 and/);
    expect(() => apiConfig({ API_READ_MODEL: 'yes' })).toThrow(/API_READ_MODEL: expected/);
    expect(() => apiConfig({ API_OPS_PORT: '70000' })).toThrow(/API_OPS_PORT: expected/);
  });
  it('read model: on by default over embedded chDB, opt-in (API_READ_MODEL=on) over a ClickHouse server', () => {
    const cfg = (env: Record<string, string>) => apiConfig(env);
    expect(readModelEnabled(cfg({}), 'embedded')).toBe(true);
    expect(readModelEnabled(cfg({}), 'http')).toBe(false);
    expect(readModelEnabled(cfg({ API_READ_MODEL: 'on' }), 'http')).toBe(true);
    expect(readModelEnabled(cfg({ API_READ_MODEL: 'off' }), 'embedded')).toBe(false);
    expect(readModelEnabled(cfg({ API_READ_MODEL: 'on', API_READ_MODEL_MAX_ALERTS: '0' }), 'http')).toBe(false);
  });
});

describe('page cache', () => {
  it('coalesces concurrent identical loads, serves hits within the TTL, expires, invalidates', async () => {
    let t = 0;
    let loads = 0;
    const cache = createPageCache<number>({ ttlMs: 100, now: () => t, random: () => 0.5 });
    const load = () => new Promise<number>((r) => setTimeout(() => r(++loads), 5));
    const a = cache.get('k', load);
    const b = cache.get('k', load);
    expect([a.result, b.result]).toEqual(['miss', 'coalesced']);
    expect(await a.value).toBe(1);
    expect(await b.value).toBe(1);
    expect(cache.get('k', load).result).toBe('hit');
    t = 100;
    const c = cache.get('k', load);
    expect(c.result).toBe('miss');
    expect(await c.value).toBe(2);
    cache.invalidate();
    expect(cache.get('k', load).result).toBe('miss');
  });
  it('serves a stale page while one background load refreshes it; invalidation wins over a late refresh', async () => {
    let t = 0;
    let loads = 0;
    let release: (() => void) | undefined;
    const cache = createPageCache<number>({ ttlMs: 100, staleMs: 400, now: () => t, random: () => 0.5 });
    const load = () => {
      loads += 1;
      const n = loads;
      return new Promise<number>((r) => (release = () => r(n)));
    };
    const first = cache.get('k', load);
    release!();
    expect(await first.value).toBe(1);
    t = 150;
    const s1 = cache.get('k', load);
    const s2 = cache.get('k', load);
    expect([s1.result, s2.result]).toEqual(['stale', 'stale']);
    expect(await s1.value).toBe(1);
    expect(loads).toBe(2); // one refresh for both
    release!();
    await new Promise((r) => setTimeout(r, 0));
    const fresh = cache.get('k', load);
    expect(fresh.result).toBe('hit');
    expect(await fresh.value).toBe(2);
    // Too old: wait for a new load.
    t = 1000;
    expect(cache.get('k', load).result).toBe('miss');
    release!();
    await new Promise((r) => setTimeout(r, 0));
    // A refresh that completes after invalidate() is not stored.
    t = 1200;
    expect(cache.get('k', load).result).toBe('stale');
    cache.invalidate();
    release!();
    await new Promise((r) => setTimeout(r, 0));
    expect(cache.get('k', load).result).toBe('miss');
  });

  it('never caches a failure; ttl 0 disables', async () => {
    const cache = createPageCache<number>({ ttlMs: 1000 });
    const failing = cache.get('k', () => Promise.reject(new Error('down')));
    await expect(failing.value).rejects.toThrow('down');
    await new Promise((r) => setTimeout(r, 0));
    expect(cache.get('k', () => Promise.resolve(1)).result).toBe('miss');
    const off = createPageCache<number>({ ttlMs: 0 });
    expect(off.get('k', () => Promise.resolve(1)).result).toBe('miss');
    expect(off.get('k', () => Promise.resolve(1)).result).toBe('miss');
    expect(off.size).toBe(0);
  });
  it('jitters each entry\'s TTL by +-25% so pages loaded together refresh apart', async () => {
    let t = 0;
    const r = [0, 1];
    const cache = createPageCache<number>({ ttlMs: 100, staleMs: 1000, now: () => t, random: () => r.shift() ?? 0.5 });
    cache.get('a', () => Promise.resolve(1)); // ttl 75
    cache.get('b', () => Promise.resolve(2)); // ttl 125
    await new Promise((res) => setTimeout(res, 0));
    t = 100;
    expect(cache.get('a', () => Promise.resolve(1)).result).toBe('stale');
    expect(cache.get('b', () => Promise.resolve(2)).result).toBe('hit');
  });

  it('is bounded', () => {
    const cache = createPageCache<number>({ ttlMs: 1000, maxEntries: 3 });
    for (let i = 0; i < 10; i++) cache.get(`k${i}`, () => Promise.resolve(i));
    expect(cache.size).toBe(3);
  });
});

describe('parseDateTimeParam (from / to)', () => {
  // From year 100 on: for the forms outside ECMAScript's own (a space, lowercase, +0100) V8 falls
  // back to a legacy parser that reads years 0-49 as 2000-2049 and 50-99 as 1950-1999.
  it('agrees with Date.parse wherever Date.parse answers (years 100-9999)', () => {
    const two = (n: number) => String(n).padStart(2, '0');
    fc.assert(
      fc.property(
        fc.record({
          y: fc.integer({ min: 100, max: 9999 }), mo: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 28 }),
          h: fc.integer({ min: 0, max: 23 }), mi: fc.integer({ min: 0, max: 59 }), s: fc.integer({ min: 0, max: 59 }),
          frac: fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined }),
          sep: fc.constantFrom('T', 't', ' '),
          zone: fc.oneof(fc.constantFrom('Z', 'z'), fc.record({ sign: fc.constantFrom('+', '-'), h: fc.integer({ min: 0, max: 23 }), m: fc.integer({ min: 0, max: 59 }), colon: fc.boolean() }).map((z) => `${z.sign}${two(z.h)}${z.colon ? ':' : ''}${two(z.m)}`)),
        }),
        (r) => {
          const text = `${String(r.y).padStart(4, '0')}-${two(r.mo)}-${two(r.d)}${r.sep}${two(r.h)}:${two(r.mi)}:${two(r.s)}${r.frac === undefined ? '' : `.${r.frac}`}${r.zone}`;
          const expected = Date.parse(text);
          if (!Number.isNaN(expected)) expect(parseDateTimeParam(text), text).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('reads a leap second as the last millisecond of its minute, and an offset without minutes', () => {
    expect(Date.parse('2016-12-31T23:59:60Z')).toBeNaN(); // why the API does not use Date.parse as is
    expect(parseDateTimeParam('2016-12-31T23:59:60Z')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
    expect(parseDateTimeParam('2016-12-31T23:59:60.25Z')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
    expect(parseDateTimeParam('2017-01-01T00:59:60+01:00')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
    expect(parseDateTimeParam('2016-12-31T18:59:60-0500')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
    expect(parseDateTimeParam('2016-12-31T12:00:00+01')).toBe(Date.UTC(2016, 11, 31, 11, 0, 0));
    // Years before 100 as written (Date.parse's legacy path, taken for a space, says 1950 and 2000).
    expect(parseDateTimeParam('0050-06-01T00:00:00Z')).toBe(Date.parse('0050-06-01T00:00:00Z'));
    expect(parseDateTimeParam('0050-06-01 00:00:00Z')).toBe(Date.parse('0050-06-01T00:00:00Z'));
    expect(parseDateTimeParam('0000-01-01 00:00:00+0000')).toBe(Date.parse('0000-01-01T00:00:00Z'));
  });

  it('answers NaN for what is no date-time', () => {
    for (const s of ['', 'yesterday', '2016-02-30T12:00:00Z', '2016-12-31T24:00:00Z', '2016-12-31T23:59:60', '2016-12-31T23:60:00Z']) expect(parseDateTimeParam(s), s).toBeNaN();
  });
});
