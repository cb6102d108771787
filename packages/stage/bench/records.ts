// The bench input of the second stage: six detector partitions publishing a mixed stream (terminal
// activity, episode starts and ends, proposed actions with freezes, a watermark per detector batch of
// ~200 ms), deterministic (seed 42). Used by packages/stage/bench/stage-bench.ts (the core alone) and
// services/stage/bench/stage-throughput.ts (the live stage service).
import type { Action } from '@tillwatch/schemas';
import type { StageRecord } from '../src/types.js';

/** Detector partitions of the bench stream. */
export const BENCH_PARTITIONS = 6;
const P = BENCH_PARTITIONS;
const TERMINALS = 12_000;
const T0 = Date.UTC(2025, 0, 6, 9);

/**
 * At least `total` records; with `closeAll`, a last watermark per partition past everything, so
 * all of it is applied.
 */
export function benchStageRecords(total: number, o: { closeAll?: boolean } = {}): StageRecord[] {
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const out: StageRecord[] = [];
  const clock = new Array<number>(P).fill(T0);
  const open = new Map<string, string>();
  let n = 0;
  while (out.length < total) {
    const p = Math.floor(rnd() * P);
    // One detector batch: ~200 ms of stream time.
    const batchEnd = clock[p]! + 200;
    for (let k = 0; k < 8; k++) {
      const t = clock[p]! + Math.floor(rnd() * 200);
      const term = `T${p}-${Math.floor(rnd() * (TERMINALS / P))}`;
      const merchant = `M${term.slice(1, 6)}`;
      const r = rnd();
      if (r < 0.5) out.push({ type: 'seen', partition: p, time: t, terminal_id: term, merchant_id: merchant, bucket: Math.floor(t / 3_600_000) });
      else if (r < 0.75) {
        const id = `al-${++n}`;
        const prev = open.get(term);
        if (prev === undefined) {
          open.set(term, id);
          out.push({ type: 'start', partition: p, time: t, rule: 'sync_lag', alert_id: id, terminal_id: term, merchant_id: merchant, event_id: `ev-${n}` });
        } else {
          open.delete(term);
          out.push({ type: 'end', partition: p, time: t, rule: 'sync_lag', alert_id: prev, terminal_id: term, merchant_id: merchant });
        }
      } else {
        const kind: Action['kind'] = r < 0.85 ? 'FREEZE_TERMINAL' : 'NOTIFY_MERCHANT';
        const action: Action = { action_id: `a-${++n}`, kind, target_type: 'TERMINAL', target_id: term, merchant_id: merchant, terminal_id: term, alert_id: `x-${n}`, rule: kind === 'FREEZE_TERMINAL' ? 'refund_without_sale' : 'sequence_gap', reason: 'r', issued_at: t, expires_at: null };
        out.push({ type: 'action', partition: p, time: t, action });
      }
    }
    clock[p] = batchEnd;
    out.push({ type: 'watermark', partition: p, time: batchEnd });
  }
  if (o.closeAll === true) for (let p = 0; p < P; p++) out.push({ type: 'watermark', partition: p, time: Math.max(...clock) + 1 });
  return out;
}
