// JSON schemas of every route: validation (400 with the field and what was expected), response
// serialisation (fast-json-stringify writes only declared fields, so nothing undeclared can leak),
// and the OpenAPI document at /openapi.json.
import { SeverityValues, TxnKindValues, TxnStatusValues, ActionKindValues, TargetTypeValues } from '@tillwatch/schemas';
import { AlertStatusValues } from './lifecycle.js';
import { Roles } from './auth.js';
import { CURSOR_PATTERN } from './cursor.js';

const id = (description: string) => ({ type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$', description }) as const;

/**
 * Ids the OpenAPI document gives as examples. The fuzzing harness (fuzz/) seeds an alert and a
 * terminal with exactly these ids, so generated requests reach the real lookups, not only 404s.
 */
export const EXAMPLES = {
  alertId: 'al-7d2f0c9e4b1a6e3d5c8f',
  terminalId: 'T-0042',
  merchantId: 'M-007',
} as const;
const epochMs = (description: string) => ({ type: 'integer', description: `${description} (epoch milliseconds, UTC)` }) as const;
const nullable = <T extends object>(s: T) => ({ ...s, nullable: true }) as const;
const list = <T extends object>(items: T, description: string) => ({ type: 'array', items, minItems: 1, maxItems: 50, description }) as const;

/** Shared component schemas, registered with app.addSchema and referenced as { $ref: 'Name#' }. */
export const componentSchemas = [
  {
    $id: 'Error',
    type: 'object',
    description: 'Every error answer: HTTP status, a stable code, and a message naming the field and what was expected.',
    properties: {
      statusCode: { type: 'integer' },
      code: { type: 'string' },
      error: { type: 'string' },
      message: { type: 'string' },
    },
    required: ['statusCode', 'error', 'message'],
  },
  {
    $id: 'Alert',
    type: 'object',
    description: 'A rule hit (contract pos.alerts.v1) with its current triage status.',
    properties: {
      alert_id: { type: 'string', description: 'Deterministic from rule, version and evidence' },
      rule: { type: 'string' },
      rule_version: { type: 'integer' },
      severity: { type: 'string', enum: [...SeverityValues] },
      terminal_id: { type: 'string' },
      merchant_id: { type: 'string' },
      card_token: nullable({ type: 'string', description: 'Tokenised card; never a PAN' }),
      event_ids: { type: 'array', items: { type: 'string' }, description: 'Evidence (transaction event_ids)' },
      window_start: epochMs('Earliest evidence'),
      window_end: epochMs('Latest evidence'),
      detected_at: epochMs('Stream (received) time at which the rule fired'),
      summary: { type: 'string' },
      details: { type: 'object', additionalProperties: nullable({ type: 'number' }), description: 'The numbers behind the alert (median, ratio, lag_ms, missing_from, ...)' },
      rules_version: { type: 'integer', description: 'Version of the rules document in force when the alert fired (GET /rules/history); 0: fired before rules had versions' },
      currency: nullable({ type: 'string', description: 'ISO 4217 code of the money the alert is about; null: no single amount' }),
      amount_minor: nullable({ type: 'integer', description: 'The amount the alert is about (e.g. the duplicated charge) in minor units of currency; null with currency' }),
      amount: nullable({ type: 'string', description: 'amount_minor as money: major units with the ISO 4217 exponent of currency, e.g. "42.50 EUR"; null with currency' }),
      status: { type: 'string', enum: [...AlertStatusValues], description: "Current status: auto_resolved when an alert update resolved it (events settled it), else the latest triage status; 'open' until triaged" },
      status_by: nullable({ type: 'string', description: 'API key name that set the current status' }),
      status_at: nullable(epochMs('When the current status was set')),
    },
    required: ['alert_id', 'rule', 'rule_version', 'severity', 'terminal_id', 'merchant_id', 'card_token', 'event_ids', 'window_start', 'window_end', 'detected_at', 'summary', 'details', 'rules_version', 'currency', 'amount_minor', 'amount', 'status', 'status_by', 'status_at'],
  },
  {
    $id: 'Transaction',
    type: 'object',
    description: 'A card transaction as the terminal recorded it (contract pos.transactions.v1).',
    properties: {
      event_id: { type: 'string' },
      txn_id: { type: 'string' },
      kind: { type: 'string', enum: [...TxnKindValues] },
      status: { type: 'string', enum: [...TxnStatusValues] },
      terminal_id: { type: 'string' },
      merchant_id: { type: 'string' },
      card_token: { type: 'string', description: 'Tokenised card; never a PAN' },
      amount_minor: { type: 'integer' },
      amount: { type: 'string', description: 'amount_minor as money: major units with the ISO 4217 exponent of currency, e.g. "25.00 EUR", "1500 JPY"; an unknown code gets 2 decimals and says so' },
      currency: { type: 'string' },
      terminal_seq: { type: 'integer' },
      original_txn_id: nullable({ type: 'string' }),
      event_time: epochMs('Made at the till'),
      received_time: epochMs('Reached the platform'),
    },
    required: ['event_id', 'txn_id', 'kind', 'status', 'terminal_id', 'merchant_id', 'card_token', 'amount_minor', 'currency', 'terminal_seq', 'original_txn_id', 'event_time', 'received_time'],
  },
  {
    $id: 'Action',
    type: 'object',
    description: 'What downstream services were told to do about the alert (contract pos.actions.*.v1).',
    properties: {
      action_id: { type: 'string' },
      kind: { type: 'string', enum: [...ActionKindValues] },
      target_type: { type: 'string', enum: [...TargetTypeValues] },
      target_id: { type: 'string' },
      merchant_id: { type: 'string' },
      terminal_id: { type: 'string' },
      alert_id: { type: 'string' },
      rule: { type: 'string' },
      reason: { type: 'string' },
      issued_at: epochMs('Issued'),
      expires_at: nullable(epochMs('Expires')),
    },
    required: ['action_id', 'kind', 'target_type', 'target_id', 'merchant_id', 'terminal_id', 'alert_id', 'rule', 'reason', 'issued_at', 'expires_at'],
  },
  {
    $id: 'TriageEntry',
    type: 'object',
    description: 'One row of the triage audit trail: who set which status when, and why.',
    properties: {
      status: { type: 'string', enum: [...AlertStatusValues] },
      actor: { type: 'string', description: "API key name; 'detector' for an alert update" },
      note: { type: 'string', description: "The analyst's note, or the update's summary" },
      at: epochMs("Recorded (an update: resolved_at, the stream clock at which it happened)"),
      source: { type: 'string', enum: ['update'], description: "History entries: 'update' marks an alert update (pos.alerts.updates.v1); absent on triage entries" },
      update_id: { type: 'string', description: 'Updates only' },
      resolution: { type: 'string', description: 'Updates only: reversed, voided, refunded, gap_filled, episode_ended' },
      resolved_by_event_ids: { type: 'array', items: { type: 'string' }, description: 'Updates only: the events that resolved it' },
    },
    required: ['status', 'actor', 'note', 'at'],
  },
] as const;

const ref = (name: string) => ({ $ref: `${name}#` }) as const;
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ref('Error')]));
/**
 * Error answers every authenticated route can give: 400 (validation, unknown parameter), 401, 403
 * (documented on every route although a viewer route cannot refuse any role), 429 (rate limit),
 * 500, 503 (ClickHouse unavailable, or the server closing). Ids add 404; bodies add 413 and 415.
 */
