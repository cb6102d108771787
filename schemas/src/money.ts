// Amounts as money: minor units -> major units with the currency's ISO 4217 exponent ("minor unit").
// Pure; used by the API's and the CLI's human output (and by rule summaries). `details` and the
// contracts keep the raw minor-unit integers: this is presentation only.

/**
 * ISO 4217 minor units of every current currency code (the ISO 4217 "List one", amendment of 2025:
 * includes XCG, ZWG, VED, SLE; withdrawn codes such as HRK, SLL, CUC, ZWL are gone; ANG is kept while
 * it is being replaced by XCG). Codes whose ISO minor unit is "N.A." (precious metals XAU/XAG/XPD/XPT,
 * SDR XDR, the bond-market units XBA-XBD, XSU, XUA, XTS, XXX) have no minor unit: 0 here, amounts are
 * whole units. Every code not listed here is exponent 2 and flagged unknown.
 */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = Object.freeze({
  // exponent 0
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  // no minor unit (ISO "N.A."): whole units
  XAG: 0, XAU: 0, XBA: 0, XBB: 0, XBC: 0, XBD: 0, XDR: 0, XPD: 0, XPT: 0, XSU: 0, XTS: 0, XUA: 0, XXX: 0,
  // exponent 3
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  // exponent 4
  CLF: 4, UYW: 4,
  // exponent 2
  AED: 2, AFN: 2, ALL: 2, AMD: 2, ANG: 2, AOA: 2, ARS: 2, AUD: 2, AWG: 2, AZN: 2, BAM: 2, BBD: 2, BDT: 2, BGN: 2, BMD: 2, BND: 2, BOB: 2, BOV: 2,
  BRL: 2, BSD: 2, BTN: 2, BWP: 2, BYN: 2, BZD: 2, CAD: 2, CDF: 2, CHE: 2, CHF: 2, CHW: 2, CNY: 2, COP: 2, COU: 2, CRC: 2, CUP: 2, CVE: 2,
  CZK: 2, DKK: 2, DOP: 2, DZD: 2, EGP: 2, ERN: 2, ETB: 2, EUR: 2, FJD: 2, FKP: 2, GBP: 2, GEL: 2, GHS: 2, GIP: 2, GMD: 2, GTQ: 2, GYD: 2,
  HKD: 2, HNL: 2, HTG: 2, HUF: 2, IDR: 2, ILS: 2, INR: 2, IRR: 2, JMD: 2, KES: 2, KGS: 2, KHR: 2, KPW: 2, KYD: 2, KZT: 2, LAK: 2, LBP: 2,
  LKR: 2, LRD: 2, LSL: 2, MAD: 2, MDL: 2, MGA: 2, MKD: 2, MMK: 2, MNT: 2, MOP: 2, MRU: 2, MUR: 2, MVR: 2, MWK: 2, MXN: 2, MXV: 2, MYR: 2,
  MZN: 2, NAD: 2, NGN: 2, NIO: 2, NOK: 2, NPR: 2, NZD: 2, PAB: 2, PEN: 2, PGK: 2, PHP: 2, PKR: 2, PLN: 2, QAR: 2, RON: 2, RSD: 2, RUB: 2,
  SAR: 2, SBD: 2, SCR: 2, SDG: 2, SEK: 2, SGD: 2, SHP: 2, SLE: 2, SOS: 2, SRD: 2, SSP: 2, STN: 2, SVC: 2, SYP: 2, SZL: 2, THB: 2, TJS: 2,
  TMT: 2, TOP: 2, TRY: 2, TTD: 2, TWD: 2, TZS: 2, UAH: 2, USD: 2, USN: 2, UYU: 2, UZS: 2, VED: 2, VES: 2, WST: 2, XCD: 2, XCG: 2, YER: 2,
  ZAR: 2, ZMW: 2, ZWG: 2,
});

/** Exponent assumed for a code outside the table. */
export const UNKNOWN_CURRENCY_EXPONENT = 2;

/** Suffix formatMoney appends when the code is not in the table, so a reader knows the decimals are a guess. */
export const UNKNOWN_CURRENCY_NOTE = '(unknown currency: 2 decimals assumed)';

export interface MoneyParts {
  /** Major units as a decimal string, e.g. "25.00", "-0.050", "1500". Exact (no float rounding). */
  major: string;
  /** Upper-cased code as shown. */
  currency: string;
  exponent: number;
  /** false: the code is not in CURRENCY_EXPONENTS; exponent is UNKNOWN_CURRENCY_EXPONENT. */
  known: boolean;
}

/** The ISO 4217 exponent of a code, and whether the code is known (unknown: 2). Case-insensitive. */
export function currencyExponent(currency: string): { exponent: number; known: boolean } {
  const e = CURRENCY_EXPONENTS[currency.toUpperCase()];
  return e === undefined ? { exponent: UNKNOWN_CURRENCY_EXPONENT, known: false } : { exponent: e, known: true };
}

/**
 * Minor units -> major units, exactly (bigint arithmetic, so amounts beyond 2^53 as bigint keep
 * every digit). Throws RangeError for a non-integer or non-finite number: amounts are integers of
 * minor units by contract, and a fraction here is a caller's bug, not something to round away.
 */
export function moneyParts(amountMinor: number | bigint, currency: string): MoneyParts {
  if (typeof amountMinor === 'number' && !Number.isInteger(amountMinor)) throw new RangeError(`amount in minor units must be an integer, got ${amountMinor}`);
  const { exponent, known } = currencyExponent(currency);
  const n = BigInt(amountMinor);
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString();
  let major: string;
  if (exponent === 0) major = digits;
  else {
    const padded = digits.padStart(exponent + 1, '0');
    major = `${padded.slice(0, -exponent)}.${padded.slice(-exponent)}`;
  }
  return { major: neg ? `-${major}` : major, currency: currency.toUpperCase(), exponent, known };
}

/**
 * "25.00 EUR", "1500 JPY", "1.250 KWD"; an unknown code gets 2 decimals and says so:
 * "25.00 ABC (unknown currency: 2 decimals assumed)".
 */
export function formatMoney(amountMinor: number | bigint, currency: string): string {
  const p = moneyParts(amountMinor, currency);
  return p.known ? `${p.major} ${p.currency}` : `${p.major} ${p.currency} ${UNKNOWN_CURRENCY_NOTE}`;
}
