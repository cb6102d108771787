// Throughput of the second stage's core alone: npx tsx packages/stage/bench/stage-bench.ts [records]
// Six detector partitions publish a mixed stream (terminal activity, episode starts and ends, proposed
// actions with freezes, a watermark per batch); the partitions' batches are interleaved in arrival
// order as the stage's single input partition would see them, applied in batches of 200 records with
// the changelog taken after each batch (what the live task does). Prints records/s and the outcome.
import { defaultRulesConfig } from '@tillwatch/rules';
import type { Action } from '@tillwatch/schemas';
import { createStageCore } from '../src/core.js';
import type { StageRecord } from '../src/types.js';

const total = Number(process.argv[2] ?? 1_000_000);
const P = 6;
const TERMINALS = 12_000;
const T0 = Date.UTC(2025, 0, 6, 9);
let seed = 42;
const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

function generate(): StageRecord[] {
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
  return out;
}

const records = generate();
const core = createStageCore({ partitions: P, config: defaultRulesConfig() });
const counts = { alerts: 0, updates: 0, actions: 0, decisions: 0 };
const BATCH = 200;
const t0 = performance.now();
for (let i = 0; i < records.length; i += BATCH) {
  const o = core.apply(records.slice(i, i + BATCH));
  counts.alerts += o.alerts.length;
  counts.updates += o.updates.length;
  counts.actions += o.actions.length;
  counts.decisions += o.decisions.length;
  core.takeChanges();
}
const f = core.flush();
counts.decisions += f.decisions.length;
const ms = performance.now() - t0;
console.log(JSON.stringify({ records: records.length, seconds: +(ms / 1000).toFixed(2), recordsPerSecond: Math.round((records.length * 1000) / ms), ...counts, stats: core.stats() }));
