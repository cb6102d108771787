// The changelog's value encoding: a format byte, then the body. Shape-agnostic (any plain data:
// objects, arrays, strings, numbers, booleans, null), so the rule engine's entity shapes can change
// without touching it; what the shapes mean is versioned by the changelog topic name, as before.
//
//   0x02 <MessagePack, keyed by a dictionary>   written since issue 12's third pass: the same
//                        MessagePack, except that a map key found in KEY_DICTIONARY_V1 below is
//                        written as its index (a positive fixint, one byte) instead of its name;
//                        any other key stays a string. Read by the decoder below.
//   0x01 <MessagePack>   written before (maps with string keys; read by msgpackr)
//   '{'  <JSON text>     written before that: read as JSON, so existing changelogs keep restoring
//
// Why the dictionary: every value carried its field names, about 140 of a sale value's 330 bytes
// (the engine writes about one value per event). The dictionary holds the engine's field names
// seen today; it is APPEND-ONLY (an index, once written to a changelog, means that name forever).
// It does not tie the codec to the engine's shapes: a name not in it is written as a string, so
// new or renamed fields cost bytes, never correctness.
//
// MessagePack is a self-describing binary layout (https://github.com/msgpack/msgpack/blob/master/spec.md):
// every value carries its own keys, so a compacted changelog needs no schema registry round trip
// and no shared structure table. Integers stay exact up to 2^53 (event times in ms are float64 or
// uint); -0 becomes 0, as in JSON.
import { Unpackr } from 'msgpackr';

export const CHANGELOG_FORMAT_MSGPACK = 0x01;
export const CHANGELOG_FORMAT_MSGPACK_DICT = 0x02;
/** The format byte this version writes. */
export const CHANGELOG_FORMAT = CHANGELOG_FORMAT_MSGPACK_DICT;

/**
 * Map keys written as their index under format 0x02. APPEND-ONLY: never reorder, remove or rename
 * an entry (changelogs written with it must keep restoring); new names go at the end, at most 128.
 */
export const KEY_DICTIONARY_V1: readonly string[] = Object.freeze([
  // The engine's entities as of issue 12's third pass (terminal, sale, their rule state), most frequent first.
  'alert_id', 'due', 'id', 'last_received', 'sales_seen', 'sample', 'lag_episode', 'max_seq', 'max_seq_event_id', 'max_seq_event_time',
  'gaps', 'beats', 'offline_watch', 'last_seen', 'last_txn_event_id', 'hb_event_time', 'hb_last_seq', 'hb_queue_depth', 'offline', 'synced_seq',
  'terminal_id', 'amount', 'card_token', 'txn_id', 'event_time', 'event_id', 'currency', 'seq', 'sale', 'seen',
  'voided', 'ref_expiry', 'refunded', 'refunds', 'dup', 'dup_expiry', 'sale_card_token', 'sale_event_id', 'missing', 'refund_velocity',
  'ets', 'ids', 'silent_until', 'count', 'by', 'detected_at', 'sync_failure', 'from', 'to', 'low_event_id',
  'low_event_time', 'high_event_id', 'high_event_time', 'fired_gaps', 'lag', 'started_at', 'first_event_time', 'last_late', 'late_count', 'max_lag',
  'dup_alerts', 'legs', 'resolved', 'shadow',
]);
const KEY_INDEX = new Map(KEY_DICTIONARY_V1.map((k, i) => [k, i]));
/** False only inside encodeChangelogValueV1 (benchmarks and tests of the previous format). */
let useDictionary = true;

const JSON_OBJECT = 0x7b; // '{'

// Decoding: msgpackr (maps as plain objects, no shared record structures).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export class UnknownChangelogFormatError extends Error {
  override name = 'UnknownChangelogFormatError';
}

// Encoding: a MessagePack writer for plain data, written here for the detector's hot path (about
// one changelog value per event). It writes the format byte and the body straight into a shared
// slab and returns a view of it: no intermediate buffer, no copy, one small object per value. The
// output is standard MessagePack as msgpackr writes it for these values (integers in 32 bits as
// the smallest int/uint, anything else as float64, so every number decodes as a number; strings
// as str, arrays, maps with string keys), and plain-data semantics are JSON's: an undefined
// property is left out, undefined in an array is nil, -0 is 0. Anything else (functions, symbols,
// bigints, class instances other than arrays) is refused.
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let pos = 0;
/** Thrown (and caught in encodeChangelogValue) when the slab has no room left for the value. */
const FULL = Symbol('slab full');

function room(n: number): void {
  if (pos + n > slab.length) throw FULL;
}