export const authErrors = [400, 401, 403, 429, 500, 503];
/** What a public ops route can answer besides 200: unknown query parameter, a bug, closing. */
const opsErrors = [400, 500, 503];
/** No query parameters: an unknown one is a 400, as everywhere else. */
export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

export const alertIdParams = {
  type: 'object',
  properties: { id: { ...id('alert_id'), examples: [EXAMPLES.alertId] } },
  required: ['id'],
  additionalProperties: false,
} as const;

export const listAlertsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    rule: list({ type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-z0-9_]+$' }, 'Rule id(s), e.g. duplicate_charge; repeat the parameter for several'),
    severity: list({ type: 'string', enum: [...SeverityValues] }, 'Severity(ies); repeat for several'),
    status: list({ type: 'string', enum: [...AlertStatusValues] }, 'Current status(es); repeat for several. open excludes auto-resolved alerts'),
    terminal: list(id('terminal_id'), 'Terminal id(s)'),
    merchant: list(id('merchant_id'), 'Merchant id(s)'),
    from: { type: 'string', format: 'date-time', description: 'detected_at >= from (RFC 3339, e.g. 2024-05-01T12:00:00Z; a leap second, 23:59:60, counts as 23:59:59.999)' },
    to: { type: 'string', format: 'date-time', description: 'detected_at < to (RFC 3339; a leap second counts as 23:59:59.999). A range with to <= from is empty (200, no items)' },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'Page size' },
    cursor: { type: 'string', minLength: 3, maxLength: 360, pattern: CURSOR_PATTERN, description: 'next_cursor of the previous page (treat as opaque)' },
  },
} as const;

export const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    rule: listAlertsQuery.properties.rule,
    severity: listAlertsQuery.properties.severity,
    terminal: listAlertsQuery.properties.terminal,
    merchant: listAlertsQuery.properties.merchant,
  },
} as const;

