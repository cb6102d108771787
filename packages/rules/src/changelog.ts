// The engine's state as a compacted changelog of small entities, so the live detector writes only
// what an event changed instead of whole merchants (a busy merchant holds days of sales: writing
// it whole per batch would exceed Kafka's record size and cost O(state) per event).
//
// Keys: <merchant> US "t" US <terminal_id>  -> TerminalSnapshot
//       <merchant> US "s" US <txn_id>       -> SaleSnapshot
// (US = \u001f, which identifiers never contain). A removed entity is a tombstone (null).
// Restoring groups the entities of each merchant back into a MerchantSnapshot.
import type { MerchantSnapshot, RuleEngine, SaleSnapshot, TerminalSnapshot } from './types.js';

const US = '\u001f';

/** Sales carry their position in the merchant's insertion order, which matching depends on. */
export interface SaleEntry {
  seq: number;
  sale: SaleSnapshot;
}

export type ChangelogValue = TerminalSnapshot | SaleEntry;

interface Written {
  fps: Map<string, number>;
  seqs: Map<string, number>;
  next: number;
}

export interface ChangelogView {
  /** Entities whose state changed since the last call (null = removed). Keys sorted per merchant. */
  takeChanges(): Array<[key: string, value: ChangelogValue | null]>;
  /** Loads the latest value of every key (a compacted changelog read to its end). */
  restore(entries: Iterable<[key: string, value: ChangelogValue]>): void;
}

/** 53-bit fingerprint of a string (two independent 32-bit FNV-1a variants). */
function fingerprint(s: string): number {
  let a = 0x811c9dc5 | 0;
  let b = 0x01000193 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  return (a >>> 0) * 2097152 + ((b >>> 0) & 0x1fffff);
}

/**
 * Wraps an engine's merchant-level dirty tracking (`takeDirty`) and emits only the entities whose
 * content changed, by comparing fingerprints of what was last written per key.
 */
export function createChangelogView(engine: RuleEngine): ChangelogView {
  // merchant -> entity key -> fingerprint of the value last written (and each sale's position)
  const written = new Map<string, Written>();

  return {
    takeChanges() {
      const out: Array<[string, ChangelogValue | null]> = [];
      for (const [merchant, snap] of engine.takeDirty()) {
        const before = written.get(merchant);
        const after: Written = { fps: new Map(), seqs: new Map(), next: before?.next ?? 0 };
        if (snap !== null) {
          for (const t of snap.terminals) {
            const key = `${merchant}${US}t${US}${t.id}`;
            const fp = fingerprint(JSON.stringify(t));
            after.fps.set(key, fp);
            if (before?.fps.get(key) !== fp) out.push([key, t]);
          }
          for (const s of snap.sales) {
            const key = `${merchant}${US}s${US}${s.txn_id}`;
            const seq = before?.seqs.get(key) ?? after.next++;
            after.seqs.set(key, seq);
            const fp = fingerprint(JSON.stringify(s));
            after.fps.set(key, fp);
            if (before?.fps.get(key) !== fp) out.push([key, { seq, sale: s }]);
          }
        }
        if (before) for (const key of before.fps.keys()) if (!after.fps.has(key)) out.push([key, null]);
        if (after.fps.size > 0) written.set(merchant, after);
        else written.delete(merchant);
      }
      return out;
    },
    restore(entries) {
      const byMerchant = new Map<string, { terminals: TerminalSnapshot[]; sales: SaleEntry[]; w: Written }>();
      for (const [key, value] of entries) {
        const a = key.indexOf(US);
        const kind = key.charAt(a + 1);
        if (a < 0 || key.charAt(a + 2) !== US || (kind !== 't' && kind !== 's')) throw new TypeError(`unknown changelog key ${JSON.stringify(key)}`);
        const merchant = key.slice(0, a);
        let m = byMerchant.get(merchant);
        if (!m) byMerchant.set(merchant, (m = { terminals: [], sales: [], w: { fps: new Map(), seqs: new Map(), next: 0 } }));
        if (kind === 't') {
          m.terminals.push(value as TerminalSnapshot);
          m.w.fps.set(key, fingerprint(JSON.stringify(value)));
        } else {
          const e = value as SaleEntry;
          m.sales.push(e);
          m.w.seqs.set(key, e.seq);
          if (e.seq >= m.w.next) m.w.next = e.seq + 1;
          m.w.fps.set(key, fingerprint(JSON.stringify(e.sale)));
        }
      }
      for (const [merchant, m] of byMerchant) {
        // The engine's matching follows each merchant's sale insertion order: restore it.
        m.sales.sort((x, y) => x.seq - y.seq);
        const snap: MerchantSnapshot = { v: 1, clock: 0, terminals: m.terminals, sales: m.sales.map((e) => e.sale) };
        engine.restoreMerchant(merchant, snap);
        written.set(merchant, m.w);
      }
    },
  };
}
