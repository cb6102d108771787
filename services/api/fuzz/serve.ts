// The API as the fuzzing harness (fuzz/run.sh) tests it: a fresh embedded ClickHouse in a temporary
// directory, every migration, SEEDED alerts, transactions, actions and triage rows (so each
// operation reaches its real logic: the OpenAPI document's example ids exist here), keys for the
// three roles, rate limit off. Prints one JSON line {"url", "opsUrl"} when it listens; SIGTERM or
// SIGINT closes it and deletes the directory.
//
//   API_KEYS=... npx tsx services/api/fuzz/serve.ts --port 18080
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createClickHouse, migrate, toActionRow, toAlertTriageRow, type ClickHouse } from '@tillwatch/clickhouse';
import { kafkaConfig, registryConfig, type Env } from '@tillwatch/config';
import { pushRulesDocument } from '@tillwatch/rules-live';
import { createKafka, createRegistryClient, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { clickhouseMigrationsDir, type Action, type Alert } from '@tillwatch/schemas';
import { createLogger, type Logger } from '@tillwatch/telemetry';
import { createMemoryAlertFeed } from '../src/feed.js';
import { startApi } from '../src/main.js';
import { EXAMPLES } from '../src/schemas.js';
import { insertAlerts, insertTransactions, makeAlerts, makeTransaction } from '../test/fixtures.js';

/** 60 alerts over 6 terminals (fixtures), plus the documented examples: alert, terminal, merchant. */
async function seed(ch: ClickHouse): Promise<{ alerts: number; transactions: number }> {
  const { alerts, transactions } = makeAlerts(60);
  const terminal = EXAMPLES.terminalId;
  const own = Array.from({ length: 30 }, (_, i) => makeTransaction(1000 + i, 'T0', { terminal_id: terminal, merchant_id: EXAMPLES.merchantId, event_id: `ev-example-${i}`, txn_id: `tx-example-${i}`, terminal_seq: i + 1 }));
  const [t1, t2] = [own[28]!, own[29]!];
  const example: Alert = {
    alert_id: EXAMPLES.alertId,
    rule: 'duplicate_charge',
    rule_version: 1,
    rules_version: 1,
    severity: 'high',
    terminal_id: terminal,
    merchant_id: EXAMPLES.merchantId,
    card_token: t1.card_token,
    event_ids: [t1.event_id, t2.event_id, 'ev-not-stored'],
    window_start: t1.event_time,
    window_end: t2.event_time,
    detected_at: t2.received_time,
    summary: `two approved charges of the same card and amount at ${terminal}`,
    details: { amount_minor: t1.amount_minor, gap_ms: t2.event_time - t1.event_time },
  };
  const gap: Alert = { ...example, alert_id: `${EXAMPLES.alertId}-gap`, rule: 'sequence_gap', severity: 'medium', card_token: null, event_ids: [own[10]!.event_id], summary: 'sequence gap', details: { missing_from: 12, missing_to: 14 } };
  const action: Action = {
    action_id: `act-${EXAMPLES.alertId}`,
    kind: 'REVIEW_REFUND',
    target_type: 'TERMINAL',
    target_id: terminal,
    merchant_id: EXAMPLES.merchantId,
    terminal_id: terminal,
    alert_id: EXAMPLES.alertId,
    rule: 'duplicate_charge',
    reason: 'possible double charge',
    issued_at: example.detected_at,
    expires_at: null,
  };
  await insertTransactions(ch, [...transactions, ...own]);
  await insertAlerts(ch, [...alerts, example, gap]);
  await ch.client.insert({ table: ch.table('actions'), values: [toActionRow(action)], format: 'JSONEachRow' });
  const triage = alerts.slice(0, 10).map((a, i) => ({ alert_id: a.alert_id, status: (['acknowledged', 'resolved', 'false_positive'] as const)[i % 3]!, actor: 'seed', note: 'seeded', at: a.detected_at + 60_000 }));
  await ch.client.insert({ table: ch.table('alert_triage'), values: triage.map(toAlertTriageRow), format: 'JSONEachRow' });
  return { alerts: alerts.length + 2, transactions: transactions.length + own.length };
}

/**
 * The rules routes read pos.rules.v1 on the local stack: run-scoped topics (a random TOPIC_PREFIX,
 * deleted on exit) with version 1 pushed, so GET /rules and /rules/history reach their real logic
 * and PUT /rules validates against a version in force.
 */
async function seedRules(env: Env, logger: Logger): Promise<{ env: Env; cleanup: () => Promise<void> }> {
  const prefix = randomId('fuzz');
  const kafka = createKafka({ config: kafkaConfig(env), logger, service: 'api-fuzz' });
  const registry = createRegistryClient(registryConfig(env));
  const topics = await provisionScopedTopics(kafka, registry, 1, prefix);
  await pushRulesDocument({ kafka, registry, topic: topics.rules, logger }, { text: 'version: 1\n', format: 'yaml', pushedBy: 'fuzz-seed', via: 'cli', comment: 'seeded for the fuzzing run' });
  return { env: { ...env, TOPIC_PREFIX: prefix }, cleanup: () => deleteScopedTopics(kafka, topics) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '18080' }, host: { type: 'string', default: '127.0.0.1' } } });
  const dir = mkdtempSync(path.join(tmpdir(), 'tillwatch-fuzz-'));
  const ch = createClickHouse({ path: path.join(dir, 'chdb'), database: 'tillwatch_fuzz' });
  await migrate(ch, { dir: clickhouseMigrationsDir });
  const counts = await seed(ch);
  const logger = createLogger({ service: 'api-fuzz', level: 'error' });
  const rules = await seedRules({ ...process.env, API_RATE_LIMIT_MAX: '0', API_READ_MODEL: 'on' }, logger);
  const env = rules.env;
  const api = await startApi({ env, ch, alertFeed: createMemoryAlertFeed(), logger, host: values.host, port: Number(values.port), opsPort: 0 });
  process.stdout.write(`${JSON.stringify({ url: api.url, opsUrl: api.opsUrl, ...counts })}\n`);
  const stop = () => {
    void api
      .close()
      .then(() => ch.close())
      .then(() => rules.cleanup())
      .finally(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

await main();
