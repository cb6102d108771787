// PAN masking: the platform stores card TOKENS only, but a raw card number must never leave the API
// even if one was stored by mistake (a gateway putting a PAN into card_token or a summary). Every
// JSON response, every SSE event and every log line goes through here.
//
// What counts as a PAN: 13-19 digits that pass the Luhn check (ISO/IEC 7812), written either as one
// run of digits (found anywhere, even glued to letters: `tok_4111111111111111`) or in the groupings
// cards are printed with, separated by single spaces or dashes (4-4-4-4, 4-4-4-n and 4-4-4-4-n up
// to 19 digits, 4-6-5 and 4-6-4), standing on their own. Grouped digits inside a longer token are not a PAN: a
// UUID such as `b6ddba8d-a341-4808-8973-281f4352d513` holds `341-4808-8973-281`, 14 digits that can
// pass Luhn, and masking it would corrupt an event id. Luhn keeps false positives down and leaves
// format-preserving tokens alone (tokenisation schemes deliberately emit Luhn-invalid numbers so
// they cannot be mistaken for PANs). Only STRING values are scanned: epoch-ms numbers have 13
// digits too.

const CONTIGUOUS = String.raw`(?<!\d)\d{13,19}(?!\d)`;
const GROUPED = String.raw`(?<![0-9A-Za-z_-])(?:\d{4}([ -])\d{4}\1\d{4}\1(?:\d{4}\1\d{1,3}|\d{1,7})|\d{4}([ -])\d{6}\2\d{4,5})(?![0-9A-Za-z_-])`;
const CANDIDATE = new RegExp(`${CONTIGUOUS}|${GROUPED}`, 'g');

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const ALNUM = /[0-9A-Za-z]/;
const HEX_DIGEST = /^[0-9a-f]{32,}$/;

/**
 * True when the digit run at [start, end) lies inside a lowercase hex digest of 32+ characters
 * (the platform's own ids: alert_id, update_id, action_id are 128-bit hex). A sha256 prefix holds a
 * run of 13+ decimal digits that passes Luhn in about 1 of 250 ids; masking it would corrupt the id.
 * A PAN glued to other letters (`tok_4111...`, `card4111...`) is still masked: those tokens are not
 * pure hex.
 */
function insideHexDigest(text: string, start: number, end: number): boolean {
  let a = start;
  let b = end;
  while (a > 0 && ALNUM.test(text[a - 1]!)) a--;
  while (b < text.length && ALNUM.test(text[b]!)) b++;
  return HEX_DIGEST.test(text.slice(a, b));
}

/** Replace every PAN-like number in `text` with `[PAN ****1234]` (last four kept for support calls). */
export function maskPan(text: string): string {
  // Fast path: most strings have no run of 13 digits at all.
  if (!/\d{4}/.test(text)) return text;
  return text.replace(CANDIDATE, (match: string, _g1: unknown, _g2: unknown, offset: number) => {
    const digits = match.replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return match;
    if (insideHexDigest(text, offset, offset + match.length)) return match;
    return `[PAN ****${digits.slice(-4)}]`;
  });
}

/** Deep copy of a JSON-like value with every string passed through maskPan (numbers untouched). */
export function maskDeep<T>(value: T): T {
  return walk(value) as T;
}

function walk(value: unknown): unknown {
  if (typeof value === 'string') return maskPan(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i] as unknown;
      const m = walk(v);
      if (m !== v) {
        copy ??= value.slice();
        copy[i] = m;
      }
    }
    return copy ?? value;
  }
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const m = walk(v);
    if (m !== v) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[k] = m;
    }
  }
  return copy ?? value;
}
