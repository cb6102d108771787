// The second stage, pure: (state, records) -> (state, alerts, updates, actions, decisions).
// No I/O, no wall clock. Shared by the live stage service and `tillwatch backtest`.
//
// Ordering (the Kafka Streams way: a task with several input partitions picks by timestamp, and
// event-time operators wait for the watermark): records are buffered and applied in (time, rank, id)
// order only once every input partition's watermark has passed their time, so any interleaving of the
// partitions' records gives the same output (test/properties.test.ts). A partition never heard from
// holds everything back; an idle one (no input yet) holds nothing back.
import { alertUpdateId, incidentMembershipId, type Action, type Alert, type AlertUpdate, type IncidentMembership } from '@tillwatch/schemas';
import { actionId, alertId, type RulesConfig, type StageConfig } from '@tillwatch/rules';
import type { ActionDecision, EpisodeEnd, EpisodeStart, MemberAlert, ProposedAction, StageRecord, TerminalSeen } from './types.js';

/** Rules whose alerts are episode starts (and whose episode_ended updates are episode ends). */
export const EPISODE_RULES: ReadonlySet<string> = new Set(['sync_lag', 'terminal_offline']);
/** Per-terminal NOTIFY_MERCHANT of these rules is suppressed for the terminals of an open incident. */
export const INCIDENT_NOTIFY_RULES: ReadonlySet<string> = new Set(['sync_lag', 'terminal_offline', 'upload_backlog', 'sequence_gap']);
/** Alerts of these rules of a member terminal belong to the open incident (IncidentMembership, role `during`), or of a terminal entering within `window` after them (role `before`); the detector publishes them as `alert` records. */
export const MEMBER_ALERT_RULES: ReadonlySet<string> = new Set([...INCIDENT_NOTIFY_RULES].filter((r) => !EPISODE_RULES.has(r)));
export const FREEZE_KINDS: ReadonlySet<string> = new Set(['FREEZE_TERMINAL', 'FREEZE_CARD']);
/** Granularity of "active terminal": a terminal is counted from its first record in an hour. */
export const ACTIVITY_BUCKET_MS = 3_600_000;
/** terminal_id / merchant_id / target_id of fleet-wide alerts and actions. */
export const FLEET = '*';
export const SYNC_INCIDENT = { id: 'sync_incident', version: 1 } as const;
export const FREEZE_CIRCUIT_OPEN = { id: 'freeze_circuit_open', version: 1 } as const;
/** Evidence of an incident: the first event of each of its first this-many terminals. */
export const EVIDENCE_TERMINALS = 10;
/**
 * Per terminal, at most this many unlinked upload_backlog/sequence_gap alerts are kept (the latest) to
 * be linked with role `before` when the terminal enters an incident; older ones also go after `window`.
 */
export const MAX_PRIOR_ALERTS = 16;

export interface StageOutput {
  alerts: Alert[];
  updates: AlertUpdate[];
  /** Actions to publish (issued and downgraded; suppressed ones are not). */
  actions: Action[];
  decisions: ActionDecision[];
  /** Per-terminal alerts linked to the incident (the incident's id on its member alerts). */
  memberships: IncidentMembership[];
}

type Buffered = Exclude<StageRecord, { type: 'watermark' }>;

interface Start {
  time: number;
  rule: string;
  terminal_id: string;
  merchant_id: string;
  alert_id: string;
  event_id: string | null;
}

/** An unlinked member-rule alert, kept for `window` in case its terminal enters an incident (role `before`). */
interface Prior {
  time: number;
  rule: string;
  alert_id: string;
  merchant_id: string;
}

interface Incident {
  id: string;
  opened_at: number;
  first_start: number;
  last_start: number;
  last_recovery: number | null;
  /** terminal -> merchant, in order of entry. */
  members: Map<string, string>;
  merchants: Set<string>;
  evidence: string[];
  evidence_terminals: number;
  entries: number;
  open_members: number;
  close_due: number | null;
  threshold: number;
  active: number;
}

interface Circuit {
  alert_id: string;
  window_start: number;
  window_end: number;
  held_fleet: number;
  held_merchant: number;
}

interface Governor {
  window: number;
  /** The freeze_window (ms) `window` counts in: a changed freeze_window starts a new window. */
  size: number;
  fleet: number;
  merchants: Map<string, number>;
  circuit: Circuit | null;
}

export interface StageStats {
  buffered: number;
  frontier: number;
  openEpisodes: number;
  incidentOpen: boolean;
  incidentTerminals: number;
  /** Records that arrived with a time the stage had already passed (processed at once). */
  late: number;
  activeTerminalsSeen: number;
}

