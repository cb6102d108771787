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
let slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
/** The slab as a plain Uint8Array (the same memory): its element stores are cheaper than a Buffer's. */
let u8: Uint8Array = new Uint8Array(slab.buffer, slab.byteOffset, slab.length);
/** The slab as a DataView: big-endian numbers written without Buffer's checks. */
let dv = new DataView(slab.buffer, slab.byteOffset, slab.length);

function setSlab(b: Buffer): void {
  slab = b;
  u8 = new Uint8Array(b.buffer, b.byteOffset, b.length);
  dv = new DataView(b.buffer, b.byteOffset, b.length);
}
let pos = 0;
/** Thrown (and caught in encodeChangelogValue) when the slab has no room left for the value. */
const FULL = Symbol('slab full');

function room(n: number): void {
  if (pos + n > u8.length) throw FULL;
}

function writeString(s: string): void {
  const n = s.length;
  // ASCII (every identifier, currency and key the engine writes): one byte per char, written here.
  room(5 + n);
  const header = n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
  if (n >= 24 && pos + header + 3 * n <= u8.length) {
    // Longer strings (event ids): through Buffer's UTF-8 writer, cheaper than the loop below from
    // about this length; its byte count is the string's length only when every char is ASCII.
    const w = slab.write(s, pos + header, 3 * n, 'utf8');
    if (w === n) {
      writeStrHeader(n, header);
      pos += header + n;
      return;
    }
  }
  let p = pos + header;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    u8[p++] = c;
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
  if (header === 1) u8[pos] = 0xa0 | bytes;
  else if (header === 2) {
    u8[pos] = 0xd9;
    u8[pos + 1] = bytes;
  } else if (header === 3) {
    u8[pos] = 0xda;
    dv.setUint16(pos + 1, bytes);
  } else {
    u8[pos] = 0xdb;
    dv.setUint32(pos + 1, bytes);
  }
}

function writeNumber(v: number): void {
  room(9);
  if (v >>> 0 === v) {
    if (v < 0x80) u8[pos++] = v;
    else if (v < 0x100) {
      u8[pos++] = 0xcc;
      u8[pos++] = v;
    } else if (v < 0x10000) {
      u8[pos++] = 0xcd;
      u8[pos++] = v >>> 8;
      u8[pos++] = v & 0xff;
    } else {
      u8[pos++] = 0xce;
      dv.setUint32(pos, v);
      pos += 4;
    }
  } else if (v >> 0 === v) {
    if (v >= -32) u8[pos++] = v & 0xff;
    else if (v >= -128) {
      u8[pos++] = 0xd0;
      u8[pos++] = v & 0xff;
    } else if (v >= -32768) {
      u8[pos++] = 0xd1;
      dv.setInt16(pos, v);
      pos += 2;
    } else {
      u8[pos++] = 0xd2;
      dv.setInt32(pos, v);
      pos += 4;
    }
  } else {
    // -0 is 0 (as in JSON); every other number, integer or not, as float64.
    u8[pos++] = 0xcb;
    dv.setFloat64(pos, v === 0 ? 0 : v);
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
      u8[pos++] = v ? 0xc3 : 0xc2;
      return;
    case 'undefined':
      room(1);
      u8[pos++] = 0xc0;
      return;
    case 'object':
      if (v === null) {
        room(1);
        u8[pos++] = 0xc0;
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
  writeArrayHeader(n);
  for (let i = 0; i < n; i++) writeValue(a[i]);
}

/** fixarray / array16 / array32 for n items (the caller made room for 5 bytes). */
function writeArrayHeader(n: number): void {
  if (n < 16) u8[pos++] = 0x90 | n;
  else if (n < 65536) {
    u8[pos++] = 0xdc;
    dv.setUint16(pos, n);
    pos += 2;
  } else {
    u8[pos++] = 0xdd;
    dv.setUint32(pos, n);
    pos += 4;
  }
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
      u8[pos++] = index; // < 128: a positive fixint
    }
    writeValue(v);
    n++;
  }
  if (n >= 16) room(mapHeaderExtra(n));
  writeMapHeader(at, n);
}

/** Bytes a map of n entries needs beyond the one reserved for its header (0 for a fixmap). */
function mapHeaderExtra(n: number): number {
  return n < 16 ? 0 : n < 65536 ? 2 : 4;
}

/**
 * The header of the map whose entries run from at + 1 to pos, in the byte reserved at `at`: a fixmap,
 * or map16/map32 with the entries moved up (the caller made room for mapHeaderExtra(n) more bytes).
 */