function writeString(s: string): void {
  const n = s.length;
  // ASCII (every identifier, currency and key the engine writes): one byte per char, written here.
  room(5 + n);
  const header = n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
  let p = pos + header;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    slab[p++] = c;
  }
  let bytes = n;
  if (i < n) {
    // Not ASCII: UTF-8 through Buffer, with the header for its byte length.
    bytes = Buffer.byteLength(s, 'utf8');
    room(5 + bytes);
    const h = bytes < 32 ? 1 : bytes < 256 ? 2 : bytes < 65536 ? 3 : 5;
    slab.write(s, pos + h, bytes, 'utf8');
    writeStrHeader(bytes, h);
    pos += h + bytes;
    return;
  }
  writeStrHeader(bytes, header);
  pos += header + bytes;
}

function writeStrHeader(bytes: number, header: number): void {
  if (header === 1) slab[pos] = 0xa0 | bytes;
  else if (header === 2) {
    slab[pos] = 0xd9;
    slab[pos + 1] = bytes;
  } else if (header === 3) {
    slab[pos] = 0xda;
    slab.writeUInt16BE(bytes, pos + 1);
  } else {
    slab[pos] = 0xdb;
    slab.writeUInt32BE(bytes, pos + 1);
  }
}

function writeNumber(v: number): void {
  room(9);
  if (v >>> 0 === v) {
    if (v < 0x80) slab[pos++] = v;
    else if (v < 0x100) {
      slab[pos++] = 0xcc;
      slab[pos++] = v;
    } else if (v < 0x10000) {
      slab[pos++] = 0xcd;
      slab[pos++] = v >>> 8;
      slab[pos++] = v & 0xff;
    } else {
      slab[pos++] = 0xce;
      slab.writeUInt32BE(v, pos);
      pos += 4;
    }
  } else if (v >> 0 === v) {
    if (v >= -32) slab[pos++] = v & 0xff;
    else if (v >= -128) {
      slab[pos++] = 0xd0;
      slab[pos++] = v & 0xff;
    } else if (v >= -32768) {
      slab[pos++] = 0xd1;
      slab.writeInt16BE(v, pos);
      pos += 2;
    } else {
      slab[pos++] = 0xd2;
      slab.writeInt32BE(v, pos);
      pos += 4;
    }
  } else {
    // -0 is 0 (as in JSON); every other number, integer or not, as float64.
    slab[pos++] = 0xcb;
    slab.writeDoubleBE(v === 0 ? 0 : v, pos);
    pos += 8;
  }
}

function writeValue(v: unknown): void {
  switch (typeof v) {
    case 'string':
      writeString(v);
      return;
    case 'number':
      writeNumber(v);
      return;
    case 'boolean':
      room(1);
      slab[pos++] = v ? 0xc3 : 0xc2;
      return;
    case 'undefined':
      room(1);
      slab[pos++] = 0xc0;
      return;
    case 'object':
      if (v === null) {
        room(1);
        slab[pos++] = 0xc0;
      } else if (Array.isArray(v)) writeArray(v);
      else {
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null) throw new TypeError(`changelog values are plain data; got an instance of ${(v as object).constructor?.name ?? 'an unknown class'}`);
        writeMap(v as Record<string, unknown>);
      }
      return;
    default:
      throw new TypeError(`changelog values are plain data; got a ${typeof v}`);
  }
}

function writeArray(a: unknown[]): void {
  const n = a.length;
  room(5);
  if (n < 16) slab[pos++] = 0x90 | n;
  else if (n < 65536) {
    slab[pos++] = 0xdc;
    slab.writeUInt16BE(n, pos);
    pos += 2;
  } else {
    slab[pos++] = 0xdd;
    slab.writeUInt32BE(n, pos);
    pos += 4;
  }
  for (let i = 0; i < n; i++) writeValue(a[i]);
}

function writeMap(o: Record<string, unknown>): void {
  // One byte reserved for a fixmap header; a map of 16 entries or more moves its entries up to
  // make room for map16/map32 (rare: the engine's entities have fewer fields).
  room(1);
  const at = pos++;
  let n = 0;
  for (const k in o) {
    if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
    const v = o[k];
    if (v === undefined) continue;
    const index = useDictionary ? KEY_INDEX.get(k) : undefined;
    if (index === undefined) writeString(k);
    else {
      room(1);
      slab[pos++] = index; // < 128: a positive fixint
    }
    writeValue(v);
    n++;
  }
  if (n < 16) {
    slab[at] = 0x80 | n;
    return;
  }
  const extra = n < 65536 ? 2 : 4;
  room(extra);
  slab.copyWithin(at + 1 + extra, at + 1, pos);
  pos += extra;
  if (extra === 2) {
    slab[at] = 0xde;
    slab.writeUInt16BE(n, at + 1);
  } else {
    slab[at] = 0xdf;
    slab.writeUInt32BE(n, at + 1);
  }
}

export function encodeChangelogValue(value: unknown): Buffer {
  return encode(value, CHANGELOG_FORMAT);
}

/** The previous format (0x01: every key a string, the bytes msgpackr writes), for benchmarks and tests; this version never writes it. */
export function encodeChangelogValueV1(value: unknown): Buffer {
  useDictionary = false;
  try {
    return encode(value, CHANGELOG_FORMAT_MSGPACK);
  } finally {
    useDictionary = true;
  }
}

