// A fixed-size ring of byte records outside the JS heap: the alert rows the read model keeps in
// memory. Records are addressed by a logical offset that only grows; writing past the end of the
// ring overwrites the oldest records, and a record is readable while the writer has not lapped it
// (head - offset <= capacity). One Buffer, no per-row objects: 1M rows cost their bytes, not 1M
// heap objects for the GC to walk.

export interface RowArena {
  /** Store a record; returns its logical offset, or -1 when it can never fit (larger than the ring). */
  write(bytes: Uint8Array): number;
  /** The record at `offset`, or undefined once it has been overwritten. The view is only valid until the next write. */
  read(offset: number): Buffer | undefined;
  /** Bytes of the ring. */
  readonly capacity: number;
  /** Logical offset of the next write (total bytes ever written, including wrap padding). */
  readonly head: number;
}

const HEADER = 4;

export function createRowArena(capacityBytes: number): RowArena {
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 64) throw new RangeError(`row arena capacity must be an integer >= 64 bytes, got ${capacityBytes}`);
  const buf = Buffer.allocUnsafeSlow(capacityBytes);
  let head = 0;
  return {
    write(bytes) {
      const size = HEADER + bytes.length;
      if (size > capacityBytes) return -1;
      let at = head % capacityBytes;
      // A record never wraps: skip the tail of the ring instead (the skipped bytes count as written,
      // so everything stored before them is aged out in order).
      if (at + size > capacityBytes) {
        head += capacityBytes - at;
        at = 0;
      }
      const offset = head;
      buf.writeUInt32LE(bytes.length, at);
      buf.set(bytes, at + HEADER);
      head += size;
      return offset;
    },
    read(offset) {
      // The writer overwrites a record's first byte before any other, once it is a full lap ahead.
      if (offset < 0 || offset >= head || head - offset > capacityBytes) return undefined;
      const at = offset % capacityBytes;
      const len = buf.readUInt32LE(at);
      return buf.subarray(at + HEADER, at + HEADER + len);
    },
    get capacity() {
      return capacityBytes;
    },
    get head() {
      return head;
    },
  };
}
