// The second stage's input and output records. Inputs are what the detector partitions publish on the
// internal topic (tillwatch.stage2.input.v1) in the same Kafka transaction as their alerts, and what
// the backtest derives from the same engine output; outputs are alerts, alert updates, the actions that
// are finally issued, and one decision per proposed action.
import type { Action, ActionKind, IncidentMembership, TargetType } from '@tillwatch/schemas';

export type { IncidentMembership };

/** An episode of a per-terminal sync rule began: its alert (sync_lag, terminal_offline) was raised. */
export interface EpisodeStart {
  type: 'start';
  /** Detector input partition that produced it. */
  partition: number;
  /** The alert's detected_at (received time), the stage's ordering time. */
  time: number;
  rule: string;
  alert_id: string;
  terminal_id: string;
  merchant_id: string;
  /**
   * The alert's first evidence id (`event_ids[0]`; null only for an alert without evidence). For
   * sync_lag a transaction's event_id; for terminal_offline the last sign of life before the silence:
   * a transaction's event_id, or a heartbeat's synthetic id (`heartbeatEventId`, `hb-…`), which is not
   * a row of `transactions`. It becomes the incident's evidence (its event_ids) as it is.
   */
  event_id: string | null;
}

/** The episode ended: its alert's episode_ended update (resolved_at is the time). */
export interface EpisodeEnd {
  type: 'end';
  partition: number;
  time: number;
  rule: string;
  alert_id: string;
  terminal_id: string;
  merchant_id: string;
}

/**
 * An alert of a per-terminal sync rule that is not an episode start (upload_backlog, sequence_gap):
 * it belongs to the open incident when its terminal is a member (an incident membership, role
 * `during`). time = detected_at.
 */
export interface MemberAlert {
  type: 'alert';
  partition: number;
  time: number;
  rule: string;
  alert_id: string;
  terminal_id: string;
  merchant_id: string;
}

/** An action a rule proposed (the action contract); the governor disposes. time = issued_at. */
export interface ProposedAction {
  type: 'action';
  partition: number;
  time: number;
  action: Action;
}

/**
 * A terminal sent something (transaction or heartbeat) in activity bucket `bucket` (received time /
 * ACTIVITY_BUCKET_MS), published at its first record of the bucket: what the stage counts active
 * terminals with. Idempotent: a repeat (after a detector restart) changes nothing.
 */
/**
 * Terminal activity, for the incident's "active terminals" (sent anything within active_within). Two
 * kinds: a terminal's first record in an hour of received time (`time` = that record's received time),
 * published at once; and the close of an hour the terminal was active in (`last` = its last record's
 * received time in `bucket`), published with the partition's next watermark once the terminal has
 * moved on to a later hour or the hour has ended. Together they give the stage each terminal's exact
 * last activity at any stream time.
 */
export interface TerminalSeen {
  type: 'seen';
  partition: number;
  time: number;
  terminal_id: string;
  merchant_id: string;
  /** The hour of received time (received_time / 3,600,000, floored). */
  bucket: number;
  /** A close: the terminal's last received time in `bucket`. Absent: `time` is the activity. */
  last?: number;
}

/**
 * The detector partition's stream time: it will publish nothing with an earlier time. `idle`: the
 * partition has received nothing yet, so it holds nothing back (it published no record either).
 */
export interface Watermark {
  type: 'watermark';
  partition: number;
  time: number;
  idle?: boolean;
  /**
   * End of input (`tillwatch replay`, after the detector processed the whole file): the partition
   * publishes nothing more, not even at `time`, so records at `time` are applied too (as the backtest's
   * flush applies them); timers still fire only up to `time`.
   */
  end?: boolean;
}

export type StageRecord = EpisodeStart | EpisodeEnd | MemberAlert | ProposedAction | TerminalSeen | Watermark;

export type DecisionKind = 'issued' | 'suppressed' | 'downgraded';

/** The governor's decision about one proposed action (ClickHouse action_decisions, topic pos.actions.decisions.v1: `Topics.actionDecisions` in schemas/src/topics.ts). */
export interface ActionDecision {
  /** = the proposed action's action_id: one decision per proposed action. */
  decision_id: string;
  action_id: string;
  kind: ActionKind;
  /** What was issued: the same action, its review downgrade, or nothing (suppressed). */
  final_action_id: string | null;
  final_kind: ActionKind | null;
  alert_id: string;
  rule: string;
  terminal_id: string;
  merchant_id: string;
  target_type: TargetType;
  target_id: string;
  decision: DecisionKind;
  /** Why: policy, fleet_incident, freeze_cap_fleet, freeze_cap_merchant, incident_opened. */
  reason: string;
  /** The fleet incident that suppressed it (or that it was issued for). */
  incident_id: string | null;
  /** Stage time (received time) of the decision. */
  decided_at: number;
}

/** A line of `tillwatch backtest --actions FILE`: the action contract plus the decision. */
export type GovernedAction = Action & { decision: DecisionKind; decision_reason: string; incident_id: string | null };
