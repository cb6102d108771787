// The part of an alert the index does not already hold as columns, as compact bytes for the row
// arena: rule_version, card_token, event_ids, window_start/end, summary, details, rules_version,
// currency, amount_minor. (alert_id, rule, severity, terminal, merchant and detected_at live in the
// index's columns.) About 200 bytes for a typical alert against ~450 as JSON text.
//
// Layout (little endian): u16 rule_version | str? card_token | u16 n, n x str event_ids |
// f64 window_start | f64 window_end | str summary | u16 n, n x (str key, f64 value) details |
// u32 rules_version | str? currency | u8 0 (no amount) or u8 1 + f64 amount_minor.
// str = u16 byte length + UTF-8 bytes; str? = u8 0 (null) | u8 1 + str. A string over 65,535
// bytes (or more than 65,535 list items) is not encodable: that row stays in ClickHouse only.
// amount_minor is an integer below 2^53 (a JSON number): f64 holds it exactly.
import type { Alert } from '@tillwatch/schemas';

export type AlertTail = Pick<Alert, 'rule_version' | 'card_token' | 'event_ids' | 'window_start' | 'window_end' | 'summary' | 'details' | 'rules_version' | 'currency' | 'amount_minor'>;

const MAX16 = 0xffff;

export interface AlertCodec {
  /** Bytes of the tail in a scratch buffer (valid until the next call), or undefined if not encodable. */
  encode(a: AlertTail): Uint8Array | undefined;
  decode(bytes: Buffer): AlertTail;
}

export function createAlertCodec(): AlertCodec {
  let scratch = Buffer.allocUnsafe(4096);
  let at = 0;
  const ensure = (n: number) => {
    if (at + n <= scratch.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, at + n));
    scratch.copy(bigger, 0, 0, at);
    scratch = bigger;
  };
  const u16 = (v: number): boolean => {
    if (!Number.isInteger(v) || v < 0 || v > MAX16) return false;
    ensure(2);
    scratch.writeUInt16LE(v, at);
    at += 2;
    return true;
  };
  const f64 = (v: number) => {
    ensure(8);
    scratch.writeDoubleLE(v, at);
    at += 8;
  };
  const u32 = (v: number): boolean => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) return false;
    ensure(4);
    scratch.writeUInt32LE(v, at);
    at += 4;
    return true;
  };
  const optStr = (s: string | null | undefined): boolean => {
    ensure(1);
    if (s == null) {
      scratch[at++] = 0;
      return true;
    }
    scratch[at++] = 1;
    return str(s);
  };
  const str = (s: string): boolean => {
    const len = Buffer.byteLength(s, 'utf8');
    if (len > MAX16) return false;
    ensure(2 + len);
    scratch.writeUInt16LE(len, at);
    scratch.write(s, at + 2, len, 'utf8');
    at += 2 + len;
    return true;
  };
  return {
    encode(a) {
      at = 0;
      if (!u16(a.rule_version)) return undefined;
      if (!optStr(a.card_token)) return undefined;
      if (!u16(a.event_ids.length)) return undefined;
      for (const e of a.event_ids) if (!str(e)) return undefined;
      f64(a.window_start);
      f64(a.window_end);
      if (!str(a.summary)) return undefined;
      const entries = Object.entries(a.details);
      if (!u16(entries.length)) return undefined;
      for (const [k, v] of entries) {
        if (!str(k)) return undefined;
        f64(v);
      }
      if (!u32(a.rules_version) || !optStr(a.currency)) return undefined;
      ensure(1);
      if (a.amount_minor == null) scratch[at++] = 0;
      else {
        if (!Number.isSafeInteger(a.amount_minor)) return undefined;
        scratch[at++] = 1;
        f64(a.amount_minor);
      }
      return scratch.subarray(0, at);
    },
    decode(b) {
      let p = 0;
      const rd16 = () => {
        const v = b.readUInt16LE(p);
        p += 2;
        return v;
      };
      const rdStr = () => {
        const len = rd16();
        const s = b.toString('utf8', p, p + len);
        p += len;
        return s;
      };
      const rdF64 = () => {
        const v = b.readDoubleLE(p);
        p += 8;
        return v;
      };
      const rule_version = rd16();
      const card_token = b[p++] === 0 ? null : rdStr();
      const n = rd16();
      const event_ids: string[] = new Array<string>(n);
      for (let i = 0; i < n; i++) event_ids[i] = rdStr();
      const window_start = rdF64();
      const window_end = rdF64();
      const summary = rdStr();
      const m = rd16();
      const details: Record<string, number> = {};
      for (let i = 0; i < m; i++) {
        const k = rdStr();
        details[k] = rdF64();
      }
      const rules_version = b.readUInt32LE(p);
      p += 4;
      const currency = b[p++] === 0 ? null : rdStr();
      const amount_minor = b[p++] === 0 ? null : rdF64();
      return { rule_version, card_token, event_ids, window_start, window_end, summary, details, rules_version, ...(currency !== null ? { currency } : {}), ...(amount_minor !== null ? { amount_minor } : {}) };
    },
  };
}
