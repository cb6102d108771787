// How the engine and the rules write an entity's state (a terminal, a sale) to the changelog: field
// by field, through a StateWriter, instead of building a plain object for a generic encoder to walk.
//
// A value is a map of fields; a field holds a number, a string, a boolean, null, a nested map
// (`map(k)` ... `end()`) or a list (`list(k, n)`, n items, `end()`). Field names are FieldKeys,
// registered once at module load (`fieldKeys('sales_seen', 'sample')`), so a writer resolves a name
// to its own code (a dictionary index, say) with an array load, not a string lookup per field.
//
// Two writers implement it:
//   ObjectStateWriter (here)      builds the plain object the engine's takeChangedEntities returns
//                                 (tests, backtests, restore round trips through JSON);
//   ChangelogValueWriter          (@tillwatch/stream, changelog-codec.ts) writes the changelog's
//                                 binary value format straight into its output buffer, byte for
//                                 byte what encoding the plain object would give (what the detector
//                                 writes).
// A field written twice in one map keeps its first position and takes the last value, and a field
// whose value is `undefined` is left out, as with a plain object and JSON.

/** A field name, registered with fieldKey / fieldKeys (an index into FIELD_NAMES). */
export type FieldKey = number & { readonly __fieldKey: unique symbol };

const names: string[] = [];
const byName = new Map<string, FieldKey>();

/**
 * Every registered field name, by FieldKey. APPEND-ONLY and live: a writer that caches a code per
 * key grows its cache when it meets a key beyond what it has seen.
 */
export const FIELD_NAMES: readonly string[] = names;

/** The key of a field name (the same key for the same name, whoever registers it). */
export function fieldKey(name: string): FieldKey {
  let k = byName.get(name);
  if (k === undefined) {
    k = names.length as FieldKey;
    names.push(name);
    byName.set(name, k);
  }
  return k;
}

/** Keys of several names at once: `const K = fieldKeys('a', 'b'); w.num(K.a, 1)`. */
export function fieldKeys<const N extends string>(...list: N[]): { readonly [P in N]: FieldKey } {
  const out = {} as Record<N, FieldKey>;
  for (const n of list) out[n] = fieldKey(n);
  return Object.freeze(out);
}

/**
 * Writes one value: the fields of the map being written (num, str, bool, nil, value, map, list), or,
 * inside a list, its items (the add* methods). `map` and `list` open a nested container that `end`
 * closes; a list gets exactly the n items announced.
 */
export interface StateWriter {
  /** A number (integers exact up to 2^53; -0 is written as 0, as in JSON). */
  num(k: FieldKey, v: number): void;
  /** A string, or null. */
  str(k: FieldKey, v: string | null): void;
  bool(k: FieldKey, v: boolean): void;
  nil(k: FieldKey): void;
  /** Any plain data (JSON-like), walked generically: for the rare shapes without a method of their own. */
  value(k: FieldKey, v: unknown): void;
  /** Opens a nested map under k; its fields follow, then end(). */
  map(k: FieldKey): void;
  /** Opens a list of n items under k; exactly n add* calls (or addMap ... end()) follow, then end(). */
  list(k: FieldKey, n: number): void;
  /** A list of numbers, whole. */
  numbers(k: FieldKey, a: readonly number[]): void;
  /** A list of strings, whole. */
  strings(k: FieldKey, a: readonly string[]): void;
  /** Closes the innermost map or list opened with map, list or addMap. */
  end(): void;
  addNum(v: number): void;
  /** Items a[from], ..., a[to - 1], numbers (a typed array's range, say). */
  addNumbers(a: ArrayLike<number>, from: number, to: number): void;
  addStr(v: string | null): void;
  addBool(v: boolean): void;
  /** Opens a map as the next item of the list; its fields follow, then end(). */
  addMap(): void;
}

/** Builds plain objects: what the writes describe, as the engine's snapshots were built before. */
export class ObjectStateWriter implements StateWriter {
  private stack: unknown[] = [];
  private cur: Record<string, unknown> | unknown[] = {};

  /** Starts a new value (a map). */
  beginValue(): void {
    this.stack.length = 0;
    this.cur = {};
  }

  /** The value written since beginValue(). */
  endValue(): Record<string, unknown> {
    if (this.stack.length !== 0) throw new Error('ObjectStateWriter: a map or list was not ended');
    return this.cur as Record<string, unknown>;
  }

  private set(k: FieldKey, v: unknown): void {
    (this.cur as Record<string, unknown>)[names[k]!] = v;
  }

  private open(c: Record<string, unknown> | unknown[]): void {
    this.stack.push(this.cur);
    this.cur = c;
  }

  num(k: FieldKey, v: number): void {
    this.set(k, v);
  }
  str(k: FieldKey, v: string | null): void {
    this.set(k, v);
  }
  bool(k: FieldKey, v: boolean): void {
    this.set(k, v);
  }
  nil(k: FieldKey): void {
    this.set(k, null);
  }
  value(k: FieldKey, v: unknown): void {
    this.set(k, v);
  }
  map(k: FieldKey): void {
    const o = {};
    this.set(k, o);
    this.open(o);
  }
  list(k: FieldKey, _n: number): void {
    const a: unknown[] = [];
    this.set(k, a);
    this.open(a);
  }
  numbers(k: FieldKey, a: readonly number[]): void {
    this.set(k, a.slice());
  }
  strings(k: FieldKey, a: readonly string[]): void {
    this.set(k, a.slice());
  }
  end(): void {
    if (this.stack.length === 0) throw new Error('ObjectStateWriter: end() without an open map or list');
    this.cur = this.stack.pop() as Record<string, unknown> | unknown[];
  }
  addNum(v: number): void {
    (this.cur as unknown[]).push(v);
  }
  addNumbers(a: ArrayLike<number>, from: number, to: number): void {
    const list = this.cur as unknown[];
    for (let i = from; i < to; i++) list.push(a[i]);
  }
  addStr(v: string | null): void {
    (this.cur as unknown[]).push(v);
  }
  addBool(v: boolean): void {
    (this.cur as unknown[]).push(v);
  }
  addMap(): void {
    const o = {};
    (this.cur as unknown[]).push(o);
    this.open(o);
  }
}
