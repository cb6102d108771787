// Read-only routes the console needs beyond the core API: the transactions linked to an alert's
// evidence (a refund's sale and the sale's other refunds: the sale -> refund chain), a terminal's
// sync lag minute by minute (the sparkline), and a merchant's terminals and sync lag. Small keyed
// reads on the merchant_id prefix of `transactions` and `terminal_sync_lag_minute` (005).
import { ContractColumns, fromTransactionRow, type ClickHouse, type TransactionRow } from '@tillwatch/clickhouse';
import type { Transaction } from '@tillwatch/schemas';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { maskPan } from './mask.js';
import type { ApiMetrics } from './metrics.js';
import { createSelect } from './query.js';
import { alertIdParams, authErrors, errors, noQuery, terminalParams } from './schemas.js';
import { FLEET_ID, type AlertStore } from './store.js';

/** One minute of received transactions of a terminal (or a merchant): lag = received - event time. */
export interface LagPoint {
  /** Start of the minute of received_time (epoch ms). */
  minute: number;
  events: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
}

export interface LagSeries {
  /** Latest received_time of the terminal / merchant: the series ends at its minute (terminal time, so a replay shows what it showed then). */
  until: number | null;
  window_minutes: number;
  points: LagPoint[];
}

export interface MerchantView {
  merchant_id: string;
  last_seen: number | null;
  transactions: number;
  terminals: { terminal_id: string; last_seen: number; last_event_time: number; last_seq: number; transactions: number }[];
  sync_lag: LagSeries;
}

/** Most transactions the chain of one alert returns (a sale with hundreds of refunds is itself the story). */
export const RELATED_LIMIT = 200;
const MAX_TERMINALS = 500;

const epochMs = (description: string) => ({ type: 'integer', description: `${description} (epoch milliseconds, UTC)` }) as const;
const nullableInt = (description: string) => ({ type: 'integer', nullable: true, description }) as const;
const security: { [label: string]: string[] }[] = [{ apiKey: [] }, { bearer: [] }];

const minutesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { minutes: { type: 'integer', minimum: 1, maximum: 1440, default: 60, description: 'Length of the series in minutes, ending at the latest arrival' } },
} as const;

const lagSeriesSchema = {
  type: 'object',
  properties: {
    until: { ...epochMs('Latest received_time; the series ends at its minute'), nullable: true },
    window_minutes: { type: 'integer' },
    points: {
      type: 'array',
      description: 'Minutes with arrivals, oldest first (minutes without arrivals are absent)',
      items: {
        type: 'object',
        properties: {
          minute: epochMs('Start of the minute of received_time'),
          events: { type: 'integer' },
          p50_ms: nullableInt('Median sync lag (received_time - event_time) in the minute'),
          p90_ms: nullableInt('90th percentile'),
          p99_ms: nullableInt('99th percentile'),
          max_ms: nullableInt('Largest'),
        },
        required: ['minute', 'events', 'p50_ms', 'p90_ms', 'p99_ms', 'max_ms'],
      },
    },
  },
  required: ['until', 'window_minutes', 'points'],
} as const;

export const consoleRouteSchemas = {
  related: {
    operationId: 'getAlertRelated',
    tags: ['alerts'],
    summary: "Transactions linked to an alert's evidence: the sales its refunds point at and every refund, reversal or void of those sales (the sale -> refund chain)",
    security,
    params: alertIdParams,
    querystring: noQuery,
    response: {
      200: {
        type: 'object',
        properties: {
          alert_id: { type: 'string' },
          transactions: { type: 'array', items: { $ref: 'Transaction#' }, description: `Oldest first (event_time); at most ${RELATED_LIMIT}` },
          truncated: { type: 'boolean', description: `More than ${RELATED_LIMIT} linked transactions` },
        },
        required: ['alert_id', 'transactions', 'truncated'],
      },
      ...errors(...authErrors, 404),
    },
  },
  terminalLag: {
    operationId: 'getTerminalSyncLag',
    tags: ['terminals'],
    summary: "A terminal's sync lag minute by minute (from the terminal_sync_lag_minute rollup)",
    security,
    params: terminalParams,
    querystring: minutesQuery,
    response: {
      200: {
        type: 'object',
        properties: { terminal_id: { type: 'string' }, merchant_id: { type: 'string' }, sync_lag: lagSeriesSchema },
        required: ['terminal_id', 'merchant_id', 'sync_lag'],
      },
      ...errors(400, 401, 403, 404, 429, 500, 503),
    },
  },
  merchant: {
    operationId: 'getMerchant',
    tags: ['terminals'],
    summary: "A merchant: its terminals (last seen, last sequence number, transactions) and its sync lag minute by minute",
    security,
    params: { ...terminalParams, properties: { id: { ...terminalParams.properties.id, description: 'merchant_id' } } },
    querystring: minutesQuery,
    response: {
      200: {
        type: 'object',
        properties: {
          merchant_id: { type: 'string' },
          last_seen: { ...epochMs('Latest received_time of any of its transactions'), nullable: true },
          transactions: { type: 'integer' },
          terminals: {
            type: 'array',
            description: `At most ${MAX_TERMINALS}, by terminal_id`,
            items: {
              type: 'object',
              properties: {
                terminal_id: { type: 'string' },
                last_seen: epochMs('Latest received_time'),
                last_event_time: epochMs('event_time of the latest received transaction'),
                last_seq: { type: 'integer' },
                transactions: { type: 'integer' },
              },
              required: ['terminal_id', 'last_seen', 'last_event_time', 'last_seq', 'transactions'],
            },
          },
          sync_lag: lagSeriesSchema,
        },
        required: ['merchant_id', 'last_seen', 'transactions', 'terminals', 'sync_lag'],
      },
      ...errors(400, 401, 403, 404, 429, 500, 503),
    },
  },
} as const;

