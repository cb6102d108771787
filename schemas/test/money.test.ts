import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CURRENCY_EXPONENTS, UNKNOWN_CURRENCY_NOTE, currencyExponent, formatMoney, moneyParts } from '@tillwatch/schemas';

describe('formatMoney', () => {
  it('uses the ISO 4217 exponent of the currency', () => {
    expect(formatMoney(2500, 'EUR')).toBe('25.00 EUR');
    expect(formatMoney(2500, 'JPY')).toBe('2500 JPY');
    expect(formatMoney(1250, 'KWD')).toBe('1.250 KWD');
    expect(formatMoney(12345, 'CLF')).toBe('1.2345 CLF');
    expect(formatMoney(5, 'USD')).toBe('0.05 USD');
    expect(formatMoney(0, 'EUR')).toBe('0.00 EUR');
    expect(formatMoney(-5, 'BHD')).toBe('-0.005 BHD');
    expect(formatMoney(-2500, 'EUR')).toBe('-25.00 EUR');
    expect(formatMoney(7, 'XAU')).toBe('7 XAU');
    expect(formatMoney(2500, 'eur')).toBe('25.00 EUR');
  });

  it('gives an unknown code 2 decimals and says so', () => {
    expect(formatMoney(2500, 'ABC')).toBe(`25.00 ABC ${UNKNOWN_CURRENCY_NOTE}`);
    expect(currencyExponent('ABC')).toEqual({ exponent: 2, known: false });
    expect(moneyParts(1, 'ZZZ')).toEqual({ major: '0.01', currency: 'ZZZ', exponent: 2, known: false });
    // Withdrawn codes are not current: flagged.
    for (const gone of ['HRK', 'SLL', 'ZWL', 'CUC', 'LTL']) expect(currencyExponent(gone).known).toBe(false);
  });

  it('is exact beyond 2^53 (bigint) and refuses fractions', () => {
    expect(formatMoney(12345678901234567890n, 'EUR')).toBe('123456789012345678.90 EUR');
    expect(formatMoney(Number.MAX_SAFE_INTEGER, 'KWD')).toBe('9007199254740.991 KWD');
    expect(() => formatMoney(1.5, 'EUR')).toThrow(RangeError);
    expect(() => formatMoney(Number.NaN, 'EUR')).toThrow(RangeError);
    expect(() => formatMoney(Number.POSITIVE_INFINITY, 'EUR')).toThrow(RangeError);
  });

  it('covers the ISO 4217 table: known exponents, three-letter upper-case codes', () => {
    expect(Object.keys(CURRENCY_EXPONENTS).length).toBeGreaterThan(170);
    for (const [code, e] of Object.entries(CURRENCY_EXPONENTS)) {
      expect(code).toMatch(/^[A-Z]{3}$/);
      expect([0, 2, 3, 4]).toContain(e);
    }
    const byExp = (n: number) => Object.entries(CURRENCY_EXPONENTS).filter(([, e]) => e === n).map(([c]) => c).sort();
    expect(byExp(3)).toEqual(['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND']);
    expect(byExp(4)).toEqual(['CLF', 'UYW']);
    for (const c of ['JPY', 'KRW', 'VND', 'ISK', 'CLP', 'XOF', 'XAF', 'XPF', 'UGX']) expect(CURRENCY_EXPONENTS[c]).toBe(0);
    for (const c of ['EUR', 'USD', 'GBP', 'CHF', 'CNY', 'INR', 'BRL', 'XCG', 'ZWG', 'SLE', 'VED']) expect(CURRENCY_EXPONENTS[c]).toBe(2);
  });

  const codes = fc.constantFrom(...Object.keys(CURRENCY_EXPONENTS), 'ABC', 'QQQ');
  it('property: the text parses back to the same minor units (round trip), for every code', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), codes, (amount, code) => {
        const p = moneyParts(amount, code);
        const text = formatMoney(amount, code);
        expect(text.startsWith(`${p.major} ${code}`)).toBe(true);
        expect(text.endsWith(UNKNOWN_CURRENCY_NOTE)).toBe(!p.known);
        const [whole, frac = ''] = p.major.replace('-', '').split('.');
        expect(frac.length).toBe(p.exponent);
        expect(whole).toMatch(/^(0|[1-9]\d*)$/);
        const back = BigInt(`${whole}${frac}`) * (p.major.startsWith('-') ? -1n : 1n);
        expect(back).toBe(amount);
      }),
    );
  });

  it('property: number and bigint give the same text, and the order of amounts is kept', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), fc.maxSafeInteger(), codes, (a, b, code) => {
        expect(formatMoney(a, code)).toBe(formatMoney(BigInt(a), code));
        const major = (x: number) => Number(moneyParts(x, code).major);
        if (a < b) expect(major(a)).toBeLessThanOrEqual(major(b));
      }),
    );
  });
});
