// JSON schemas of every route: validation (400 with the field and what was expected), response
// serialisation (fast-json-stringify writes only declared fields, so nothing undeclared can leak),
// and the OpenAPI document at /openapi.json.
import { SeverityValues, TxnKindValues, TxnStatusValues, ActionKindValues, TargetTypeValues } from '@tillwatch/schemas';
import { AlertStatusValues } from './lifecycle.js';
import { Roles } from './auth.js';

const id = (description: string) => ({ type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:@-]+$', description }) as const;
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
      status: { type: 'string', enum: [...AlertStatusValues], description: "Current status: auto_resolved when an alert update resolved it (events settled it), else the latest triage status; 'open' until triaged" },
      status_by: nullable({ type: 'string', description: 'API key name that set the current status' }),
      status_at: nullable(epochMs('When the current status was set')),
    },
    required: ['alert_id', 'rule', 'rule_version', 'severity', 'terminal_id', 'merchant_id', 'card_token', 'event_ids', 'window_start', 'window_end', 'detected_at', 'summary', 'details', 'status', 'status_by', 'status_at'],
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
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ref('Error')]));
/** Error answers every authenticated route can give. */
const authErrors = [400, 401, 403, 429, 500, 503];

export const alertIdParams = {
  type: 'object',
  properties: { id: id('alert_id') },
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
    from: { type: 'string', format: 'date-time', description: 'detected_at >= from (RFC 3339, e.g. 2024-05-01T12:00:00Z)' },
    to: { type: 'string', format: 'date-time', description: 'detected_at < to (RFC 3339)' },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'Page size' },
    cursor: { type: 'string', minLength: 1, maxLength: 400, pattern: '^[A-Za-z0-9_-]+$', description: 'next_cursor of the previous page (opaque)' },
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
  properties: { id: id('terminal_id') },
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
    tags: ['alerts'],
    summary: 'One alert with its evidence transactions and the actions issued for it',
    security,
    params: alertIdParams,
    response: {
      200: {
        type: 'object',
        properties: {
          alert: ref('Alert'),
          evidence: { type: 'array', items: ref('Transaction') },
          missing_evidence: { type: 'array', items: { type: 'string' }, description: 'event_ids not (or no longer) stored in transactions' },
          actions: { type: 'array', items: ref('Action') },
        },
        required: ['alert', 'evidence', 'missing_evidence', 'actions'],
      },
      ...errors(...authErrors, 404),
    },
  },
  history: {
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
  triage: (summary: string) => ({
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
      ...errors(...authErrors, 404),
    },
  }),
  terminal: {
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
          open_alerts: { type: 'array', items: ref('Alert') },
        },
        required: ['terminal_id', 'merchant_id', 'last_seen', 'last_event_time', 'last_seq', 'transactions', 'sync_lag', 'recent_transactions', 'open_gaps', 'open_alerts'],
      },
      ...errors(...authErrors, 404),
    },
  },
  stream: {
    tags: ['alerts'],
    summary: 'Live alerts as server-sent events (event: alert, data: Alert JSON); optional filters',
    description: 'text/event-stream. Each alert is sent as `id: <alert_id>`, `event: alert`, `data: <Alert JSON>`; a comment line is sent every heartbeat interval. Alerts carry status "open" (they are new).',
    security,
    querystring: streamQuery,
    response: {
      200: { description: 'Server-sent events', content: { 'text/event-stream': { schema: { type: 'string', description: 'id: <alert_id>\\nevent: alert\\ndata: <Alert JSON>\\n\\n per alert; ": ping" comments' } } } },
      ...errors(400, 401, 429),
    },
  },
  whoami: {
    tags: ['auth'],
    summary: 'The caller: API key name and role',
    security,
    response: {
      200: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string', enum: [...Roles] } }, required: ['name', 'role'] },
      ...errors(401, 429),
    },
  },
  adminKeys: {
    tags: ['auth'],
    summary: 'Configured API key names and roles (never the keys); admin only',
    security,
    response: {
      200: {
        type: 'object',
        properties: { keys: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string', enum: [...Roles] } }, required: ['name', 'role'] } } },
        required: ['keys'],
      },
      ...errors(401, 403, 429),
    },
  },
  healthz: {
    tags: ['ops'],
    summary: 'Liveness: the process answers',
    security: [] as { [label: string]: string[] }[],
    response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } },
  },
  readyz: {
    tags: ['ops'],
    summary: 'Readiness: ClickHouse answers a ping',
    security: [] as { [label: string]: string[] }[],
    response: {
      200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] },
      503: { type: 'object', properties: { status: { type: 'string' }, reason: { type: 'string' } }, required: ['status', 'reason'] },
    },
  },
  metrics: {
    tags: ['ops'],
    summary: 'Prometheus metrics (text exposition format)',
    security: [] as { [label: string]: string[] }[],
    response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } },
  },
} as const;
