// The API's answers as the console uses them (JSDoc types, checked by tsc with checkJs). The API's
// own JSON schemas (services/api/src/schemas.ts, console-reads.ts) are the contract.

/**
 * @typedef {'low' | 'medium' | 'high' | 'critical'} Severity
 * @typedef {'open' | 'acknowledged' | 'resolved' | 'false_positive' | 'auto_resolved'} TriageStatus
 * @typedef {'viewer' | 'analyst' | 'admin'} Role
 *
 * @typedef {object} Alert
 * @property {string} alert_id
 * @property {string} rule
 * @property {number} rule_version
 * @property {Severity} severity
 * @property {string} terminal_id
 * @property {string} merchant_id
 * @property {string | null} card_token
 * @property {string[]} event_ids
 * @property {number} window_start
 * @property {number} window_end
 * @property {number} detected_at
 * @property {string} summary
 * @property {Record<string, number | null>} details
 * @property {number} rules_version version of the rules document in force when it fired (0: before versions)
 * @property {string | null} currency ISO 4217; null: no single amount
 * @property {number | null} amount_minor
 * @property {string | null} amount amount_minor as money, e.g. "42.50 EUR"
 * @property {TriageStatus} status
 * @property {string | null} status_by
 * @property {number | null} status_at
 *
 * @typedef {object} Transaction
 * @property {string} event_id
 * @property {string} txn_id
 * @property {'SALE' | 'REFUND' | 'REVERSAL' | 'VOID'} kind
 * @property {'APPROVED' | 'DECLINED' | 'TIMEOUT' | 'PENDING'} status
 * @property {string} terminal_id
 * @property {string} merchant_id
 * @property {string} card_token
 * @property {number} amount_minor
 * @property {string} currency
 * @property {number} terminal_seq
 * @property {string | null} original_txn_id
 * @property {number} event_time
 * @property {number} received_time
 *
 * @typedef {object} Action
 * @property {string} action_id
 * @property {string} kind
 * @property {string} target_type
 * @property {string} target_id
 * @property {string} reason
 * @property {number} issued_at
 * @property {number | null} expires_at
 *
 * @typedef {{ status: TriageStatus, actor: string, note: string, at: number, source?: 'update', update_id?: string, resolution?: string, resolved_by_event_ids?: string[] }} TriageEntry
 * @typedef {{ items: Alert[], next_cursor: string | null }} AlertPage
 * @typedef {{ alert: Alert, evidence: Transaction[], missing_evidence: string[], heartbeat_evidence: string[], actions: Action[] }} AlertDetail
 * @typedef {{ alert_id: string, status: TriageStatus, entries: TriageEntry[] }} History
 * @typedef {{ alert_id: string, transactions: Transaction[], truncated: boolean }} Related
 * @typedef {{ minute: number, events: number, p50_ms: number | null, p90_ms: number | null, p99_ms: number | null, max_ms: number | null }} LagPoint
 * @typedef {{ until: number | null, window_minutes: number, points: LagPoint[] }} LagSeries
 * @typedef {{ alert_id: string, missing_from: number | null, missing_to: number | null, detected_at: number, summary: string }} Gap
 *
 * @typedef {object} TerminalView
 * @property {string} terminal_id
 * @property {string} merchant_id
 * @property {number | null} last_seen
 * @property {number | null} last_event_time
 * @property {number | null} last_seq
 * @property {number} transactions
 * @property {{ last_ms: number | null, window_minutes: number, p50_ms: number | null, p90_ms: number | null, p99_ms: number | null, max_ms: number | null, events: number }} sync_lag
 * @property {Transaction[]} recent_transactions
 * @property {Gap[]} open_gaps
 * @property {Alert[]} open_alerts
 *
 * @typedef {{ terminal_id: string, merchant_id: string, sync_lag: LagSeries }} TerminalLag
 * @typedef {{ merchant_id: string, last_seen: number | null, transactions: number, terminals: { terminal_id: string, last_seen: number, last_event_time: number, last_seq: number, transactions: number }[], sync_lag: LagSeries }} MerchantView
 * @typedef {{ name: string, role: Role }} Principal
 */

export {};