/** The JSON form of the stage state (changelog key `core`); `seen` entries go under their own keys. */
export interface CoreSnapshot {
  v: 1;
  wm: (number | null)[];
  idle: boolean[];
  /** Partitions whose input ended (absent in snapshots written before end marks). */
  ended?: boolean[];
  frontier: number;
  buffer: Buffered[];
  recent: Start[];
  /** Without its members (keys member:<terminal> = merchant). */
  incident: Omit<Incident, 'members' | 'merchants'> | null;
  /** size: absent in snapshots written before it (taken as the freeze_window in force at restore). */
  gov: { window: number; size?: number; fleet: number; merchants: Array<[string, number]>; circuit: Circuit | null };
  late: number;
}

export interface StageCore {
  /** Adds records (any partitions, any interleaving) and applies what every partition's watermark has passed. */
  apply(records: readonly StageRecord[]): StageOutput;
  /** End of input (backtest): applies everything buffered; timers fire up to the highest watermark. */
  flush(): StageOutput;
  setConfig(config: RulesConfig): void;
  stats(): StageStats;
  /** Records with an earlier time have all been applied (the minimum watermark reached so far). */
  frontier(): number;
  /**
   * Changelog writes since the last call: `core` (watermarks, buffer, window, incident and governor
   * counters), `act:<terminal>` (its last activity, received time; an older stage wrote `seen:<terminal>`, its hour), `open:<terminal>` (its open episodes' alert
   * ids), `member:<terminal>` (its merchant, while in the open incident) and `prior:<terminal>` (its
   * unlinked upload_backlog/sequence_gap alerts of the last `window`); null = tombstone.
   */
  takeChanges(): Array<[string, unknown]>;
  restore(entries: Iterable<[string, unknown]>): void;
}

export interface StageCoreOptions {
  /** Number of detector input partitions (all must be heard from before anything is applied). */
  partitions: number;
  config: RulesConfig;
}

const RANK = { seen: 0, end: 1, start: 2, alert: 3, action: 4 } as const;
const idOf = (r: Buffered): string => (r.type === 'seen' ? r.terminal_id : r.type === 'action' ? r.action.action_id : r.alert_id);

