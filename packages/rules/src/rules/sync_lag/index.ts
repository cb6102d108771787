// sync_lag: received_time - event_time above `threshold`, one alert per terminal per offline episode.
// An episode opens at a terminal's first late transaction and ends once the terminal has sent no late
// transaction for `episode_quiet` (received time): on-time transactions in between do not end it.
// The end is a timer in the engine's heap; it closes the episode's alert with an alert update.
// State per terminal (in the instance, by terminal slot): the open episode, if any. See README.md.
import { alertUpdateId, type Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { alertId } from '../../ids.js';
import { BySlot } from '../../storage/by-slot.js';
import type { TerminalFields } from '../../storage/terminal-rows.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (TerminalSnapshot `lag_episode`, `lag`: LagEpisodeSnapshot). */
const K = fieldKeys('lag_episode', 'lag', 'alert_id', 'started_at', 'first_event_time', 'last_late', 'late_count', 'max_lag', 'due');
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Timer, Variant } from '../types.js';

export interface SyncLagConfig extends RuleCommon {
  /** received_time - event_time above this is late, ms. */
  threshold: number;
  /** The episode ends when no late transaction was received for this long (received time), ms. */
  episode_quiet: number;
}

/** An open episode; it is its own end timer (due = lastLate + episode_quiet in force at that late event). */
interface Episode extends Timer {
  /** The alert it raised into pos.alerts, to close at the end; null when none was (rule disabled or in shadow at the start). */
  alertId: string | null;
  /** Received time of the first late transaction (when the alert was raised). */
  startedAt: number;
  /** Earliest event_time among its late transactions (when the terminal started holding them back). */
  firstEt: number;
  /** Latest received_time among its late transactions. */
  lastLate: number;
  lateCount: number;
  maxLag: number;
}

/** The changelog form of an open episode (TerminalSnapshot field `lag`; `lag_episode` says whether one is open). */
export interface LagEpisodeSnapshot {
  alert_id: string | null;
  started_at: number;
  first_event_time: number;
  last_late: number;
  late_count: number;
  max_lag: number;
  due: number;
}

/** Field of the rule's range in the engine's terminal row (storage/terminal-rows.ts): an episode is open (1) or not (0). */
const EP_OPEN = 0;

/**
 * The open episode of each terminal lives in the instance, in a dense array indexed by the terminal's
 * slot (TerminalState.slot, stable while the terminal is registered; null = none), like sequence_gap's
 * state: no per-terminal array to load on the late path.
 */
class SyncLag implements RuleInstance {
  readonly def = syncLag;
  private readonly episodes = new BySlot<Episode>(256);
  /** EP_OPEN in the engine's terminal row: 1 while the terminal has an open episode (read on every sale by the refund reasons). */
  private readonly fields: TerminalFields;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {
    this.fields = core.terminalFields(1, 0);
  }

  /** Sets or clears the terminal's open episode (the object and the row's flag together). */
  private setEpisode(term: TerminalState, ep: Episode | null): void {
    this.episodes.set(term.slot, ep);
    this.fields.set(this.fields.row(term.slot), EP_OPEN, ep === null ? 0 : 1);
  }

