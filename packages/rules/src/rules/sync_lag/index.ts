// sync_lag: received_time - event_time above `threshold`, one alert per terminal per late-sync episode.
// State per terminal: whether an episode is open (a boolean). See README.md.
import type { Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

export interface SyncLagConfig extends RuleCommon {
  /** received_time - event_time above this is late, ms. */
  threshold: number;
}

class SyncLag implements RuleInstance {
  readonly def = syncLag;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onEvent(term: TerminalState, t: Transaction): void {
    const p = term.rules[this.variant]!.sync_lag;
    const lag = t.received_time - t.event_time;
    // The episode is tracked even while the rule is disabled, so enabling it never fires mid-episode.
    if (lag <= p.threshold) {
      term.st[this.slot] = false;
      return;
    }
    if (term.st[this.slot] === true) return;
    term.st[this.slot] = true;
    if (!p.enabled) return;
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      null,
      [t.event_id],
      t.event_time,
      t.received_time,
      t.received_time,
      `Terminal ${term.id} uploaded transaction ${t.txn_id} ${fmtDuration(lag)} after it was made (threshold ${fmtDuration(p.threshold)}): start of a late-sync episode.`,
      { lag_ms: lag, threshold_ms: p.threshold, terminal_seq: t.terminal_seq },
      null,
    );
  }

  dropTerminal(term: TerminalState): void {
    term.st[this.slot] = undefined;
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, out: Record<string, unknown>): void {
    out.lag_episode = term.st[this.slot] === true;
  }

  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    term.st[this.slot] = snap.lag_episode === true;
  }
}

export const syncLag: RuleDefinition<'sync_lag', SyncLagConfig> = {
  id: 'sync_lag',
  version: 1,
  defaults: { enabled: true, severity: 'low', mode: 'active', threshold: 15 * MIN },
  fields: { threshold: duration(1) },
  policy: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
  alertHas: { card: false, transaction: false },
  create: (core, slot, variant) => new SyncLag(core, slot, variant),
};