function compare(a: Buffered, b: Buffered): number {
  if (a.time !== b.time) return a.time - b.time;
  if (a.type !== b.type) return RANK[a.type] - RANK[b.type];
  const x = idOf(a);
  const y = idOf(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const fmtMin = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`);
const fmtSpan = (ms: number): string => (ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : fmtMin(ms));
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export function createStageCore(o: StageCoreOptions): StageCore {
  let cfg: StageConfig = o.config.stage;
  let version = o.config.version;
  const n = o.partitions;
  let wm: (number | null)[] = new Array<number | null>(n).fill(null);
  let idle: boolean[] = new Array<boolean>(n).fill(false);
  let ended: boolean[] = new Array<boolean>(n).fill(false);
  let frontier = -1;
  let maxWm = -1;
  let buffer: Buffered[] = [];
  let sorted = true;
  let open = new Map<string, string[]>();
  let recent: Start[] = [];
  let incident: Incident | null = null;
  let gov: Governor = { window: -1, size: o.config.stage.governor.freeze_window, fleet: 0, merchants: new Map(), circuit: null };
  let late = 0;
  // Each terminal's last activity (received time), and the terminals by the hour of it.
  let seen = new Map<string, number>();
  let byHour = new Map<number, Set<string>>();
  // Terminals restored from an older stage's `seen:<terminal>` key (hour numbers), until rewritten.
  let legacySeen = new Set<string>();
  let seenChanged = new Set<string>();
  // Open episodes and incident members go to the changelog per terminal (keys open:<t>, member:<t>),
  // so a batch writes what changed, not the whole fleet-wide outage.
  let openChanged = new Set<string>();
  let memberChanges = new Map<string, string | null>();
  let coreChanged = false;
  // Unlinked upload_backlog/sequence_gap alerts per terminal (changelog keys prior:<t>), and the same
  // entries in time order over the fleet, to prune them by stream time (rebuilt on restore).
  let prior = new Map<string, Prior[]>();
  let priorQueue: Array<{ time: number; terminal_id: string; alert_id: string }> = [];
  let priorHead = 0;
  let priorChanged = new Set<string>();
  // The open incident's members still inside an episode, by last activity (a lazy max-heap: an entry is
  // current while its terminal is an open member and its activity is still `at`). Not written to the
  // changelog: restore() rebuilds it from member:, open: and act: (the maximum is all close_due reads).
  let holding: Array<{ terminal: string; at: number }> = [];

  let out: StageOutput = { alerts: [], updates: [], actions: [], decisions: [], memberships: [] };

  /** Terminals that sent anything within active_within before `t` (last activity >= t - active_within), exactly. */
  const active = (t: number): number => {
    const since = t - cfg.sync_incident.active_within;
    const from = Math.floor(since / ACTIVITY_BUCKET_MS);
    let sum = 0;
    for (const [h, terminals] of byHour) {
      if (h > from) sum += terminals.size;
      else if (h === from) for (const id of terminals) if (seen.get(id)! >= since) sum++;
    }
    return sum;
  };

  /** A terminal's activity at `at` (received time): kept when later than what the stage knows. */
  const onActivity = (terminal: string, at: number): void => {
    const prev = seen.get(terminal);
    if (prev !== undefined && prev >= at) return;
    if (prev !== undefined) {
      const h = Math.floor(prev / ACTIVITY_BUCKET_MS);
      const set = byHour.get(h)!;
      set.delete(terminal);
      if (set.size === 0) byHour.delete(h);
    }
    const h = Math.floor(at / ACTIVITY_BUCKET_MS);
    let set = byHour.get(h);
    if (set === undefined) byHour.set(h, (set = new Set()));
    set.add(terminal);
    seen.set(terminal, at);
    seenChanged.add(terminal);
  };
  const onSeen = (r: TerminalSeen): void => {
    const before = seen.get(r.terminal_id);
    onActivity(r.terminal_id, r.last ?? r.time);
    // A member still in its episode is active later: it holds the incident open longer.
    const inc = incident;
    if (inc !== null && seen.get(r.terminal_id) !== before && inc.members.has(r.terminal_id) && open.has(r.terminal_id)) {
      hold(r.terminal_id);
      scheduleClose(inc);
    }
  };

  const holdUp = (i: number): void => {
    const e = holding[i]!;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (holding[up]!.at >= e.at) break;
      holding[i] = holding[up]!;
      i = up;
    }
    holding[i] = e;
  };
  const holdPop = (): void => {
    const last = holding.pop()!;
    if (holding.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= holding.length) break;
      const c = l + 1 < holding.length && holding[l + 1]!.at > holding[l]!.at ? l + 1 : l;
      if (holding[c]!.at <= last.at) break;
      holding[i] = holding[c]!;
      i = c;
    }
    holding[i] = last;
  };
  /** A member inside an episode, at its current last activity (a terminal with none known holds nothing: it is not active). */
  const hold = (terminal: string): void => {
    const at = seen.get(terminal);
    if (at === undefined) return;
    holding.push({ terminal, at });
    holdUp(holding.length - 1);
    // Outdated entries (a member heard from again, or out of its episode) go when they reach the top;
    // a long incident with busy members would pile them up: rebuilt from the members once they dominate.
    if (incident !== null && holding.length > 2 * incident.open_members + 1024) rebuildHolding(incident);
  };
  /** The latest activity of the incident's members still inside an episode, or null. */
  const latestHolding = (inc: Incident): number | null => {
    while (holding.length > 0) {
      const top = holding[0]!;
      if (inc.members.has(top.terminal) && open.has(top.terminal) && seen.get(top.terminal) === top.at) return top.at;
      holdPop();
    }
    return null;
  };
  const rebuildHolding = (inc: Incident | null): void => {
    holding = [];
    if (inc === null) return;
    for (const t of inc.members.keys()) {
      const at = open.has(t) ? seen.get(t) : undefined;
      if (at === undefined) continue;
      holding.push({ terminal: t, at });
      holdUp(holding.length - 1);
    }
  };

  /**
   * Closes `quiet` after the last entry, the last recovery, and the moment each member still inside an
   * episode stops being active (its last activity + active_within: "active = sent anything in the last
   * 24 h"). A member that never comes back (a retired terminal) holds the incident open that long, not forever.
   */
  const scheduleClose = (inc: Incident): void => {
    const sc = cfg.sync_incident;
    let due = Math.max(inc.last_start, inc.last_recovery ?? inc.last_start);
    if (inc.open_members > 0) {
      const at = latestHolding(inc);
      if (at !== null && at + sc.active_within > due) due = at + sc.active_within;
    }
    inc.close_due = due + sc.quiet;
  };

  const link = (inc: Incident, a: { alert_id: string; rule: string; terminal_id: string; merchant_id: string; time: number }, role: IncidentMembership['role'], at: number): void => {
    out.memberships.push({
      membership_id: incidentMembershipId(inc.id, a.alert_id),
      incident_id: inc.id,
      alert_id: a.alert_id,
      rule: a.rule,
      terminal_id: a.terminal_id,
      merchant_id: a.merchant_id,
      role,
      alert_detected_at: a.time,
      joined_at: at,
    });
  };

  /**
   * Drops the unlinked alerts that can no longer be linked. A start enters at the latest `window` after
   * its time (an opening start waits for the others), and links alerts of the `window` before it: kept 2 x window.
   */
  const prunePrior = (now: number): void => {
    const from = now - 2 * cfg.sync_incident.window;
    while (priorHead < priorQueue.length && priorQueue[priorHead]!.time <= from) {
      const q = priorQueue[priorHead++]!;
      const list = prior.get(q.terminal_id);
      if (list === undefined) continue;
      const i = list.findIndex((p) => p.alert_id === q.alert_id);
      if (i < 0) continue; // already linked or capped out
      list.splice(i, 1);
      if (list.length === 0) prior.delete(q.terminal_id);
      priorChanged.add(q.terminal_id);
    }
    if (priorHead > 1024 && priorHead * 2 > priorQueue.length) {
      priorQueue = priorQueue.slice(priorHead);
      priorHead = 0;
    }
  };

  const keepPrior = (r: MemberAlert): void => {
    let list = prior.get(r.terminal_id);
    if (list === undefined) prior.set(r.terminal_id, (list = []));
    if (list.some((p) => p.alert_id === r.alert_id)) return;
    list.push({ time: r.time, rule: r.rule, alert_id: r.alert_id, merchant_id: r.merchant_id });
    if (list.length > MAX_PRIOR_ALERTS) list.shift();
    insertPrior({ time: r.time, terminal_id: r.terminal_id, alert_id: r.alert_id });
    priorChanged.add(r.terminal_id);
  };

  /**
   * The pruning order is (time, alert_id), the order restore() rebuilds: a late alert goes to its
   * place, not to the end, so pruning does not depend on whether the stage restarted in between.
   */
  const insertPrior = (q: { time: number; terminal_id: string; alert_id: string }): void => {
    const after = (x: { time: number; alert_id: string }): boolean => x.time > q.time || (x.time === q.time && x.alert_id > q.alert_id);
    let hi = priorQueue.length;
    if (hi === priorHead || !after(priorQueue[hi - 1]!)) {
      priorQueue.push(q);
      return;
    }
    let lo = priorHead;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (after(priorQueue[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    priorQueue.splice(lo, 0, q);
  };

  /** A terminal enters an incident: its unlinked alerts of the `window` before its entering start belong to it too (role `before`). */
  const linkPrior = (inc: Incident, s: Start, at: number): void => {
    const list = prior.get(s.terminal_id);
    if (list === undefined) return;
    const from = s.time - cfg.sync_incident.window;
    for (const p of list) if (p.time > from) link(inc, { ...p, terminal_id: s.terminal_id }, 'before', at);
    prior.delete(s.terminal_id);
    priorChanged.add(s.terminal_id);
  };

  const join = (inc: Incident, s: Start, role: 'opening' | 'joined', at: number): void => {
    link(inc, s, role, at);
    inc.entries++;
    if (s.time > inc.last_start) inc.last_start = s.time;
    if (!inc.members.has(s.terminal_id)) {
      linkPrior(inc, s, at);
      inc.members.set(s.terminal_id, s.merchant_id);
      memberChanges.set(s.terminal_id, s.merchant_id);
      inc.merchants.add(s.merchant_id);
      if (inc.evidence_terminals < EVIDENCE_TERMINALS) {
        inc.evidence_terminals++;
        if (s.event_id !== null) inc.evidence.push(s.event_id);
      }
      if (open.has(s.terminal_id)) {
        inc.open_members++;
        hold(s.terminal_id);
      }
    }
  };

  const openIncident = (t: number, starts: Start[], threshold: number, activeNow: number): void => {
    const inc: Incident = {
      // Deterministic from the starts that opened it: the same in live and backtest.
      id: alertId(SYNC_INCIDENT.id, SYNC_INCIDENT.version, starts.map((s) => s.alert_id)),
      opened_at: t,
      first_start: starts[0]!.time,
      last_start: t,
      last_recovery: null,
      members: new Map(),
      merchants: new Set(),
      evidence: [],
      evidence_terminals: 0,
      entries: 0,
      open_members: 0,
      close_due: null,
      threshold,
      active: activeNow,
    };
    for (const s of starts) join(inc, s, 'opening', t);
    scheduleClose(inc);
    incident = inc;
    const terminals = inc.members.size;
    const summary = `Fleet sync incident: ${plural(terminals, 'terminal')} at ${plural(inc.merchants.size, 'merchant')} started a late-sync episode or went offline within ${fmtMin(cfg.sync_incident.window)} (threshold ${threshold}, ${plural(activeNow, 'active terminal')}).`;
    out.alerts.push({
      alert_id: inc.id,
      rule: SYNC_INCIDENT.id,
      rule_version: SYNC_INCIDENT.version,
      severity: 'critical',
      terminal_id: FLEET,
      merchant_id: FLEET,
      card_token: null,
      event_ids: [...inc.evidence],
      window_start: inc.first_start,
      window_end: t,
      detected_at: t,
      summary,
      details: { terminals: terminals, merchants: inc.merchants.size, first_start: inc.first_start, last_start: t, threshold, active_terminals: activeNow, window_ms: cfg.sync_incident.window },
      rules_version: version,
    });
    // One notification of the acquirer for the whole incident, instead of one per merchant.
    const notify: Action = {
      action_id: actionId(inc.id, 'NOTIFY_ACQUIRER'),
      kind: 'NOTIFY_ACQUIRER',
      target_type: 'ACQUIRER',
      target_id: FLEET,
      merchant_id: FLEET,
      terminal_id: FLEET,
      alert_id: inc.id,
      rule: SYNC_INCIDENT.id,
      reason: summary,
      issued_at: t,
      expires_at: null,
    };
    out.actions.push(notify);
    out.decisions.push(decide(notify, notify, 'issued', 'incident_opened', inc.id, t));
  };

  const closeIncident = (inc: Incident): void => {
    const at = inc.close_due!;
    const durationMs = at - inc.first_start;
    const stillOpen = inc.open_members;
    const how =
      stillOpen === 0
        ? ' all recovered'
        : `: ${plural(stillOpen, 'terminal')} still offline or inside a sync episode but with nothing received for over ${fmtSpan(cfg.sync_incident.active_within)} (no longer active), the others recovered`;
    out.updates.push({
      update_id: alertUpdateId(inc.id, 'auto_resolved', 'episode_ended', []),
      alert_id: inc.id,
      rule: SYNC_INCIDENT.id,
      rule_version: SYNC_INCIDENT.version,
      terminal_id: FLEET,
      merchant_id: FLEET,
      status: 'auto_resolved',
      resolution: 'episode_ended',
      resolved_by_event_ids: [],
      resolved_at: at,
      summary: `Fleet sync incident ended: ${plural(inc.members.size, 'terminal')} at ${plural(inc.merchants.size, 'merchant')} (${plural(inc.entries, 'episode')})${how}, none entered for ${fmtMin(cfg.sync_incident.quiet)}.`,
      details: {
        terminals: inc.members.size,
        merchants: inc.merchants.size,
        episodes: inc.entries,
        first_start: inc.first_start,
        last_start: inc.last_start,
        last_recovery: inc.last_recovery ?? inc.last_start,
        duration_ms: durationMs,
        still_open: stillOpen,
      },
    });
    for (const t of inc.members.keys()) memberChanges.set(t, null);
    incident = null;
    holding = [];
    recent = [];
  };

  const onStart = (r: EpisodeStart): void => {
    const ids = open.get(r.terminal_id);
    const wasOpen = ids !== undefined;
    if (ids === undefined) open.set(r.terminal_id, [r.alert_id]);
    else if (!ids.includes(r.alert_id)) ids.push(r.alert_id);
    openChanged.add(r.terminal_id);
    const s: Start = { time: r.time, rule: r.rule, terminal_id: r.terminal_id, merchant_id: r.merchant_id, alert_id: r.alert_id, event_id: r.event_id };
    if (incident !== null) {
      if (!wasOpen && incident.members.has(r.terminal_id)) {
        incident.open_members++;
        hold(r.terminal_id);
      }
      // Disabled: an open incident takes no new entries (the start is no member, its notification is not suppressed).
      if (cfg.sync_incident.enabled) join(incident, s, 'joined', r.time);
      scheduleClose(incident);
      return;
    }
    if (!cfg.sync_incident.enabled) return;
    recent.push(s);
    const from = r.time - cfg.sync_incident.window;
    let drop = 0;
    while (drop < recent.length && recent[drop]!.time <= from) drop++;
    if (drop > 0) recent = recent.slice(drop);
    const distinct = new Set(recent.map((x) => x.terminal_id)).size;
    if (distinct < cfg.sync_incident.min_terminals) return;
    const activeNow = active(r.time);
    const threshold = Math.max(cfg.sync_incident.min_terminals, Math.ceil(cfg.sync_incident.min_share * activeNow));
    if (distinct < threshold) return;
    const starts = recent;
    recent = [];
    openIncident(r.time, starts, threshold, activeNow);
  };

  // The same membership test as the governor's suppression: an alert of a member terminal while the incident is open.
  // Any other alert is kept for `window`: its terminal may still enter (role `before`).
  const onMemberAlert = (r: MemberAlert): void => {
    if (incident !== null && incident.members.has(r.terminal_id)) link(incident, r, 'during', r.time);
    else keepPrior(r);
  };

  const onEnd = (r: EpisodeEnd): void => {
    const ids = open.get(r.terminal_id);
    if (ids === undefined) return;
    const i = ids.indexOf(r.alert_id);
    if (i < 0) return;
    ids.splice(i, 1);
    openChanged.add(r.terminal_id);
    if (ids.length > 0) return;
    open.delete(r.terminal_id);
    if (incident === null || !incident.members.has(r.terminal_id)) return;
    incident.open_members--;
    if (incident.last_recovery === null || r.time > incident.last_recovery) incident.last_recovery = r.time;
    scheduleClose(incident);
  };

  function decide(proposed: Action, final: Action | null, decision: ActionDecision['decision'], reason: string, incidentId: string | null, at: number): ActionDecision {
    return {
      decision_id: proposed.action_id,
      action_id: proposed.action_id,
      kind: proposed.kind,
      final_action_id: final?.action_id ?? null,
      final_kind: final?.kind ?? null,
      alert_id: proposed.alert_id,
      rule: proposed.rule,
      terminal_id: proposed.terminal_id,
      merchant_id: proposed.merchant_id,
      target_type: proposed.target_type,
      target_id: proposed.target_id,
      decision,
      reason,
      incident_id: incidentId,
      decided_at: at,
    };
  }

  const closeCircuit = (): void => {
    const c = gov.circuit!;
    gov.circuit = null;
    const held = c.held_fleet + c.held_merchant;
    out.updates.push({
      update_id: alertUpdateId(c.alert_id, 'auto_resolved', 'episode_ended', []),
      alert_id: c.alert_id,
      rule: FREEZE_CIRCUIT_OPEN.id,
      rule_version: FREEZE_CIRCUIT_OPEN.version,
      terminal_id: FLEET,
      merchant_id: FLEET,
      status: 'auto_resolved',
      resolution: 'episode_ended',
      resolved_by_event_ids: [],
      resolved_at: c.window_end,
      summary: `Freeze circuit window ended: ${plural(held, 'freeze')} held back and downgraded to review (${c.held_fleet} over the fleet cap, ${c.held_merchant} over a merchant's cap).`,
      details: { held_back: held, held_fleet: c.held_fleet, held_merchant: c.held_merchant, window_start: c.window_start, window_end: c.window_end },
    });
  };

  const onAction = (r: ProposedAction): void => {
    const a = r.action;
    const g = cfg.governor;
    if (a.kind === 'NOTIFY_MERCHANT' && g.suppress_during_incident && incident !== null && INCIDENT_NOTIFY_RULES.has(a.rule) && incident.members.has(a.terminal_id)) {
      out.decisions.push(decide(a, null, 'suppressed', 'fleet_incident', incident.id, r.time));
      return;
    }
    if (!FREEZE_KINDS.has(a.kind)) {
      out.actions.push(a);
      out.decisions.push(decide(a, a, 'issued', 'policy', null, r.time));
      return;
    }
    // The current window is the stage's: a late freeze (its time before the frontier, from a window
    // already left) counts against the current window; only a newer window resets the counters.
    // A changed freeze_window (a rules version, or a restart with another config) starts a new window in the new
    // size: a window number counted in the old size would compare wrongly (a longer window: never reset again).
    const w = Math.floor(Math.max(r.time, frontier) / g.freeze_window);
    if (w > gov.window || gov.size !== g.freeze_window) {
      gov.window = w;
      gov.size = g.freeze_window;
      gov.fleet = 0;
      gov.merchants = new Map();
    }
    const m = gov.merchants.get(a.merchant_id) ?? 0;
    const overFleet = gov.fleet >= g.max_freezes;
    const overMerchant = m >= g.max_freezes_per_merchant;
    if (!overFleet && !overMerchant) {
      gov.fleet++;
      gov.merchants.set(a.merchant_id, m + 1);
      out.actions.push(a);
      out.decisions.push(decide(a, a, 'issued', 'policy', null, r.time));
      return;
    }
    // Beyond the cap a freeze becomes a review of the same target: a person decides.
    const reason = overFleet ? 'freeze_cap_fleet' : 'freeze_cap_merchant';
    const review: Action = {
      ...a,
      action_id: actionId(a.alert_id, `REVIEW_REFUND:${a.kind}`),
      kind: 'REVIEW_REFUND',
      reason: `${a.reason} Downgraded from ${a.kind} to a review: ${overFleet ? `${g.max_freezes} freezes already issued fleet-wide` : `${g.max_freezes_per_merchant} freezes already issued at merchant ${a.merchant_id}`} within ${fmtMin(g.freeze_window)}.`,
    };
    out.actions.push(review);
    out.decisions.push(decide(a, review, 'downgraded', reason, null, r.time));
    if (gov.circuit === null) {
      const start = gov.window * g.freeze_window; // the current window (a late freeze counted against it names it too)
      const c: Circuit = { alert_id: alertId(FREEZE_CIRCUIT_OPEN.id, FREEZE_CIRCUIT_OPEN.version, [String(start)]), window_start: start, window_end: start + g.freeze_window, held_fleet: 0, held_merchant: 0 };
      gov.circuit = c;
      out.alerts.push({
        alert_id: c.alert_id,
        rule: FREEZE_CIRCUIT_OPEN.id,
        rule_version: FREEZE_CIRCUIT_OPEN.version,
        severity: 'critical',
        terminal_id: FLEET,
        merchant_id: FLEET,
        card_token: null,
        event_ids: [],
        window_start: start,
        window_end: start + g.freeze_window,
        detected_at: r.time,
        summary: `Freeze circuit open: ${a.kind} from ${a.rule} at terminal ${a.terminal_id} held back and downgraded to review (${overFleet ? `fleet cap of ${g.max_freezes}` : `cap of ${g.max_freezes_per_merchant} at merchant ${a.merchant_id}`} per ${fmtMin(g.freeze_window)} reached); the count held back comes with the window's end.`,
        details: { held_back: 1, max_freezes: g.max_freezes, max_freezes_per_merchant: g.max_freezes_per_merchant, freeze_window_ms: g.freeze_window },
        rules_version: version,
      });
    }
    if (overFleet) gov.circuit.held_fleet++;
    else gov.circuit.held_merchant++;
  };

  const applyRecord = (r: Buffered): void => {
    prunePrior(r.time);
    if (r.type === 'seen') onSeen(r);
    else if (r.type === 'start') onStart(r);
    else if (r.type === 'end') onEnd(r);
    else if (r.type === 'alert') onMemberAlert(r);
    else onAction(r);
  };

  /** The earliest due timer at or before `limit`, or null. */
  const nextTimer = (limit: number): { due: number; fire: () => void } | null => {
    let best: { due: number; fire: () => void } | null = null;
    const inc = incident;
    if (inc !== null && inc.close_due !== null && inc.close_due <= limit) best = { due: inc.close_due, fire: () => closeIncident(inc) };
    const c = gov.circuit;
    if (c !== null && c.window_end <= limit && (best === null || c.window_end < best.due)) best = { due: c.window_end, fire: closeCircuit };
    return best;
  };

  /** Applies buffered records with time < recordLimit (or <= when inclusive) and timers due <= timerLimit, in time order. */
  const advance = (recordLimit: number, inclusive: boolean, timerLimit: number): void => {
    if (!sorted) {
      buffer.sort(compare);
      sorted = true;
    }
    let i = 0;
    for (;;) {
      const r = buffer[i];
      const ready = r !== undefined && (inclusive ? r.time <= recordLimit : r.time < recordLimit);
      const t = nextTimer(ready ? Math.min(r.time, timerLimit) : timerLimit);
      // A timer fires before records at its due time (as the engine's timers fire before the arriving event).
      if (t !== null) {
        t.fire();
        coreChanged = true;
        continue;
      }
      if (!ready) break;
      applyRecord(r);
      coreChanged = true;
      i++;
    }
    if (i > 0) buffer = buffer.slice(i);
  };

  /** The minimum watermark, and whether every partition at it has ended (then records at it are ready too). */
  const minWatermark = (): { min: number; inclusive: boolean } => {
    let min = Infinity;
    let any = false;
    let inclusive = true;
    for (let p = 0; p < n; p++) {
      if (idle[p]) continue;
      const w = wm[p];
      if (w === null || w === undefined) return { min: -Infinity, inclusive: false };
      any = true;
      if (w < min) {
        min = w;
        inclusive = ended[p] === true;
      } else if (w === min && ended[p] !== true) inclusive = false;
    }
    return any ? { min, inclusive } : { min: -Infinity, inclusive: false };
  };

  const take = (): StageOutput => {
    const r = out;
    out = { alerts: [], updates: [], actions: [], decisions: [], memberships: [] };
    return r;
  };

  return {
    apply(records) {
      for (const r of records) {
        if (r.type === 'watermark') {
          if (r.partition < 0 || r.partition >= n) continue;
          const prev = wm[r.partition];
          if (r.idle === true) {
            // Idle marks only count while the partition has never had a real watermark.
            if (prev === null) idle[r.partition] = true;
            continue;
          }
          idle[r.partition] = false;
          if (r.end === true && !ended[r.partition]) {
            ended[r.partition] = true;
            coreChanged = true;
          }
          if (prev === null || prev === undefined || r.time > prev) {
            wm[r.partition] = r.time;
            if (r.time > maxWm) maxWm = r.time;
            coreChanged = true;
          }
          continue;
        }
        if (r.time < frontier) late++;
        if (buffer.length > 0 && compare(buffer[buffer.length - 1]!, r) > 0) sorted = false;
        buffer.push(r);
        coreChanged = true;
      }
      const { min, inclusive } = minWatermark();
      if (min > frontier || (inclusive && min === frontier && min > -Infinity)) {
        advance(min, inclusive, min);
        frontier = min;
      }
      return take();
    },
    flush() {
      advance(Infinity, true, maxWm);
      return take();
    },
    setConfig(config) {
      cfg = config.stage;
      version = config.version;
    },
    frontier: () => frontier,
    stats: () => ({
      buffered: buffer.length,
      frontier,
      openEpisodes: open.size,
      incidentOpen: incident !== null,
      incidentTerminals: incident?.members.size ?? 0,
      late,
      activeTerminalsSeen: seen.size,
    }),
    takeChanges() {
      const changes: Array<[string, unknown]> = [];
      for (const t of seenChanged) {
        changes.push([`act:${t}`, seen.get(t)]);
        // The hour-number key of an older stage goes once this terminal's exact value is written.
        if (legacySeen.delete(t)) changes.push([`seen:${t}`, null]);
      }
      seenChanged = new Set();
      for (const t of openChanged) changes.push([`open:${t}`, open.has(t) ? [...open.get(t)!] : null]);
      openChanged = new Set();
      for (const [t, m] of memberChanges) changes.push([`member:${t}`, m]);
      memberChanges = new Map();
      for (const t of priorChanged) changes.push([`prior:${t}`, prior.has(t) ? prior.get(t)!.map((p) => ({ ...p })) : null]);
      priorChanged = new Set();
      if (coreChanged) {
        coreChanged = false;
        const snap: CoreSnapshot = {
          v: 1,
          wm: [...wm],
          idle: [...idle],
          ended: [...ended],
          frontier,
          buffer: [...buffer],
          recent: [...recent],
          incident: incident === null ? null : (({ members: _m, merchants: _s, ...rest }) => ({ ...rest, evidence: [...rest.evidence] }))(incident),
          gov: { window: gov.window, size: gov.size, fleet: gov.fleet, merchants: [...gov.merchants], circuit: gov.circuit === null ? null : { ...gov.circuit } },
          late,
        };
        changes.push(['core', snap]);
      }
      return changes;
    },
    restore(entries) {
      seen = new Map();
      byHour = new Map();
      legacySeen = new Set();
      open = new Map();
      prior = new Map();
      const members = new Map<string, string>();
      for (const [k, v] of entries) {
        if (v === null || v === undefined) continue; // a tombstone
        if (k.startsWith('open:')) {
          open.set(k.slice(5), [...(v as string[])]);
          continue;
        }
        if (k.startsWith('member:')) {
          members.set(k.slice(7), v as string);
          continue;
        }
        if (k.startsWith('prior:')) {
          prior.set(k.slice(6), (v as Prior[]).map((p) => ({ ...p })));
          continue;
        }
        if (k.startsWith('act:')) {
          onActivity(k.slice(4), v as number);
          continue;
        }
        if (k.startsWith('seen:')) {
          // An older stage's key: the hour of the last activity, read as that hour's end (what it
          // counted then). Kept under its own key so that a rollback to that stage still reads it.
          legacySeen.add(k.slice(5));
          onActivity(k.slice(5), ((v as number) + 1) * ACTIVITY_BUCKET_MS - 1);
          continue;
        }
        if (k !== 'core') continue;
        const s = v as CoreSnapshot;
        wm = s.wm.length === n ? [...s.wm] : Array.from({ length: n }, (_, p) => s.wm[p] ?? null);
        idle = Array.from({ length: n }, (_, p) => s.idle[p] ?? false);
        ended = Array.from({ length: n }, (_, p) => s.ended?.[p] ?? false);
        frontier = s.frontier;
        maxWm = Math.max(-1, ...wm.map((w) => w ?? -1));
        buffer = [...s.buffer];
        sorted = false;
        // Snapshots written before memberships carry no rule (the membership's rule then stays empty).
        recent = s.recent.map((x) => ({ ...x, rule: x.rule ?? '' }));
        incident = s.incident === null ? null : { ...s.incident, members: new Map(), merchants: new Set(), evidence: [...s.incident.evidence] };
        gov = { window: s.gov.window, size: s.gov.size ?? cfg.governor.freeze_window, fleet: s.gov.fleet, merchants: new Map(s.gov.merchants), circuit: s.gov.circuit };
        late = s.late;
      }
      if (incident !== null) {
        incident.members = members;
        incident.merchants = new Set(members.values());
      }
      rebuildHolding(incident);
      // An incident an older version left without a close time (it never closed while a member stayed
      // open) gets one now. A stored one is kept: it was computed under the config in force then,
      // exactly as the live run keeps it after a config change.
      if (incident !== null && incident.close_due === null) scheduleClose(incident);
      // The pruning order over the fleet, from the kept alerts (time, then id: as they were applied).
      priorQueue = [];
      priorHead = 0;
      for (const [t, list] of prior) for (const p of list) priorQueue.push({ time: p.time, terminal_id: t, alert_id: p.alert_id });
      priorQueue.sort((a, b) => a.time - b.time || (a.alert_id < b.alert_id ? -1 : a.alert_id > b.alert_id ? 1 : 0));
      seenChanged = new Set();
      openChanged = new Set();
      memberChanges = new Map();
      priorChanged = new Set();
      coreChanged = false;
    },
  };
}
