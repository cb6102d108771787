// Deterministic data for the API's integration tests: alerts over 3 merchants / 6 terminals with
// detected_at ties, replayed copies, and the transactions behind their evidence.
import { createHash } from 'node:crypto';
import { toAlertRow, toTransactionRow, type ClickHouse } from '@tillwatch/clickhouse';
import { type Alert, type Severity, type Transaction } from '@tillwatch/schemas';
import { createLogger, createRegistry } from '@tillwatch/telemetry';
import { Writable } from 'node:stream';
import { createApp, type CreateAppOptions } from '../src/app.js';
import { createAuthenticator, type ApiKeyEntry } from '../src/auth.js';
import { createMemoryAlertFeed } from '../src/feed.js';

export const KEYS = {
  viewer: 'viewer-key-0123456789abcdef',
  analyst: 'analyst-key-0123456789abcdef',
  admin: 'admin-key-0123456789abcdef00',
} as const;

export const KEY_ENTRIES: ApiKeyEntry[] = [
  { key: KEYS.viewer, role: 'viewer', name: 'vera' },
  { key: KEYS.analyst, role: 'analyst', name: 'ana' },
  { key: KEYS.admin, role: 'admin', name: 'root' },
];

export const RULES = ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale'] as const;
const SEVERITIES: Severity[] = ['low', 'medium', 'high', 'critical'];

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Base time: recent enough to be inside every table's TTL. Whole minute, for readable diffs. */
export const BASE = Math.floor((Date.now() - 2 * 86_400_000) / 60_000) * 60_000;

export const terminalOf = (i: number) => `T${i % 6}`;
export const merchantOfTerminal = (t: string) => `M${Number(t.slice(1)) % 3}`;

export function makeTransaction(i: number, terminal: string, over: Partial<Transaction> = {}): Transaction {
  return {
    event_id: `ev-${hex(`ev${terminal}${i}`).slice(0, 24)}`,
    txn_id: `tx-${i}-${terminal}`,
    kind: 'SALE',
    status: 'APPROVED',
    terminal_id: terminal,
    merchant_id: merchantOfTerminal(terminal),
    card_token: `tok_${hex(`card${i % 7}`).slice(0, 16)}`,
    amount_minor: 1000 + i,
    currency: 'EUR',
    terminal_seq: i,
    original_txn_id: null,
    event_time: BASE + i * 60_000,
    received_time: BASE + i * 60_000 + 5_000 + (i % 4) * 1000,
    ...over,
  };
}

/** n alerts; every 5th shares its detected_at with the previous one (tie-breaker by alert_id). */
export function makeAlerts(n: number, start = 0): { alerts: Alert[]; transactions: Transaction[] } {
  const alerts: Alert[] = [];
  const transactions: Transaction[] = [];
  for (let k = start; k < start + n; k++) {
    const terminal = terminalOf(k);
    const t1 = makeTransaction(k * 2, terminal);
    const t2 = makeTransaction(k * 2 + 1, terminal);
    transactions.push(t1, t2);
    const detected = BASE + (k % 5 === 4 ? k - 1 : k) * 30_000 + 1000;
    const rule = RULES[k % RULES.length]!;
    alerts.push({
      alert_id: `al-${hex(`alert${k}`).slice(0, 20)}`,
      rule,
      rule_version: 1,
      // Versions 0-2, and money on two alerts of three (the rest about no single amount): every read path must carry them.
      rules_version: k % 3,
      ...(k % 3 !== 2 ? { currency: k % 2 === 0 ? 'EUR' : 'JPY', amount_minor: t1.amount_minor } : {}),
      severity: SEVERITIES[(k * 7) % 4]!,
      terminal_id: terminal,
      merchant_id: merchantOfTerminal(terminal),
      card_token: k % 3 === 0 ? null : t1.card_token,
      event_ids: [t1.event_id, t2.event_id],
      window_start: t1.event_time,
      window_end: t2.event_time,
      detected_at: detected,
      summary: `${rule} on ${terminal} (#${k})`,
      details: rule === 'sequence_gap' ? { missing_from: k * 2 + 1, missing_to: k * 2 + 3 } : { ratio: k / 10 },
    });
  }
  return { alerts, transactions };
}

export async function insertAlerts(ch: ClickHouse, alerts: Alert[]): Promise<void> {
  if (alerts.length) await ch.client.insert({ table: ch.table('alerts'), values: alerts.map(toAlertRow), format: 'JSONEachRow' });
}

export async function insertTransactions(ch: ClickHouse, txs: Transaction[]): Promise<void> {
  if (txs.length) await ch.client.insert({ table: ch.table('transactions'), values: txs.map(toTransactionRow), format: 'JSONEachRow' });
}

/** Expected list order: detected_at DESC, alert_id DESC. */
export const byListOrder = (a: Alert, b: Alert) => b.detected_at - a.detected_at || (a.alert_id < b.alert_id ? 1 : a.alert_id > b.alert_id ? -1 : 0);

/** Captured log lines (JSON strings) of a logger built by the telemetry package. */
export function captureLogs() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, logger: createLogger({ service: 'api-test', level: 'debug', destination }) };
}

export function buildApp(ch: ClickHouse, over: Partial<CreateAppOptions> = {}) {
  const feed = createMemoryAlertFeed();
  const app = createApp({
    ch,
    alertFeed: feed,
    auth: createAuthenticator(KEY_ENTRIES),
    logger: createLogger({ service: 'api-test', level: 'silent' }),
    metricsRegistry: createRegistry({ service: 'api-test', defaultMetrics: false }),
    rateLimit: false,
    alertsCacheMs: 0,
    ...over,
  });
  return { app, feed };
}

export const auth = (role: keyof typeof KEYS) => ({ 'x-api-key': KEYS[role] });