function writeMapHeader(at: number, n: number): void {
  const extra = mapHeaderExtra(n);
  if (extra === 0) {
    u8[at] = 0x80 | n;
    return;
  }
  u8.copyWithin(at + 1 + extra, at + 1, pos);
  pos += extra;
  if (extra === 2) {
    u8[at] = 0xde;
    dv.setUint16(at + 1, n);
  } else {
    u8[at] = 0xdf;
    dv.setUint32(at + 1, n);
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
      u8[pos++] = format;
      writeValue(value);
      return slab.subarray(start, pos);
    } catch (e) {
      if (e !== FULL) {
        pos = start;
        throw e;
      }
      // A fresh slab (the values already handed out keep the old one alive as long as they live).
      setSlab(Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size)));
      pos = 0;
    }
  }
}

// Writing a value field by field (ChangelogValueWriter): what the rule engine's entities are written
// with in the detector (@tillwatch/rules' StateWriter, ChangelogValueSink<Buffer>), without the plain
// object the generic writer above walks. Its bytes are the generic writer's for that object, byte for
// byte: the same MessagePack per value, fields in the order written, a key in the dictionary as its
// index. Keys come as numbers into a table of names (the rules' FIELD_NAMES, append-only), each
// resolved to its dictionary index once. A field written again in the same map keeps its first
// position and takes the last value (undefined: the field goes), as a plain object would.
/** A field set to undefined holds its place with this byte (never valid MessagePack) until its map ends. */
const HOLE = 0xc1;
const NO_CODE = -1;
const UNRESOLVED = -2;
const IS_MAP = -1;

/** End of the MessagePack value at p (one the writers above wrote). */
function skipValue(p: number): number {
  const b = u8[p]!;
  if (b < 0x80 || b >= 0xe0 || b === 0xc0 || b === HOLE || b === 0xc2 || b === 0xc3) return p + 1;
  if (b < 0x90) return skipEntries(p + 1, b & 0x0f);
  if (b < 0xa0) return skipItems(p + 1, b & 0x0f);
  if (b < 0xc0) return p + 1 + (b & 0x1f);
  switch (b) {
    case 0xcb:
      return p + 9;
    case 0xcc:
    case 0xd0:
      return p + 2;
    case 0xcd:
    case 0xd1:
      return p + 3;
    case 0xce:
    case 0xd2:
      return p + 5;
    case 0xd9:
      return p + 2 + u8[p + 1]!;
    case 0xda:
      return p + 3 + slab.readUInt16BE(p + 1);
    case 0xdb:
      return p + 5 + slab.readUInt32BE(p + 1);
    case 0xdc:
      return skipItems(p + 3, slab.readUInt16BE(p + 1));
    case 0xdd:
      return skipItems(p + 5, slab.readUInt32BE(p + 1));
    case 0xde:
      return skipEntries(p + 3, slab.readUInt16BE(p + 1));
    case 0xdf:
      return skipEntries(p + 5, slab.readUInt32BE(p + 1));
    default:
      throw new Error(`changelog value writer: unexpected MessagePack type 0x${b.toString(16)}`);
  }
}

function skipItems(p: number, n: number): number {
  for (let i = 0; i < n; i++) p = skipValue(p);
  return p;
}

function skipEntries(p: number, n: number): number {
  for (let i = 0; i < n; i++) p = skipValue(skipValue(p));
  return p;
}

export class ChangelogValueWriter {
  private readonly names: readonly string[];
  private readonly dictionary: boolean;
  private readonly format: number;
  /** Per key: its dictionary index, NO_CODE (written as its name) or UNRESOLVED. */
  private codes = new Int16Array(0);
  /** Start of the value being written (its format byte) in the slab. */
  private start = 0;
  /** Open containers: depth -1 = none (between values). */
  private depth = -1;
  /** Per depth: header position (maps: the byte reserved for it), fields or items written, items announced (lists; IS_MAP for a map). */
  private hdr = new Int32Array(16);
  private cnt = new Int32Array(16);
  /** Per depth: fields of the open map set to undefined (left out when it ends, their places kept until then). */
  private holes = new Int32Array(16);
  private want = new Int32Array(16);
  /** Per depth: the open map's serial; stamp[depth * keyCap + key] === it: the map has that field. */
  private serial = new Int32Array(16);
  /** Per depth: the last field written in the open map (key, value position), so a field written again right after is replaced without reading the map. */
  private lastKey = new Int32Array(16);
  private lastVal = new Int32Array(16);
  private nextSerial = 0;
  private keyCap = 0;
  private stamp = new Int32Array(0);

