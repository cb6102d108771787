// terminal_offline: a terminal that has been sending heartbeats goes silent: no heartbeat and no
// transaction for `silence` (engine clock). One alert per silence, closed by an alert update
// (`episode_ended`) when the terminal is heard from again. A terminal is watched from its first
// heartbeat on (terminals that never heartbeat are never judged). The silence end is a timer in the
// engine's heap, moved (lazily, see Watch) by every sign of life. State per terminal: the watch. See README.md.
import { alertUpdateId, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { alertId, heartbeatEventId } from '../../ids.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Timer, Variant } from '../types.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (TerminalSnapshot `offline_watch`: OfflineWatchSnapshot). */
const K = fieldKeys('offline_watch', 'last_seen', 'last_txn_event_id', 'hb_event_time', 'hb_last_seq', 'hb_queue_depth', 'due', 'offline', 'alert_id');

export interface TerminalOfflineConfig extends RuleCommon {
  /** No heartbeat and no transaction for this long (engine clock) is a silence, ms. */
  silence: number;
}

/**
 * A watched terminal; it is its own silence timer (in the heap while the terminal is online).
 * `due` is its key in the heap and may lag behind `silentAt`, the silence's real end: a sign of life
 * that only pushes the end later (every heartbeat) sets silentAt and leaves the heap alone; when the
 * stale key comes due, onTimer moves the timer to silentAt instead of firing. Timers still fire in
 * (real end, terminal, ...) order, one heap move per silence period instead of one per heartbeat.
 */
interface Watch extends Timer {
  /** lastSeen + silence as of the last sign of life (what `due` was before it was made lazy). */
  silentAt: number;
  /** Latest received_time of a heartbeat or transaction since the watch started. */
  lastSeen: number;
  /** The last sign of life: a transaction's event_id, or null when it was a heartbeat (below). */
  lastTxnEventId: string | null;
  /** The last heartbeat (its id is computed only when it becomes evidence). */
  hbEt: number;
  hbSeq: number;
  hbQueue: number;
  /** Silent since lastSeen: the alert fired (alertId null when none went to pos.alerts). */
  offline: boolean;
  alertId: string | null;
}

/** The changelog form (TerminalSnapshot field `offline_watch`). */
export interface OfflineWatchSnapshot {
  last_seen: number;
  last_txn_event_id: string | null;
  hb_event_time: number;
  hb_last_seq: number;
  hb_queue_depth: number;
  /** Silence timer due time; null while offline. */
  due: number | null;
  offline: boolean;
  alert_id: string | null;
}

class TerminalOffline implements RuleInstance {
  readonly def = terminalOffline;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onHeartbeat(term: TerminalState, h: Heartbeat): void {
    const w = term.st[this.slot] as Watch | undefined;
    if (w === undefined) {
      // The first heartbeat starts the watch.
      const due = h.received_time + term.rules[this.variant]!.terminal_offline.silence;
      const fresh: Watch = {
        heapIndex: -1,
        due,
        silentAt: due,
        terminal: term,
        owner: this,
        order: 0,
        lastSeen: h.received_time,
        lastTxnEventId: null,
        hbEt: h.event_time,
        hbSeq: h.last_seq,
        hbQueue: h.queue_depth,
        offline: false,
        alertId: null,
      };
      term.st[this.slot] = fresh;
      this.core.timers.push(fresh);
      return;
    }
    if (this.staleWhileOffline(w, h.received_time)) return;
    if (w.offline) this.back(term, w, h.received_time, heartbeatEventId(h), h.queue_depth);
    if (h.received_time >= w.lastSeen) {
      w.lastTxnEventId = null;
      w.hbEt = h.event_time;
      w.hbSeq = h.last_seq;
      w.hbQueue = h.queue_depth;
    }
    this.seen(term, w, h.received_time);
  }

  onBeatingEvent(term: TerminalState, t: Transaction): void {
    const w = term.st[this.slot] as Watch | undefined;
    if (w === undefined) return; // not expected: a heartbeating terminal is watched
    if (this.staleWhileOffline(w, t.received_time)) return;
    if (w.offline) this.back(term, w, t.received_time, t.event_id, -1);
    if (t.received_time >= w.lastSeen) w.lastTxnEventId = t.event_id;
    this.seen(term, w, t.received_time);
  }

  /**
   * A record received no later than the last sign of life before the silence, processed only after the
   * alert (another partition's batch moved the clock first): no return, and no new silence either
   * (re-arming the timer would raise the same alert again). Nothing about the watch changes.
   */
  private staleWhileOffline(w: Watch, recv: number): boolean {
    return w.offline && recv <= w.lastSeen;
  }

  /** A sign of life at recv: the silence timer restarts from the latest one. */
  private seen(term: TerminalState, w: Watch, recv: number): void {
    if (recv > w.lastSeen) w.lastSeen = recv;
    const due = w.lastSeen + term.rules[this.variant]!.terminal_offline.silence;
    if (w.heapIndex >= 0) {
      if (due === w.silentAt) return;
      w.silentAt = due;
      // Later than the heap key: left to onTimer (see Watch). Earlier (a shorter silence): moved now.
      if (due > w.due) return;
      this.core.timers.remove(w);
    }
    w.due = due;
    w.silentAt = due;
    this.core.timers.push(w);
  }

  /** The terminal is heard from again: the silence ends (closing its alert, if one was raised). */
  private back(term: TerminalState, w: Watch, recv: number, byEventId: string, queueDepth: number): void {
    const alert = w.alertId;
    const since = w.lastSeen;
    w.offline = false;
    w.alertId = null;
    if (alert === null) return;
    const p = term.rules[this.variant]!.terminal_offline;
    // The clock (max received time), not recv: received times may go backwards a little.
    const at = Math.max(this.core.clk, recv);
    const silentMs = at - since;
    const how = queueDepth < 0 ? 'a transaction' : `a heartbeat (upload queue ${queueDepth})`;
    const details: Record<string, number> = { duration_ms: silentMs, silence_ms: p.silence, by_heartbeat: queueDepth < 0 ? 0 : 1 };
    if (queueDepth >= 0) details.queue_depth = queueDepth;
    this.core.emitUpdate({
      update_id: alertUpdateId(alert, 'auto_resolved', 'episode_ended', [byEventId]),
      alert_id: alert,
      rule: terminalOffline.id,
      rule_version: terminalOffline.version,
      terminal_id: term.id,
      merchant_id: term.merchant.id,
      status: 'auto_resolved',
      resolution: 'episode_ended',
      resolved_by_event_ids: [byEventId],
      resolved_at: at,
      summary: `Terminal ${term.id} is back after ${fmtDuration(silentMs)} of silence: ${how} arrived.`,
      details,
    });
  }

  onTimer(timer: Timer): void {
    const w = timer as Watch;
    const term = w.terminal;
    this.core.timers.remove(w);
    if (w.silentAt > w.due) {
      // A stale key (see Watch): the silence ends later; the timer goes back in the heap at its real end.
      w.due = w.silentAt;
      this.core.timers.push(w);
      return;
    }
    if (term.st[this.slot] !== w) return; // not expected: a dropped terminal's timer is removed with it
    w.offline = true;
    this.core.markTerminal(term);
    const p = term.rules[this.variant]!.terminal_offline;
    // The evidence is the last sign of life: one alert per silence, the same id in every run.
    const evidence = [w.lastTxnEventId ?? heartbeatEventId({ merchant_id: term.merchant.id, terminal_id: term.id, event_time: w.hbEt, last_seq: w.hbSeq, queue_depth: w.hbQueue })];
    w.alertId = p.enabled && this.variant === 0 && p.mode === 'active' ? alertId(terminalOffline.id, terminalOffline.version, evidence) : null;
    if (!p.enabled) return;
    const last = w.lastTxnEventId === null ? 'heartbeat' : 'transaction';
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      null,
      evidence,
      w.lastSeen,
      w.due,
      w.due,
      `Terminal ${term.id} has sent no heartbeat and no transaction for ${fmtDuration(w.due - w.lastSeen)} (silence ${fmtDuration(p.silence)}); its last ${last} arrived at ${new Date(w.lastSeen).toISOString()}.`,
      { silence_ms: p.silence, last_seen_at: w.lastSeen, last_seq: w.hbSeq, queue_depth: w.hbQueue, last_was_heartbeat: w.lastTxnEventId === null ? 1 : 0 },
      null,
    );
  }

  holdsTerminal(term: TerminalState): boolean {
    const w = term.st[this.slot] as Watch | undefined;
    return w !== undefined && w.heapIndex >= 0;
  }

  dropTerminal(term: TerminalState): void {
    const w = term.st[this.slot] as Watch | undefined;
    if (w !== undefined && w.heapIndex >= 0) this.core.timers.remove(w);
    term.st[this.slot] = undefined;
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, out: StateWriter): void {
    const w = term.st[this.slot] as Watch | undefined;
    if (w === undefined) return;
    // OfflineWatchSnapshot, in this order.
    out.map(K.offline_watch);
    out.num(K.last_seen, w.lastSeen);
    out.str(K.last_txn_event_id, w.lastTxnEventId);
    out.num(K.hb_event_time, w.hbEt);
    out.num(K.hb_last_seq, w.hbSeq);
    out.num(K.hb_queue_depth, w.hbQueue);
    if (w.heapIndex >= 0) out.num(K.due, w.silentAt);
    else out.nil(K.due);
    out.bool(K.offline, w.offline);
    out.str(K.alert_id, w.alertId);
    out.end();
  }

  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    const s = snap.offline_watch as OfflineWatchSnapshot | undefined;
    if (s === undefined) return;
    const due = s.due ?? s.last_seen + term.rules[this.variant]!.terminal_offline.silence;
    const w: Watch = {
      heapIndex: -1,
      due,
      silentAt: due,
      terminal: term,
      owner: this,
      order: 0,
      lastSeen: s.last_seen,
      lastTxnEventId: s.last_txn_event_id,
      hbEt: s.hb_event_time,
      hbSeq: s.hb_last_seq,
      hbQueue: s.hb_queue_depth,
      offline: s.offline,
      alertId: s.alert_id,
    };
    term.st[this.slot] = w;
    if (s.due !== null) this.core.timers.push(w);
  }
}

export const terminalOffline: RuleDefinition<'terminal_offline', TerminalOfflineConfig> = {
  id: 'terminal_offline',
  version: 1,
  defaults: { enabled: true, severity: 'medium', mode: 'active', silence: 10 * MIN },
  fields: { silence: duration(1) },
  policy: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
  alertHas: { card: false, transaction: false },
  create: (core, slot, variant) => new TerminalOffline(core, slot, variant),
};