type LagRow = { minute_ms: number | string; q: (number | null)[]; mx: number | string | null; events: number | string };

const num = (v: unknown): number | null => {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) ? Math.round(n) : null;
};

export function createConsoleReads(deps: { ch: ClickHouse; store: AlertStore; metrics: ApiMetrics }) {
  const { ch, store } = deps;
  const select = createSelect(ch, deps.metrics);
  const TXNS = ch.table('transactions');
  const ALERTS = ch.table('alerts');
  const LAG = ch.table('terminal_sync_lag_minute');

  async function lagSeries(merchant: string, terminal: string | undefined, until: number | null, minutes: number): Promise<LagSeries> {
    if (until === null) return { until, window_minutes: minutes, points: [] };
    const rows = await select<LagRow>(
      terminal === undefined ? 'console_merchant_lag' : 'console_terminal_lag',
      `SELECT toUnixTimestamp(minute) * 1000 AS minute_ms, quantilesMerge(0.5, 0.9, 0.99)(lag_ms) AS q, max(max_lag_ms) AS mx, uniqExactMerge(events) AS events
       FROM ${LAG} WHERE merchant_id = {m:String}${terminal === undefined ? '' : ' AND terminal_id = {t:String}'}
         AND minute > toStartOfMinute(fromUnixTimestamp64Milli({until:Int64})) - INTERVAL {w:UInt32} MINUTE
         AND minute <= fromUnixTimestamp64Milli({until:Int64})
       GROUP BY minute ORDER BY minute`,
      { m: merchant, ...(terminal === undefined ? {} : { t: terminal }), until, w: minutes },
    );
    return {
      until,
      window_minutes: minutes,
      points: rows.map((r) => ({ minute: Number(r.minute_ms), events: Number(r.events), p50_ms: num(r.q[0]), p90_ms: num(r.q[1]), p99_ms: num(r.q[2]), max_ms: num(r.mx) })),
    };
  }

  return {
    /** Evidence plus the sales its refunds name and every transaction naming those sales or the evidence. */
    async related(alertId: string): Promise<{ alert_id: string; transactions: Transaction[]; truncated: boolean } | undefined> {
      const alert = await store.getAlert(alertId);
      if (!alert) return undefined;
      const evidence = await store.evidence(alert);
      const ids = new Set<string>();
      for (const t of evidence) {
        ids.add(t.txn_id);
        if (t.original_txn_id !== null) ids.add(t.original_txn_id);
      }
      if (ids.size === 0) return { alert_id: alert.alert_id, transactions: [], truncated: false };
      // A fleet alert (merchant '*', the second stage's) has evidence at several merchants: the chain is looked for at each of them.
      const merchants = alert.merchant_id === FLEET_ID ? [...new Set(evidence.map((t) => t.merchant_id))] : [alert.merchant_id];
      const rows = await select<TransactionRow>(
        'console_related',
        `SELECT ${ContractColumns.transactions} FROM ${TXNS} FINAL
         WHERE merchant_id IN {ms:Array(String)} AND (txn_id IN {ids:Array(String)} OR original_txn_id IN {ids:Array(String)})
         ORDER BY event_time, event_id LIMIT {n:UInt32}`,
        { ms: merchants, ids: [...ids], n: RELATED_LIMIT + 1 },
      );
      return { alert_id: alert.alert_id, transactions: rows.slice(0, RELATED_LIMIT).map(fromTransactionRow), truncated: rows.length > RELATED_LIMIT };
    },

    async terminalLag(terminalId: string, minutes: number): Promise<{ terminal_id: string; merchant_id: string; sync_lag: LagSeries } | undefined> {
      const owner = await select<{ merchant_id: string; last: number | string | null }>(
        'console_terminal_owner',
        `SELECT merchant_id, toUnixTimestamp64Milli(max(received_time)) AS last FROM ${TXNS} WHERE terminal_id = {t:String} GROUP BY merchant_id LIMIT 1`,
        { t: terminalId },
      );
      let merchant = owner[0]?.merchant_id;
      const until = num(owner[0]?.last ?? null);
      if (merchant === undefined) {
        // A terminal known only by its alerts (transactions expired): no lag to show, but it exists.
        const a = await select<{ merchant_id: string }>('console_terminal_owner_alerts', `SELECT merchant_id FROM ${ALERTS} WHERE terminal_id = {t:String} LIMIT 1`, { t: terminalId });
        merchant = a[0]?.merchant_id;
        if (merchant === undefined) return undefined;
      }
      return { terminal_id: terminalId, merchant_id: merchant, sync_lag: await lagSeries(merchant, terminalId, until, minutes) };
    },

    async merchant(merchantId: string, minutes: number): Promise<MerchantView | undefined> {
      const terminals = await select<{ terminal_id: string; last_seen: number | string; last_event_time: number | string; last_seq: number | string; n: number | string }>(
        'console_merchant_terminals',
        `SELECT terminal_id, toUnixTimestamp64Milli(max(received_time)) AS last_seen, toUnixTimestamp64Milli(argMax(event_time, received_time)) AS last_event_time,
                max(terminal_seq) AS last_seq, uniqExact(event_id) AS n
         FROM ${TXNS} WHERE merchant_id = {m:String} GROUP BY terminal_id ORDER BY terminal_id LIMIT {n:UInt32}`,
        { m: merchantId, n: MAX_TERMINALS },
      );
      if (terminals.length === 0) {
        const a = await select<{ n: number | string }>('console_merchant_alerts', `SELECT count() AS n FROM ${ALERTS} WHERE merchant_id = {m:String}`, { m: merchantId });
        if (Number(a[0]?.n ?? 0) === 0) return undefined;
      }
      const ts = terminals.map((t) => ({ terminal_id: t.terminal_id, last_seen: Number(t.last_seen), last_event_time: Number(t.last_event_time), last_seq: Number(t.last_seq), transactions: Number(t.n) }));
      const lastSeen = ts.length ? Math.max(...ts.map((t) => t.last_seen)) : null;
      return { merchant_id: merchantId, last_seen: lastSeen, transactions: ts.reduce((s, t) => s + t.transactions, 0), terminals: ts, sync_lag: await lagSeries(merchantId, undefined, lastSeen, minutes) };
    },
  };
}