  /** names: the field names by key (read live: names appended later are resolved when met). format: 2 (default) or 1 (no dictionary). */
  constructor(names: readonly string[], format: 1 | 2 = 2) {
    this.names = names;
    this.dictionary = format === 2;
    this.format = format === 2 ? CHANGELOG_FORMAT_MSGPACK_DICT : CHANGELOG_FORMAT_MSGPACK;
    this.resolve();
  }

  /** Resolves every name known now; the key stamps are laid out again for the new key count and depth count. */
  private resolve(): void {
    const cap = Math.max(64, this.names.length + 32, this.keyCap);
    const codes = new Int16Array(cap).fill(UNRESOLVED);
    for (let k = 0; k < this.names.length; k++) {
      const i = this.dictionary ? KEY_INDEX.get(this.names[k]!) : undefined;
      codes[k] = i === undefined ? NO_CODE : i;
    }
    this.codes = codes;
    const depths = this.hdr.length;
    const stamp = new Int32Array(depths * cap);
    for (let d = 0; d * this.keyCap < this.stamp.length; d++) stamp.set(this.stamp.subarray(d * this.keyCap, (d + 1) * this.keyCap), d * cap);
    this.stamp = stamp;
    this.keyCap = cap;
  }

  /** Room for n more bytes: a bigger slab when needed, the value so far moved to its start. */
  private ensure(n: number): void {
    if (pos + n <= u8.length) return;
    const used = pos - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, 2 * (used + n)));
    slab.copy(next, 0, this.start, pos);
    const shift = this.start;
    for (let d = 0; d <= this.depth; d++) {
      this.hdr[d] = this.hdr[d]! - shift;
      this.lastVal[d] = this.lastVal[d]! - shift;
    }
    // The values already handed out keep the old slab alive as long as they live.
    setSlab(next);
    pos = used;
    this.start = 0;
  }

  /** Any plain data through the generic writer (its slab-full signal answered with a bigger slab), nested map keys as this writer's format writes keys. */
  private generic(v: unknown): void {
    const before = useDictionary;
    useDictionary = this.dictionary;
    try {
      for (;;) {
        const rel = pos - this.start;
        try {
          writeValue(v);
          return;
        } catch (e) {
          pos = this.start + rel;
          if (e !== FULL) throw e;
          this.ensure(slab.length);
        }
      }
    } finally {
      useDictionary = before;
    }
  }

  private push(): number {
    const d = ++this.depth;
    if (d === this.hdr.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.hdr = grow(this.hdr);
      this.cnt = grow(this.cnt);
      this.want = grow(this.want);
      this.serial = grow(this.serial);
      this.holes = grow(this.holes);
      this.lastKey = grow(this.lastKey);
      this.lastVal = grow(this.lastVal);
      this.resolve();
    }
    this.cnt[d] = 0;
    return d;
  }

  private openMap(): void {
    const d = this.push();
    this.ensure(1);
    this.hdr[d] = pos++;
    this.want[d] = IS_MAP;
    let s = ++this.nextSerial;
    if (s === 0x7fffffff) {
      this.stamp.fill(0);
      s = this.nextSerial = 1;
    }
    this.serial[d] = s;
    this.holes[d] = 0;
    this.lastKey[d] = -1;
  }

  private openList(n: number): void {
    const d = this.push();
    this.want[d] = n;
    this.ensure(5);
    this.hdr[d] = pos;
    writeArrayHeader(n);
  }

  /**
   * Writes the key of a new field of the open map (the caller ensured room for a dictionary index and
   * its value); false when the map has the field already (the caller replaces its value).
   */
  private field(k: number): boolean {
    const d = this.depth;
    if (d < 0 || this.want[d] !== IS_MAP) throw new Error(d < 0 ? 'changelog value writer: a field outside a value' : 'changelog value writer: a field inside a list (items are added with add*)');
    if (k >= this.keyCap) this.resolve();
    const si = d * this.keyCap + k;
    const serial = this.serial[d]!;
    if (this.stamp[si] === serial) return false;
    this.stamp[si] = serial;
    let code = this.codes[k]!;
    if (code === UNRESOLVED) {
      this.resolve();
      code = this.codes[k]!;
    }
    if (code >= 0) u8[pos++] = code; // < 128: a positive fixint
    else {
      const name = this.names[k]!;
      this.ensure(5 + 3 * name.length + 9);
      writeString(name);
    }
    this.lastKey[d] = k;
    this.lastVal[d] = pos;
    this.cnt[d] = this.cnt[d]! + 1;
    return true;
  }

  private item(): void {
    const d = this.depth;
    if (d < 0 || this.want[d] === IS_MAP) throw new Error('changelog value writer: a list item outside a list');
    this.cnt[d] = this.cnt[d]! + 1;
  }

  /** find()'s answer: the field's key position, value position and value end. */
  private fKey = 0;
  private fVal = 0;
  private fEnd = 0;

  /** Finds the open map's field k (reading the map written so far): sets fKey, fVal, fEnd. */
  private find(k: number): void {
    const d = this.depth;
    if (this.lastKey[d] === k) {
      // The last field (its value ends where the map does now).
      const v = this.lastVal[d]!;
      const c = this.codes[k]!;
      this.fKey = c >= 0 ? v - 1 : -1;
      this.fVal = v;
      this.fEnd = pos;
      if (c >= 0) return;
    }
    const code = this.codes[k]!;
    const name = this.names[k]!;
    let p = this.hdr[d]! + 1;
    for (let i = 0; i < this.cnt[d]!; i++) {
      const keyAt = p;
      const b = u8[p]!;
      let hit: boolean;
      if (b < 0x80) {
        hit = b === code;
        p++;
      } else {
        p = skipValue(p);
        hit = code < 0 && slab.toString('utf8', b < 0xc0 ? keyAt + 1 : keyAt + (b === 0xd9 ? 2 : b === 0xda ? 3 : 5), p) === name;
      }
      const end = skipValue(p);
      if (hit) {
        this.lastKey[d] = -1; // (positions after it may move)
        this.fKey = keyAt;
        this.fVal = p;
        this.fEnd = end;
        return;
      }
      p = end;
    }
    throw new Error(`changelog value writer: field ${name} not found`);
  }

  /** The open map has field k already: its value becomes v, in place (as assigning a property again does). */
  private replace(k: number, v: unknown): void {
    this.find(k);
    const wasHole = u8[this.fVal] === HOLE;
    if (v === undefined) {
      // A plain object keeps the property's place: a hole until the map ends, or another value.
      if (wasHole) return;
      u8[this.fVal] = HOLE;
      u8.copyWithin(this.fVal + 1, this.fEnd, pos);
      pos -= this.fEnd - this.fVal - 1;
      this.holes[this.depth] = this.holes[this.depth]! + 1;
      if (this.lastKey[this.depth] !== k) this.lastKey[this.depth] = -1;
      return;
    }
    if (wasHole) this.holes[this.depth] = this.holes[this.depth]! - 1;
    const n = typeof v === 'string' ? v.length : -1;
    const h = n < 0 ? 0 : n < 32 ? 1 : n < 256 ? 2 : 0;
    if (h > 0 && this.fEnd - this.fVal === n + h && (h === 1 ? u8[this.fVal] === (0xa0 | n) : u8[this.fVal] === 0xd9 && u8[this.fVal + 1] === n)) {
      // The same string again (refund_card_mismatch and refund_after_deadline both write a sale's
      // sale_event_id): compared in place (an ASCII string's bytes are its char codes).
      const str = v as string;
      let same = true;
      for (let i = 0, p = this.fVal + h; i < n; i++, p++) {
        const c = str.charCodeAt(i);
        if (c >= 0x80 || u8[p] !== c) {
          same = false;
          break;
        }
      }
      if (same) return;
    }
    const relVal = this.fVal - this.start;
    const relEnd = this.fEnd - this.start;
    const relAt = pos - this.start;
    this.generic(v);
    const at = this.start + relAt;
    const vAt = this.start + relVal;
    const vEnd = this.start + relEnd;
    const len = pos - at;
    if (len === vEnd - vAt && slab.compare(slab, at, pos, vAt, vEnd) === 0) {
      pos = at; // the same value again
      return;
    }
    const copy = Buffer.from(slab.subarray(at, pos));
    pos = at;
    u8.copyWithin(vAt + len, vEnd, pos);
    copy.copy(slab, vAt);
    pos += len - (vEnd - vAt);
  }

  /** Removes the fields of the map at depth d left undefined; returns how many fields it keeps. */
  private dropHoles(d: number): number {
    let p = this.hdr[d]! + 1;
    let out = p;
    let kept = 0;
    for (let i = 0; i < this.cnt[d]!; i++) {
      const keyAt = p;
      const valAt = skipValue(p);
      p = skipValue(valAt);
      if (u8[valAt] === HOLE) continue;
      if (out !== keyAt) u8.copyWithin(out, keyAt, p);
      out += p - keyAt;
      kept++;
    }
    pos = out;
    this.holes[d] = 0;
    this.cnt[d] = kept;
    return kept;
  }

  /** Starts a value (a map): its fields follow, then endValue(). */
  beginValue(): void {
    this.depth = -1;
    this.start = pos;
    this.ensure(1);
    u8[pos++] = this.format;
    this.openMap();
  }

  /** The value written since beginValue, encoded (a view of the shared slab: hand it on, do not keep it for writing). */
  endValue(): Buffer {
    if (this.depth !== 0) throw new Error(`changelog value writer: ${this.depth < 0 ? 'no value begun' : 'a map or list was not ended'}`);
    this.end();
    this.depth = -1;
    return slab.subarray(this.start, pos);
  }

  num(k: number, v: number): void {
    if (typeof v !== 'number') return this.value(k, v);
    this.ensure(10);
    if (!this.field(k)) return this.replace(k, v);
    writeNumber(v);
  }

  str(k: number, v: string | null): void {
    if (typeof v !== 'string') return this.value(k, v);
    this.ensure(6 + 3 * v.length);
    if (!this.field(k)) return this.replace(k, v);
    // A key written as its name (format 1, or a name not in the dictionary) took the room reserved above.
    this.ensure(5 + 3 * v.length);
    writeString(v);
  }

  bool(k: number, v: boolean): void {
    if (typeof v !== 'boolean') return this.value(k, v);
    this.ensure(2);
    if (!this.field(k)) return this.replace(k, v);
    u8[pos++] = v ? 0xc3 : 0xc2;
  }

  nil(k: number): void {
    this.ensure(2);
    if (!this.field(k)) return this.replace(k, null);
    u8[pos++] = 0xc0;
  }

  value(k: number, v: unknown): void {
    if (v === undefined) {
      this.ensure(2);
      if (!this.field(k)) return this.replace(k, v);
      u8[pos++] = HOLE;
      this.holes[this.depth] = this.holes[this.depth]! + 1;
      return;
    }
    this.ensure(1);
    if (!this.field(k)) return this.replace(k, v);
    this.generic(v);
  }

  map(k: number): void {
    this.ensure(2);
    if (!this.field(k)) throw new Error(`changelog value writer: map ${this.names[k]} written twice in one map`);
    this.openMap();
  }

  list(k: number, n: number): void {
    this.ensure(1);
    if (!this.field(k)) throw new Error(`changelog value writer: list ${this.names[k]} written twice in one map`);
    this.openList(n);
  }

  numbers(k: number, a: readonly number[]): void {
    const n = a.length;
    this.list(k, n);
    this.addNumbers(a, 0, n);
    this.end();
  }

  strings(k: number, a: readonly string[]): void {
    const n = a.length;
    this.list(k, n);
    for (let i = 0; i < n; i++) this.addStr(a[i]!);
    this.end();
  }

  end(): void {
    const d = this.depth;
    if (d < 0) throw new Error('changelog value writer: end() without an open map or list');
    let n = this.cnt[d]!;
    if (this.want[d] !== IS_MAP) {
      if (n !== this.want[d]) throw new Error(`changelog value writer: a list of ${this.want[d]} items got ${n}`);
      this.depth = d - 1;
      return;
    }
    if (this.holes[d]! > 0) n = this.dropHoles(d);
    this.ensure(mapHeaderExtra(n)); // (the value's positions move with it if the slab grows)
    this.depth = d - 1;
    writeMapHeader(this.hdr[d]!, n);
  }

  addNum(v: number): void {
    this.item();
    if (typeof v === 'number') {
      this.ensure(9);
      writeNumber(v);
    } else this.generic(v);
  }

  /** Items a[from], ..., a[to - 1] of the open list, numbers. */
  addNumbers(a: ArrayLike<number>, from: number, to: number): void {
    const d = this.depth;
    if (d < 0 || this.want[d] === IS_MAP) throw new Error('changelog value writer: list items outside a list');
    if (to <= from) return;
    this.cnt[d] = this.cnt[d]! + (to - from);
    this.ensure(9 * (to - from));
    for (let i = from; i < to; i++) {
      const x = a[i];
      if (typeof x === 'number') writeNumber(x);
      else this.generic(x);
    }
  }

  addStr(v: string | null): void {
    this.item();
    if (typeof v === 'string') {
      this.ensure(5 + 3 * v.length);
      writeString(v);
    } else this.generic(v);
  }

  addBool(v: boolean): void {
    this.item();
    this.generic(v);
  }

  addMap(): void {
    this.item();
    this.openMap();
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