  onEvent(term: TerminalState, t: Transaction): void {
    const p = term.rules[this.variant]!.sync_lag;
    const lag = t.received_time - t.event_time;
    if (lag <= p.threshold) return; // on time: the episode, if any, goes on
    const recv = t.received_time;
    const ep = this.episodes.get(term.slot);
    if (ep !== null) {
      ep.lateCount++;
      if (lag > ep.maxLag) ep.maxLag = lag;
      if (t.event_time < ep.firstEt) ep.firstEt = t.event_time;
      if (recv > ep.lastLate) ep.lastLate = recv;
      const due = ep.lastLate + p.episode_quiet;
      if (due !== ep.due) {
        this.core.timers.remove(ep);
        ep.due = due;
        this.core.timers.push(ep);
      }
      return;
    }
    // The episode is tracked even while the rule is disabled, so enabling it never fires mid-episode.
    const raised = p.enabled && this.variant === 0 && p.mode === 'active';
    const evidence = [t.event_id];
    const fresh: Episode = {
      heapIndex: -1,
      due: recv + p.episode_quiet,
      terminal: term,
      owner: this,
      order: 0,
      alertId: raised ? alertId(syncLag.id, syncLag.version, evidence) : null,
      startedAt: recv,
      firstEt: t.event_time,
      lastLate: recv,
      lateCount: 1,
      maxLag: lag,
    };
    this.setEpisode(term, fresh);
    this.core.timers.push(fresh);
    if (!p.enabled) return;
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      null,
      evidence,
      t.event_time,
      recv,
      recv,
      `Terminal ${term.id} uploaded transaction ${t.txn_id} ${fmtDuration(lag)} after it was made (threshold ${fmtDuration(p.threshold)}): start of a late-sync episode.`,
      { lag_ms: lag, threshold_ms: p.threshold, terminal_seq: t.terminal_seq },
      null,
    );
  }

  onTimer(timer: Timer): void {
    const ep = timer as Episode;
    const term = ep.terminal;
    this.core.timers.remove(ep);
    if (this.episodes.get(term.slot) !== ep) return; // not expected: a dropped terminal's timer is removed with it
    this.setEpisode(term, null);
    this.core.markTerminal(term);
    if (ep.alertId === null) return;
    const quiet = ep.due - ep.lastLate;
    const durationMs = ep.lastLate - ep.firstEt;
    const late = ep.lateCount === 1 ? '1 late transaction' : `${ep.lateCount} late transactions`;
    this.core.emitUpdate({
      update_id: alertUpdateId(ep.alertId, 'auto_resolved', 'episode_ended', []),
      alert_id: ep.alertId,
      rule: syncLag.id,
      rule_version: syncLag.version,
      terminal_id: term.id,
      merchant_id: term.merchant.id,
      status: 'auto_resolved',
      resolution: 'episode_ended',
      resolved_by_event_ids: [],
      resolved_at: ep.due,
      summary: `Terminal ${term.id}'s late-sync episode ended: ${late} held back for up to ${fmtDuration(ep.maxLag)}, the episode lasted ${fmtDuration(durationMs)}; none late for ${fmtDuration(quiet)} since.`,
      details: { duration_ms: durationMs, late_count: ep.lateCount, max_lag_ms: ep.maxLag },
    });
  }

  holdsTerminal(term: TerminalState): boolean {
    return this.episodes.get(term.slot) !== null;
  }

  /** The terminal is in a late-sync episode (tracked even while the rule is disabled). Read by the refund reasons (src/reasons/). */
  episodeOpen(term: TerminalState): boolean {
    return term.slot >= 0 && this.fields.get(this.fields.row(term.slot), EP_OPEN) === 1;
  }

  dropTerminal(term: TerminalState): void {
    const ep = this.episodes.get(term.slot);
    if (ep === null) return;
    this.core.timers.remove(ep);
    this.setEpisode(term, null);
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
    this.fields.release();
  }

  writeTerminal(term: TerminalState, w: StateWriter): void {
    const ep = this.episodes.get(term.slot);
    w.bool(K.lag_episode, ep !== null);
    if (ep === null) return;
    // LagEpisodeSnapshot, in this order.
    w.map(K.lag);
    w.str(K.alert_id, ep.alertId);
    w.num(K.started_at, ep.startedAt);
    w.num(K.first_event_time, ep.firstEt);
    w.num(K.last_late, ep.lastLate);
    w.num(K.late_count, ep.lateCount);
    w.num(K.max_lag, ep.maxLag);
    w.num(K.due, ep.due);
    w.end();
  }

  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    if (snap.lag_episode !== true) return;
    const s = snap.lag as LagEpisodeSnapshot | undefined;
    // A snapshot written by sync_lag@1 holds only the flag: the episode goes on without an alert to
    // close, and ends episode_quiet after the terminal's last event.
    const last = s?.last_late ?? term.lastRecv;
    const ep: Episode = {
      heapIndex: -1,
      due: s?.due ?? last + term.rules[this.variant]!.sync_lag.episode_quiet,
      terminal: term,
      owner: this,
      order: 0,
      alertId: s?.alert_id ?? null,
      startedAt: s?.started_at ?? last,
      firstEt: s?.first_event_time ?? last,
      lastLate: last,
      lateCount: s?.late_count ?? 0,
      maxLag: s?.max_lag ?? 0,
    };
    this.setEpisode(term, ep);
    this.core.timers.push(ep);
  }
}

export const syncLag: RuleDefinition<'sync_lag', SyncLagConfig> = {
  id: 'sync_lag',
  version: 2,
  defaults: { enabled: true, severity: 'low', mode: 'active', threshold: 15 * MIN, episode_quiet: 30 * MIN },
  fields: { threshold: duration(1), episode_quiet: duration(1) },
  policy: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
  alertHas: { card: false, transaction: false },
  create: (core, slot, variant) => new SyncLag(core, slot, variant),
};
