// upload_backlog: a terminal's heartbeats show transactions it holds and does not upload. The backlog
// of a heartbeat is max(queue_depth, last_seq - highest terminal_seq received from the terminal); it
// fires when the backlog is at least `min_queue` and has not shrunk for `stuck_for` (received time,
// judged at heartbeats): the sync failure is seen while it happens, before the late transactions
// arrive. One alert per backlog, closed by an alert update (`episode_ended`) at the first heartbeat
// whose backlog is below `min_queue`. A backlog that keeps shrinking (an upload in progress) is not
// stuck. State per terminal: the backlog run, if any; the highest seq received from the terminal is
// sequence_gap's (highestSeqReceived: every transaction counts, also those before the first heartbeat,
// with no per-transaction work here). See README.md.
import { alertUpdateId, type Heartbeat } from '@tillwatch/schemas';
import { duration, MIN, num } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { alertId, heartbeatEventId } from '../../ids.js';
import { highestSeqReceived } from '../sequence_gap/index.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (TerminalSnapshot `backlog`: BacklogSnapshot). */
const K = fieldKeys('backlog', 'since', 'since_event_time', 'since_id', 'last', 'max', 'began', 'fired', 'alert_id');

export interface UploadBacklogConfig extends RuleCommon {
  /** A backlog of at least this many transactions counts (queue_depth, or last_seq ahead of the highest seq received). */
  min_queue: number;
  /** ... and fires once it has not shrunk for this long (received time), ms. */
  stuck_for: number;
}

/** A run of heartbeats with a backlog >= min_queue that has not shrunk since `since`. */
interface Run {
  /** received_time, event_time and evidence id of the heartbeat the run (re)started at. */
  since: number;
  sinceEt: number;
  sinceId: string;
  /** Backlog at the previous heartbeat, and the largest of the run. */
  last: number;
  max: number;
  /** received_time the backlog first reached min_queue (the run's start before any restart). */
  began: number;
  /** Fired: the alert it raised (null when none went to pos.alerts: disabled, shadow). */
  fired: boolean;
  alertId: string | null;
}

/** The changelog form (TerminalSnapshot field `backlog`). */
export interface BacklogSnapshot {
  since: number;
  since_event_time: number;
  since_id: string;
  last: number;
  max: number;
  began: number;
  fired: boolean;
  alert_id: string | null;
}

