// The changelog's value encoding: a format byte, then the body. Shape-agnostic (any plain data:
// objects, arrays, strings, numbers, booleans, null), so the rule engine's entity shapes can change
// without touching it; what the shapes mean is versioned by the changelog topic name, as before.
//
//   0x01 <MessagePack>   written since the binary changelog (msgpackr, maps with string keys)
//   '{'  <JSON text>     written before it: read as JSON, so existing changelogs keep restoring
//
// MessagePack is a self-describing binary layout (https://github.com/msgpack/msgpack/blob/master/spec.md):
// every value carries its own keys, so a compacted changelog needs no schema registry round trip
// and no shared structure table. Integers stay exact up to 2^53 (event times in ms are float64 or
// uint); -0 becomes 0, as in JSON.
import { Packr, Unpackr } from 'msgpackr';

export const CHANGELOG_FORMAT_MSGPACK = 0x01;
const JSON_OBJECT = 0x7b; // '{'

// useRecords: false keeps each value self-contained (no structures shared between records, which
// a compacted topic could not keep); moreTypes: false keeps to the MessagePack spec.
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export class UnknownChangelogFormatError extends Error {
  override name = 'UnknownChangelogFormatError';
}

export function encodeChangelogValue(value: unknown): Buffer {
  const body = packr.pack(value);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = CHANGELOG_FORMAT_MSGPACK;
  body.copy(out, 1);
  return out;
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
