// The detector writes changelog values straight from the engine's state (ChangelogValueWriter through
// ChangelogView.writeChanges): every entity of a simulated fleet, in both formats, with and without
// shadow instances, gets exactly the bytes that encoding the engine's plain-object snapshot gives
// (takeChanges + encodeChangelogValue / encodeChangelogValueV1, the path used before).
import { describe, expect, it } from 'vitest';
import { createChangelogView, createRuleEngine, defaultRulesConfig, FIELD_NAMES, parseRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { ChangelogValueWriter, encodeChangelogValue, encodeChangelogValueV1 } from '@tillwatch/stream';
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import { createFleet } from '@tillwatch/simulator';

const SHADOW_ALL = parseRulesConfig({
  shadow: {
    duplicate_charge: { window: '5m' },
    abnormal_amount: { ratio: 4, sample_size: 7, min_sales: 3 },
    sync_lag: { threshold: '2m' },
    sequence_gap: { timeout: '10m' },
    refund_without_sale: {},
    refund_exceeds_sale: {},
    refund_card_mismatch: {},
    refund_after_deadline: { deadline: '30m' },
    refund_velocity: { count: 2, window: '20m' },
    terminal_offline: {},
    upload_backlog: {},
  },
});

function compare(config: RulesConfig, format: 1 | 2, seed: number): { values: number; keys: Set<string> } {
  // Two engines fed the same stream: one gives objects (encoded as before), the other writes bytes.
  const a = createRuleEngine(config);
  const b = createRuleEngine(config);
  const viewA = createChangelogView(a);
  const viewB = createChangelogView(b);
  const writer = new ChangelogValueWriter(FIELD_NAMES, format);
  const encode = format === 2 ? encodeChangelogValue : encodeChangelogValueV1;
  const fleet = createFleet({ terminals: 40, cards: 50, seed, anomalyRate: 0.1, outages: { rate: 0.03 } });
  let now = Date.UTC(2026, 0, 5, 9);
  let values = 0;
  const keys = new Set<string>();
  const fields = (o: unknown, path: string) => {
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o)) {
      keys.add(`${path}.${k}`);
      fields(Array.isArray(v) ? v[0] : v, `${path}.${k}`);
    }
  };
  for (let step = 0; step < 1500; step++) {
    now += 2_000;
    const inputs: Array<Transaction | Heartbeat> = [...fleet.next(now)];
    if (step % 30 === 0) inputs.push(...fleet.heartbeats(now));
    for (const x of inputs) {
      if ('kind' in x) {
        a.onTransaction(x);
        b.onTransaction(x);
      } else {
        a.onHeartbeat(x);
        b.onHeartbeat(x);
      }
    }
    if (step % 11 === 0) {
      // A live clock tick (timers fire, terminals expire).
      a.advanceClock(now + 90_000);
      b.advanceClock(now + 90_000);
    }
    if (step % 4 !== 0) continue;
    const objects = viewA.takeChanges();
    const written: Array<[string, Buffer | null]> = [];
    viewB.writeChanges(writer, written);
    expect(written.map(([k]) => k)).toEqual(objects.map(([k]) => k));
    for (let i = 0; i < objects.length; i++) {
      const [key, value] = objects[i]!;
      const bytes = written[i]![1];
      if (value === null) {
        expect(bytes).toBeNull();
        continue;
      }
      fields(value, key.includes('\u001ft\u001f') ? 'terminal' : 'sale');
      const expected = encode(value);
      if (bytes === null || !bytes.equals(expected)) expect({ key, bytes: bytes?.toString('hex') }).toEqual({ key, bytes: expected.toString('hex') });
      values++;
    }
  }
  return { values, keys };
}

describe('changelog values written from state', () => {
  it.each([
    ['default rules, format 2', defaultRulesConfig(), 2, 1],
    ['every rule shadowed too, format 2', SHADOW_ALL, 2, 2],
    ['default rules, format 1 (no dictionary)', defaultRulesConfig(), 1, 3],
    ['every rule shadowed too, format 1', SHADOW_ALL, 1, 4],
  ] as const)('%s: the bytes of the object path, for every entity of a simulated fleet', (_name, config, format, seed) => {
    const { values, keys } = compare(config, format, seed);
    expect(values).toBeGreaterThan(1000);
    // The stream reaches the state that has fields of its own (not only the common ones).
    for (const k of ['terminal.sample', 'terminal.gaps.missing', 'terminal.fired_gaps.by', 'terminal.lag.due', 'terminal.offline_watch.due', 'terminal.backlog.since_id', 'terminal.refund_velocity.ids', 'sale.sale.refunds.txn_id', 'sale.sale.dup_alerts.legs', 'sale.sale.sync_failure', 'sale.sale.sale_event_id']) {
      expect(keys, k).toContain(k);
    }
    if (config === SHADOW_ALL) expect(keys).toContain('terminal.shadow.sequence_gap.gaps');
  }, 60_000);
});