export const triageBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    note: { type: 'string', minLength: 1, maxLength: 2000, description: 'Why (kept in the audit trail). Refer to cards by token: a card number is refused.' },
  },
  required: ['note'],
} as const;

export const terminalParams = {
  type: 'object',
  properties: { id: { ...id('terminal_id'), examples: [EXAMPLES.terminalId] } },
  required: ['id'],
  additionalProperties: false,
} as const;

export const terminalQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { recent: { type: 'integer', minimum: 1, maximum: 500, default: 20, description: 'How many recent transactions' } },
} as const;

const security: { [label: string]: string[] }[] = [{ apiKey: [] }, { bearer: [] }];

export const routeSchemas = {
  listAlerts: {
    operationId: 'listAlerts',
    tags: ['alerts'],
    summary: 'List alerts, newest first (detected_at, alert_id descending), with filters and cursor pagination',
    security,
    querystring: listAlertsQuery,
    response: {
      200: {
        type: 'object',
        properties: {
          items: { type: 'array', items: ref('Alert') },
          next_cursor: nullable({ type: 'string', description: 'Pass as ?cursor= for the next page; null on the last page' }),
        },
        required: ['items', 'next_cursor'],
      },
      ...errors(...authErrors),
    },
  },
  getAlert: {
    operationId: 'getAlert',
    tags: ['alerts'],
    summary: 'One alert with its evidence transactions and the actions issued for it',
    security,
    params: alertIdParams,
    response: {
      200: {
        type: 'object',
        properties: {
          alert: ref('Alert'),
          evidence: { type: 'array', items: ref('Transaction'), description: "The stored transactions among the alert's event_ids, by event_time: at the alert's merchant, or at any merchant for a fleet alert (merchant_id '*', e.g. sync_incident)" },
          missing_evidence: { type: 'array', items: { type: 'string' }, description: 'Transaction event_ids not (or no longer) stored in transactions' },
          heartbeat_evidence: {
            type: 'array',
            items: { type: 'string' },
            description: 'Evidence ids of heartbeats (hb- and 32 hex digits, deterministic from the heartbeat): heartbeats are evidence of terminal_offline, upload_backlog and pending-upload gaps, and are not stored as transactions',
          },
          actions: { type: 'array', items: ref('Action'), description: 'Actions issued for it (by the action governor: as proposed, or downgraded to a review)' },
          action_decisions: {
            type: 'array',
            description: "The governor's decision about each action proposed for it: issued, suppressed (while a fleet incident is open) or downgraded (beyond the freeze cap), with the reason",
            items: {
              type: 'object',
              properties: {
                action_id: { type: 'string', description: 'The proposed action' },
                kind: { type: 'string', description: 'Proposed kind' },
                decision: { type: 'string', enum: ['issued', 'suppressed', 'downgraded'] },
                reason: { type: 'string', description: 'policy, incident_opened, fleet_incident, freeze_cap_fleet, freeze_cap_merchant' },
                final_action_id: { type: 'string', nullable: true, description: 'The action issued for it; null when suppressed' },
                final_kind: { type: 'string', nullable: true },
                incident_id: { type: 'string', nullable: true, description: 'The sync_incident alert that suppressed it' },
                decided_at: { type: 'integer', description: 'Stream (received) time of the decision, epoch ms' },
              },
              required: ['action_id', 'kind', 'decision', 'reason', 'final_action_id', 'final_kind', 'incident_id', 'decided_at'],
            },
          },
          incident_id: {
            type: 'string',
            nullable: true,
            description: 'The fleet sync incident (sync_incident alert) this per-terminal alert belongs to (incident_members; linked by the second stage, so null until it decides and for alerts of no incident)',
          },
          incident_members: {
            type: 'array',
            description: 'For a sync_incident alert: its member per-terminal alerts (sync_lag, terminal_offline, upload_backlog, sequence_gap), in order of linking, the first 500 (incident_members_total says how many in all); empty otherwise',
            items: {
              type: 'object',
              properties: {
                alert_id: { type: 'string' },
                rule: { type: 'string' },
                terminal_id: { type: 'string' },
                merchant_id: { type: 'string' },
                role: { type: 'string', enum: ['opening', 'joined', 'during', 'before'], description: 'opening: one of the starts that opened it; joined: a start while open; during: another alert of a member terminal while open; before: an upload_backlog or sequence_gap alert of the terminal within the window before it entered' },
                alert_detected_at: { type: 'integer', description: 'detected_at of the member alert, epoch ms' },
                joined_at: { type: 'integer', description: 'Stream (received) time at which it was linked, epoch ms' },
              },
              required: ['alert_id', 'rule', 'terminal_id', 'merchant_id', 'role', 'alert_detected_at', 'joined_at'],
            },
          },
          incident_members_total: { type: 'integer', description: 'How many member alerts the incident has in all (incident_members lists the first 500); 0 for other alerts' },
        },
        required: ['alert', 'evidence', 'missing_evidence', 'heartbeat_evidence', 'actions', 'action_decisions', 'incident_id', 'incident_members', 'incident_members_total'],
      },
      ...errors(...authErrors, 404),
    },
  },
  history: {
    operationId: 'getAlertHistory',
    tags: ['triage'],
    summary: 'History of an alert (oldest first): triage entries and alert updates merged in time order, and its current status',
    security,
    params: alertIdParams,
    response: {
      200: {
        type: 'object',
        properties: {
          alert_id: { type: 'string' },
          status: { type: 'string', enum: [...AlertStatusValues] },
          entries: { type: 'array', items: ref('TriageEntry') },
        },
        required: ['alert_id', 'status', 'entries'],
      },
      ...errors(...authErrors, 404),
    },
  },
  triage: (operationId: string, summary: string) => ({
    operationId,
    tags: ['triage'],
    summary,
    security,
    params: alertIdParams,
    body: triageBody,
    response: {
      200: {
        type: 'object',
        properties: {
          alert_id: { type: 'string' },
          previous_status: { type: 'string', enum: [...AlertStatusValues] },
          entry: ref('TriageEntry'),
        },
        required: ['alert_id', 'previous_status', 'entry'],
      },
      ...errors(...authErrors, 404, 413, 415),
    },
  }),
  terminal: {
    operationId: 'getTerminal',
    tags: ['terminals'],
    summary: 'A terminal: recent transactions, last seen, sync lag, open sequence gaps and open alerts',
    security,
    params: terminalParams,
    querystring: terminalQuery,
    response: {
      200: {
        type: 'object',
        properties: {
          terminal_id: { type: 'string' },
          merchant_id: { type: 'string' },
          last_seen: nullable(epochMs('Latest received_time')),
          last_event_time: nullable(epochMs('event_time of the latest received transaction')),
          last_seq: nullable({ type: 'integer' }),
          transactions: { type: 'integer', description: 'Transactions stored for the terminal' },
          sync_lag: {
            type: 'object',
            properties: {
              last_ms: nullable({ type: 'integer', description: 'received_time - event_time of the latest received transaction' }),
              window_minutes: { type: 'integer' },
              p50_ms: nullable({ type: 'integer' }),
              p90_ms: nullable({ type: 'integer' }),
              p99_ms: nullable({ type: 'integer' }),
              max_ms: nullable({ type: 'integer' }),
              events: { type: 'integer' },
            },
            required: ['last_ms', 'window_minutes', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms', 'events'],
          },
          recent_transactions: { type: 'array', items: ref('Transaction') },
          open_gaps: {
            type: 'array',
            description: "The terminal's sequence_gap alerts whose numbers are still missing, newest first (up to 100): status open or acknowledged (an acknowledged gap is not filled, as on the Grafana panels); not resolved, false_positive or auto_resolved (filled)",
            items: {
              type: 'object',
              properties: {
                alert_id: { type: 'string' },
                missing_from: nullable({ type: 'number' }),
                missing_to: nullable({ type: 'number' }),
                detected_at: { type: 'integer' },
                summary: { type: 'string' },
              },
              required: ['alert_id', 'missing_from', 'missing_to', 'detected_at', 'summary'],
            },
          },
          open_alerts: { type: 'array', items: ref('Alert'), description: "The terminal's alerts with status open (not triaged yet), newest first (up to 50)" },
        },
        required: ['terminal_id', 'merchant_id', 'last_seen', 'last_event_time', 'last_seq', 'transactions', 'sync_lag', 'recent_transactions', 'open_gaps', 'open_alerts'],
      },
      ...errors(...authErrors, 404),
    },
  },
  stream: {
    operationId: 'streamAlerts',
    tags: ['alerts'],
    summary: 'Live alerts as server-sent events (event: alert, data: Alert JSON); optional filters',
    description: 'text/event-stream. Each alert is sent as `id: <alert_id>`, `event: alert`, `data: <Alert JSON>`; a comment line is sent every heartbeat interval. Alerts carry status "open" (they are new).',
    security,
    querystring: streamQuery,
    response: {
      200: { description: 'Server-sent events', content: { 'text/event-stream': { schema: { type: 'string', description: 'id: <alert_id>\\nevent: alert\\ndata: <Alert JSON>\\n\\n per alert; ": ping" comments' } } } },
      ...errors(...authErrors),
    },
  },
  whoami: {
    operationId: 'whoami',
    tags: ['auth'],
    summary: 'The caller: API key name and role',
    security,
    querystring: noQuery,
    response: {
      200: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string', enum: [...Roles] } }, required: ['name', 'role'] },
      ...errors(...authErrors),
    },
  },
  adminKeys: {
    operationId: 'listApiKeys',
    tags: ['auth'],
    summary: 'Configured API key names and roles (never the keys); admin only',
    security,
    querystring: noQuery,
    response: {
      200: {
        type: 'object',
        properties: { keys: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string', enum: [...Roles] } }, required: ['name', 'role'] } } },
        required: ['keys'],
      },
      ...errors(...authErrors),
    },
  },
  healthz: {
    operationId: 'getHealth',
    tags: ['ops'],
    summary: 'Liveness: the process answers',
    security: [] as { [label: string]: string[] }[],
    querystring: noQuery,
    response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] }, ...errors(...opsErrors) },
  },
  readyz: {
    operationId: 'getReadiness',
    tags: ['ops'],
    summary: 'Readiness: ClickHouse answers a ping',
    security: [] as { [label: string]: string[] }[],
    querystring: noQuery,
    response: {
      200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] },
      ...errors(400, 500),
      503: {
        description: 'Not ready (ClickHouse does not answer), or the server is closing',
        type: 'object',
        // {status, reason} from the probe; fastify's own closing answer is {statusCode, error, message}.
        properties: { status: { type: 'string' }, reason: { type: 'string' }, statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

const STATUS_DESCRIPTIONS: Record<string, string> = {
  '200': 'OK',
  '400': 'Invalid input: the message names the field and what was expected (unknown parameters are errors)',
  '401': 'Missing, malformed or unknown API key (www-authenticate: Bearer)',
  '403': "The key's role may not call this operation",
  '404': 'Not found',
  '413': 'Body larger than the route takes (1 MiB; PUT /rules 4 MiB)',
  '415': 'Body is not application/json',
  '429': 'Rate limit of this API key exceeded (retry-after header)',
  '500': 'Internal error (details only in the log)',
  '503': 'ClickHouse unavailable (retry-after header), or the server is closing',
};

const at = (pointer: string) => `$response.body#${pointer}`;
/** Links to the operations on one alert, from a response that names it at `idPointer`. */
const alertLinks = (idPointer: string, ops: string[]) =>
  Object.fromEntries(ops.map((op) => [op, { operationId: op, parameters: { id: at(idPointer) }, description: `${op} of this alert` }]));
const TRIAGE_OPS = ['acknowledgeAlert', 'resolveAlert', 'markAlertFalsePositive'];

interface OpenApiDoc {
  paths?: Record<string, Record<string, { operationId?: string; responses?: Record<string, { description?: string; links?: unknown }> }>>;
}

/**
 * Post-processing of the generated OpenAPI document: a description per error status instead of
 * "Default Response", and OpenAPI links (3.0 §4.7.20) so that clients and stateful testers
 * (Schemathesis) can follow list -> alert -> acknowledge -> history -> resolve with real ids.
 */
export function addLinksAndDescriptions<T extends OpenApiDoc>(doc: T): T {
  const links: Record<string, Record<string, unknown>> = {
    listAlerts: {
      ...alertLinks('/items/0/alert_id', ['getAlert', 'getAlertHistory', ...TRIAGE_OPS]),
      getTerminal: { operationId: 'getTerminal', parameters: { id: at('/items/0/terminal_id') }, description: 'The terminal of the first alert' },
    },
    getAlert: {
      ...alertLinks('/alert/alert_id', ['getAlertHistory', ...TRIAGE_OPS]),
      getTerminal: { operationId: 'getTerminal', parameters: { id: at('/alert/terminal_id') }, description: "The alert's terminal" },
    },
    getAlertHistory: alertLinks('/alert_id', TRIAGE_OPS),
    ...Object.fromEntries(TRIAGE_OPS.map((op) => [op, alertLinks('/alert_id', ['getAlertHistory', 'getAlert', ...TRIAGE_OPS.filter((o) => o !== op)])])),
  };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        if (response.description === undefined || response.description === 'Default Response') response.description = STATUS_DESCRIPTIONS[status] ?? 'Response';
      }
      const l = op.operationId === undefined ? undefined : links[op.operationId];
      const ok = op.responses?.['200'];
      if (l && ok) ok.links = l;
    }
  }
  return doc;
}
