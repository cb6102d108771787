// PAN masking: the platform stores card TOKENS only, but a raw card number must never leave the API
// even if one was stored by mistake (a gateway putting a PAN into card_token or a summary). Every
// JSON response, every SSE event and every log line goes through here.
//
// What counts as a PAN: 13-19 digits, optionally grouped by single spaces or dashes, that pass the
// Luhn check (ISO/IEC 7812). Luhn keeps false positives down and leaves format-preserving tokens
// alone (tokenisation schemes deliberately emit Luhn-invalid numbers so they cannot be mistaken
// for PANs). Only STRING values are scanned: epoch-ms numbers have 13 digits too.

// A digit run not glued to other digits (or to a digit group continuing it).
const CANDIDATE = /(?<!\d)(?<!\d[ -])\d(?:[ -]?\d){12,18}(?!\d)(?![ -]\d)/g;

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

/** Replace every PAN-like number in `text` with `[PAN ****1234]` (last four kept for support calls). */
export function maskPan(text: string): string {
  // Fast path: most strings have no run of 13 digits at all.
  if (!/\d{4}/.test(text)) return text;
  return text.replace(CANDIDATE, (match) => {
    const digits = match.replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return match;
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