function encode(value: unknown, format: number): Buffer {
  for (let size = SLAB_BYTES; ; size *= 2) {
    const start = pos;
    try {
      room(1);
      slab[pos++] = format;
      writeValue(value);
      return slab.subarray(start, pos);
    } catch (e) {
      if (e !== FULL) {
        pos = start;
        throw e;
      }
      // A fresh slab (the values already handed out keep the old one alive as long as they live).
      slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
      pos = 0;
    }
  }
}

// Decoding format 0x02: a reader for exactly what the writer above produces (nil, booleans, the
// int/uint/float64 families, str, array and map families); a map key is a string or a dictionary
// index. Anything else is refused, as is an index the dictionary does not have (a newer writer).
const EMPTY = Buffer.alloc(0);
let rbuf: Buffer = EMPTY;
let rpos = 0;

function readLength(bytes: 1 | 2 | 4): number {
  const at = rpos;
  rpos += bytes;
  if (rpos > rbuf.length) throw new RangeError('truncated changelog value');
  return bytes === 1 ? rbuf[at]! : bytes === 2 ? rbuf.readUInt16BE(at) : rbuf.readUInt32BE(at);
}

function readStr(n: number): string {
  const at = rpos;
  rpos += n;
  if (rpos > rbuf.length) throw new RangeError('truncated changelog value');
  return rbuf.toString('utf8', at, rpos);
}

function readArray(n: number): unknown[] {
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) a[i] = readAny();
  return a;
}

function readKey(): string {
  const b = rbuf[rpos];
  if (b !== undefined && b < 0x80) {
    rpos++;
    const k = KEY_DICTIONARY_V1[b];
    if (k === undefined) throw new UnknownChangelogFormatError(`changelog value uses key index ${b}, which this version's dictionary does not have (written by a newer version?)`);
    return k;
  }
  const k = readAny();
  if (typeof k !== 'string') throw new TypeError('changelog value has a map key that is neither a string nor a dictionary index');
  return k;
}

function readMap(n: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = readKey();
    // As msgpackr reads format 0x01 (its guard against prototype pollution).
    o[k === '__proto__' ? '__proto_' : k] = readAny();
  }
  return o;
}

function readAny(): unknown {
  if (rpos >= rbuf.length) throw new RangeError('truncated changelog value');
  const b = rbuf[rpos++]!;
  if (b < 0x80) return b;
  if (b < 0x90) return readMap(b & 0x0f);
  if (b < 0xa0) return readArray(b & 0x0f);
  if (b < 0xc0) return readStr(b & 0x1f);
  if (b >= 0xe0) return b - 0x100;
  const at = rpos;
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xcb:
      rpos += 8;
      if (rpos > rbuf.length) throw new RangeError('truncated changelog value');
      return rbuf.readDoubleBE(at);
    case 0xcc:
      return readLength(1);
    case 0xcd:
      return readLength(2);
    case 0xce:
      return readLength(4);
    case 0xd0:
      rpos += 1;
      return rbuf.readInt8(at);
    case 0xd1:
      rpos += 2;
      return rbuf.readInt16BE(at);
    case 0xd2:
      rpos += 4;
      return rbuf.readInt32BE(at);
    case 0xd9:
      return readStr(readLength(1));
    case 0xda:
      return readStr(readLength(2));
    case 0xdb:
      return readStr(readLength(4));
    case 0xdc:
      return readArray(readLength(2));
    case 0xdd:
      return readArray(readLength(4));
    case 0xde:
      return readMap(readLength(2));
    case 0xdf:
      return readMap(readLength(4));
    default:
      throw new UnknownChangelogFormatError(`changelog value holds MessagePack type 0x${b.toString(16)}, which format 0x02 never writes`);
  }
}

function decodeDictFormat(buf: Buffer): unknown {
  rbuf = buf;
  rpos = 1;
  try {
    const v = readAny();
    if (rpos !== buf.length) throw new RangeError(`changelog value has ${buf.length - rpos} bytes after its end`);
    return v;
  } finally {
    rbuf = EMPTY; // the value's bytes are not kept alive by the reader
  }
}

export function decodeChangelogValue(buf: Buffer): unknown {
  switch (buf[0]) {
    case CHANGELOG_FORMAT_MSGPACK_DICT:
      return decodeDictFormat(buf);
    case CHANGELOG_FORMAT_MSGPACK:
      return unpackr.unpack(buf.subarray(1));
    case JSON_OBJECT:
      return JSON.parse(buf.toString('utf8')) as unknown;
    default:
      throw new UnknownChangelogFormatError(`changelog value of ${buf.length} bytes starts with format byte 0x${(buf[0] ?? 0).toString(16).padStart(2, '0')}, which this version does not know (written by a newer version?)`);
  }
}
