// Pure formatting (no DOM): money in major units by the currency's ISO 4217 exponent, durations,
// UTC times. Unit-tested in Node (console/test/format.test.ts).

/**
 * ISO 4217 minor-unit exponents that are not 2 (List One, "Minor unit" column). CLDR's digits
 * (what Intl would pick by itself) differ for some (e.g. IQD: ISO 3, CLDR 0), so the amount is
 * scaled by ISO's exponent, never by Intl's default.
 * @type {Readonly<Record<string, number>>}
 */
export const ISO4217_EXPONENTS = Object.freeze({
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
});

/** @param {string} currency */
export function minorExponent(currency) {
  return ISO4217_EXPONENTS[currency.toUpperCase()] ?? 2;
}

/**
 * An integer amount of minor units as an exact decimal string in major units ("-12.05"), without
 * going through a binary fraction.
 * @param {number} amountMinor
 * @param {number} exponent
 */
export function toMajorDecimal(amountMinor, exponent) {
  const negative = amountMinor < 0;
  const digits = String(Math.abs(Math.trunc(amountMinor))).padStart(exponent + 1, '0');
  const whole = exponent === 0 ? digits : digits.slice(0, -exponent);
  const frac = exponent === 0 ? '' : `.${digits.slice(-exponent)}`;
  return `${negative ? '-' : ''}${whole}${frac}`;
}

/**
 * "EUR 1,234.50" (the currency as its code: analysts compare amounts across currencies).
 * @param {number} amountMinor
 * @param {string} currency ISO 4217 code
 * @param {string | undefined} [locale]
 */
export function formatMoney(amountMinor, currency, locale) {
  const exponent = minorExponent(currency);
  const decimal = toMajorDecimal(amountMinor, exponent);
  try {
    const nf = new Intl.NumberFormat(locale, { style: 'currency', currency, currencyDisplay: 'code', minimumFractionDigits: exponent, maximumFractionDigits: exponent });
    // A decimal string is formatted exactly (Intl.NumberFormat v3); the cast is for lib typings.
    return nf.format(/** @type {number} */ (/** @type {unknown} */ (decimal))).replace(/\u00a0/g, ' ');
  } catch {
    // Not a currency code Intl knows: still the exact amount, with the code as given.
    return `${currency} ${decimal}`;
  }
}

/**
 * "850 ms", "42 s", "12 min 5 s", "3 h 20 min", "2 d 4 h".
 * @param {number | null | undefined} ms
 */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const sign = ms < 0 ? '−' : '';
  let v = Math.abs(ms);
  if (v < 1000) return `${sign}${Math.round(v)} ms`;
  v = Math.round(v / 1000);
  if (v < 60) return `${sign}${v} s`;
  const s = v % 60;
  const m = Math.floor(v / 60) % 60;
  const h = Math.floor(v / 3600) % 24;
  const d = Math.floor(v / 86400);
  if (d > 0) return `${sign}${d} d${h ? ` ${h} h` : ''}`;
  if (h > 0) return `${sign}${h} h${m ? ` ${m} min` : ''}`;
  return `${sign}${m} min${s ? ` ${s} s` : ''}`;
}

/**
 * Minutes between two epoch-ms times, one decimal ("2.5 min").
 * @param {number} a
 * @param {number} b
 */
export function minutesBetween(a, b) {
  return `${(Math.abs(b - a) / 60_000).toFixed(1)} min`;
}

/**
 * "2026-12-06 02:41:07 UTC". Every time in the console is UTC, as in the API and the contracts.
 * @param {number | null | undefined} ms
 */
export function formatTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/**
 * "12-06 02:41:07" for dense lists (the column header says UTC).
 * @param {number} ms
 */
export function formatShortTime(ms) {
  return new Date(ms).toISOString().slice(5, 19).replace('T', ' ');
}

/**
 * A detail value by its name's unit: *_ms as a duration, *_minor as money (when the currency is
 * known), ratios and counts as numbers.
 * @param {string} key
 * @param {number | null} value
 * @param {string | undefined} currency
 */
export function formatDetail(key, value, currency) {
  if (value === null) return '–';
  if (key.endsWith('_ms')) return formatDuration(value);
  if (key.endsWith('_minor') && currency) return formatMoney(value, currency);
  return String(value);
}
