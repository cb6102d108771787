// The changelog's value encoding: a format byte, then the body. Shape-agnostic (any plain data:
// objects, arrays, strings, numbers, booleans, null), so the rule engine's entity shapes can change
// without touching it; what the shapes mean is versioned by the changelog topic name, as before.
//
//   0x01 <MessagePack>   written since the binary changelog (maps with string keys; the writer
//                        below since issue 12's second pass, msgpackr before; read by msgpackr)
//   '{'  <JSON text>     written before it: read as JSON, so existing changelogs keep restoring
//
// MessagePack is a self-describing binary layout (https://github.com/msgpack/msgpack/blob/master/spec.md):
// every value carries its own keys, so a compacted changelog needs no schema registry round trip
// and no shared structure table. Integers stay exact up to 2^53 (event times in ms are float64 or
// uint); -0 becomes 0, as in JSON.
import { Unpackr } from 'msgpackr';

export const CHANGELOG_FORMAT_MSGPACK = 0x01;
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
    writeString(k);
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
  for (let size = SLAB_BYTES; ; size *= 2) {
    const start = pos;
    try {
      room(1);
      slab[pos++] = CHANGELOG_FORMAT_MSGPACK;
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

export function decodeChangelogValue(buf: Buffer): unknown {
  switch (buf[0]) {
    case CHANGELOG_FORMAT_MSGPACK:
      return unpackr.unpack(buf.subarray(1));
    case JSON_OBJECT:
      return JSON.parse(buf.toString('utf8')) as unknown;
    default:
      throw new UnknownChangelogFormatError(`changelog value of ${buf.length} bytes starts with format byte 0x${(buf[0] ?? 0).toString(16).padStart(2, '0')}, which this version does not know (written by a newer version?)`);
  }
}
