// Card numbers (PANs) never leave a process in text we write: rejected lines, validation reasons,
// dead letters, logs. A PAN-like value is masked wherever such text is built.

// Quoted 13-19 digit strings (optionally grouped by spaces or dashes), and bare numbers of 14-19
// digits: epoch-ms timestamps are 13 digits and unquoted, so they survive.
const QUOTED_PAN = /"(\d[\d -]{11,22}\d)"/g;
const BARE_PAN = /(?<![\d.])\d{14,19}(?![\d.])/g;

/** Masks card-number-like values in a raw line or message before it is written anywhere (a PAN is never stored). */
export function redactPans(raw: string): string {
  return raw
    .replace(QUOTED_PAN, (all, digits: string) => {
      const n = digits.replace(/[ -]/g, '').length;
      return n >= 13 && n <= 19 && /^[\d -]+$/.test(digits) ? '"[PAN REDACTED]"' : all;
    })
    .replace(BARE_PAN, '[PAN REDACTED]');
}