const notFound = (reply: FastifyReply, what: string) => reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: `${maskPan(what)} not found` });

export function registerConsoleReads(app: FastifyInstance, deps: { ch: ClickHouse; store: AlertStore; metrics: ApiMetrics }): void {
  const reads = createConsoleReads(deps);
  app.get<{ Params: { id: string } }>('/alerts/:id/related', { config: { access: 'viewer' }, schema: consoleRouteSchemas.related }, async (req, reply) => {
    const r = await reads.related(req.params.id);
    return r ?? notFound(reply, `alert ${req.params.id}`);
  });
  app.get<{ Params: { id: string }; Querystring: { minutes?: number } }>('/terminals/:id/sync-lag', { config: { access: 'viewer' }, schema: consoleRouteSchemas.terminalLag }, async (req, reply) => {
    const r = await reads.terminalLag(req.params.id, req.query.minutes ?? 60);
    return r ?? notFound(reply, `terminal ${req.params.id}`);
  });
  app.get<{ Params: { id: string }; Querystring: { minutes?: number } }>('/merchants/:id', { config: { access: 'viewer' }, schema: consoleRouteSchemas.merchant }, async (req, reply) => {
    const r = await reads.merchant(req.params.id, req.query.minutes ?? 60);
    return r ?? notFound(reply, `merchant ${req.params.id}`);
  });
}