class UploadBacklog implements RuleInstance {
  readonly def = uploadBacklog;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onHeartbeat(term: TerminalState, h: Heartbeat): void {
    const p = term.rules[this.variant]!.upload_backlog;
    // The highest terminal_seq received from the terminal (NaN: none), before its first heartbeat too.
    const synced = highestSeqReceived(this.core, term);
    const ahead = synced === synced && h.last_seq > synced ? h.last_seq - synced : 0;
    const backlog = Math.max(h.queue_depth, ahead);
    const run = term.st[this.slot] as Run | undefined;
    const recv = h.received_time;
    if (backlog < p.min_queue) {
      if (run === undefined) return;
      term.st[this.slot] = undefined;
      if (run.alertId !== null) this.close(term, run, h, backlog);
      return;
    }
    if (run === undefined) {
      const id = heartbeatEventId(h);
      term.st[this.slot] = { since: recv, sinceEt: h.event_time, sinceId: id, last: backlog, max: backlog, began: recv, fired: false, alertId: null } satisfies Run;
      return;
    }
    if (backlog > run.max) run.max = backlog;
    if (run.fired) {
      run.last = backlog;
      return; // one alert per backlog: open until it falls below min_queue
    }
    if (backlog < run.last) {
      // Shrinking: an upload in progress is not stuck; the run restarts here.
      run.since = recv;
      run.sinceEt = h.event_time;
      run.sinceId = heartbeatEventId(h);
      run.last = backlog;
      return;
    }
    run.last = backlog;
    if (recv - run.since < p.stuck_for) return;
    run.fired = true;
    const evidence = [run.sinceId, heartbeatEventId(h)];
    run.alertId = p.enabled && this.variant === 0 && p.mode === 'active' ? alertId(uploadBacklog.id, uploadBacklog.version, evidence) : null;
    if (!p.enabled) return;
    const stuck = recv - run.since;
    const details: Record<string, number> = { queue_depth: h.queue_depth, last_seq: h.last_seq, seq_ahead: ahead, backlog, min_queue: p.min_queue, stuck_ms: stuck, stuck_for_ms: p.stuck_for };
    if (synced === synced) details.synced_seq = synced;
    const what = h.queue_depth >= ahead ? `${h.queue_depth} transactions in its upload queue` : `its last seq ${h.last_seq} ${ahead} ahead of the highest received (${synced})`;
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      null,
      evidence,
      Math.min(run.sinceEt, h.event_time),
      Math.max(run.sinceEt, h.event_time),
      recv,
      `Terminal ${term.id} reports ${what}, not shrinking for ${fmtDuration(stuck)} (at least ${p.min_queue} for ${fmtDuration(p.stuck_for)}): transactions are not syncing.`,
      details,
      null,
    );
  }

  private close(term: TerminalState, run: Run, h: Heartbeat, backlog: number): void {
    const alert = run.alertId!;
    const id = heartbeatEventId(h);
    const durationMs = h.received_time - run.began;
    this.core.emitUpdate({
      update_id: alertUpdateId(alert, 'auto_resolved', 'episode_ended', [id]),
      alert_id: alert,
      rule: uploadBacklog.id,
      rule_version: uploadBacklog.version,
      terminal_id: term.id,
      merchant_id: term.merchant.id,
      status: 'auto_resolved',
      resolution: 'episode_ended',
      resolved_by_event_ids: [id],
      resolved_at: Math.max(this.core.clk, h.received_time),
      summary: `Terminal ${term.id}'s upload backlog cleared: ${backlog} left (largest ${run.max}), ${fmtDuration(durationMs)} after it first reached ${term.rules[this.variant]!.upload_backlog.min_queue}.`,
      details: { duration_ms: durationMs, max_backlog: run.max, backlog, queue_depth: h.queue_depth },
    });
  }

  dropTerminal(term: TerminalState): void {
    term.st[this.slot] = undefined;
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, w: StateWriter): void {
    const run = term.st[this.slot] as Run | undefined;
    if (run === undefined) return;
    // BacklogSnapshot, in this order.
    w.map(K.backlog);
    w.num(K.since, run.since);
    w.num(K.since_event_time, run.sinceEt);
    w.str(K.since_id, run.sinceId);
    w.num(K.last, run.last);
    w.num(K.max, run.max);
    w.num(K.began, run.began);
    w.bool(K.fired, run.fired);
    w.str(K.alert_id, run.alertId);
    w.end();
  }

  /** Called after the engine registered the terminal (its slot is set). */
  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    // (`synced_seq`, written before issue 10's fix, is ignored: sequence_gap's `max_seq` is the highest seq received.)
    const s = snap.backlog as BacklogSnapshot | undefined;
    if (s === undefined) return;
    term.st[this.slot] = { since: s.since, sinceEt: s.since_event_time, sinceId: s.since_id, last: s.last, max: s.max, began: s.began, fired: s.fired, alertId: s.alert_id } satisfies Run;
  }
}

export const uploadBacklog: RuleDefinition<'upload_backlog', UploadBacklogConfig> = {
  id: 'upload_backlog',
  version: 1,
  defaults: { enabled: true, severity: 'medium', mode: 'active', min_queue: 5, stuck_for: 10 * MIN },
  fields: { min_queue: num(1, 2 ** 31 - 1, true), stuck_for: duration(1) },
  policy: [{ kind: 'NOTIFY_MERCHANT', expires_after: null }],
  alertHas: { card: false, transaction: false },
  create: (core, slot, variant) => new UploadBacklog(core, slot, variant),
};
