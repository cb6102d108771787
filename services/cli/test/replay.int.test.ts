// `tillwatch replay` (Kafka, registry, an in-process detector and second stage, alerts, alert updates,
// refund reasons, incident memberships, decisions and actions read back read_committed) gives the same
// records as `tillwatch backtest` (both pure stages) for the same file, both run as the real CLI;
// replay's own check says so too.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createFleet } from '@tillwatch/simulator';
import type { Alert, AlertUpdate, IncidentMembership, RefundReason, Transaction } from '@tillwatch/schemas';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../bin/tillwatch.js', import.meta.url));
let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const readLines = async <T>(path: string): Promise<T[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
const readAlerts = (path: string): Promise<Alert[]> => readLines<Alert>(path);

describe('tillwatch replay', () => {
  it('gives the same alerts, alert updates and refund reasons as tillwatch backtest for the same file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tillwatch-replay-'));
    const fleet = createFleet({ terminals: 50, cards: 300, seed: 17, anomalyRate: 0.05 });
    const events: Transaction[] = [];
    let now = Date.UTC(2026, 2, 1, 8);
    while (events.length < 4000) {
      now += 1200;
      for (const e of fleet.next(now)) events.push(e);
    }
    const file = join(dir, 'events.jsonl');
    await writeFile(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');

    const env = { ...process.env, LOG_LEVEL: 'warn' };
    const bt = (name: string): string => join(dir!, `backtest-${name}.jsonl`);
    const rp = (name: string): string => join(dir!, `replay-${name}.jsonl`);
    await run(process.execPath, [cli, 'backtest', '--events', file, '--out', join(dir, 'backtest.jsonl'), '--updates', bt('updates'), '--refunds', bt('refunds'), '--no-progress'], { env });
    const replayed = await run(process.execPath, [cli, 'replay', '--events', file, '--out', join(dir, 'replay.jsonl'), '--updates', rp('updates'), '--refunds', rp('refunds')], { env, timeout: 170_000 });
    expect(replayed.stdout).toMatch(/replayed 4\d{3} events/);
    // replay's own check (exit 0, or execFile would have thrown).
    expect(replayed.stdout).toMatch(/live equals backtest/);

    // Both stages on both sides: every alert (the second stage's too) with its incident_id.
    const backtest = await readAlerts(join(dir, 'backtest.jsonl'));
    const replay = await readAlerts(join(dir, 'replay.jsonl'));
    expect(backtest.length).toBeGreaterThan(30);
    const rules = new Set(backtest.map((a) => a.rule));
    for (const r of ['duplicate_charge', 'abnormal_amount', 'sync_lag', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale']) expect(rules).toContain(r);
    const ids = (xs: Alert[]) => xs.map((a) => a.alert_id).sort();
    expect(ids(replay)).toEqual(ids(backtest));
    // Same alerts, field for field (order of lines aside).
    const byId = new Map(backtest.map((a) => [a.alert_id, a]));
    for (const a of replay) expect(a).toEqual(byId.get(a.alert_id));

    // Alert updates and refund reasons: the same records (order aside), and the file exercises them.
    const updBt = await readLines<AlertUpdate>(bt('updates'));
    const updRp = await readLines<AlertUpdate>(rp('updates'));
    expect(updBt.length).toBeGreaterThan(0);
    const byUpdate = (xs: AlertUpdate[]) => [...xs].sort((a, b) => (a.update_id < b.update_id ? -1 : 1));
    expect(byUpdate(updRp)).toEqual(byUpdate(updBt));
    const refBt = await readLines<RefundReason>(bt('refunds'));
    const refRp = await readLines<RefundReason>(rp('refunds'));
    expect(refBt.length).toBeGreaterThan(0);
    const byEvent = (xs: RefundReason[]) => [...xs].sort((a, b) => (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : a.received_time - b.received_time));
    expect(byEvent(refRp)).toEqual(byEvent(refBt));
  });

  it('a fleet outage: the same incident, member alerts with its id, memberships, decisions and actions live as in the backtest', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'tillwatch-replay-'));
    // The stage's golden fleet outage: 12 of 40 terminals offline, an incident, suppressed notifications, capped freezes.
    const file = fileURLToPath(new URL('../../../packages/stage/test/scenarios/fleet_outage/events.jsonl', import.meta.url));
    const env = { ...process.env, LOG_LEVEL: 'warn' };
    const p = (name: string): string => join(dir!, `fleet-${name}.jsonl`);
    await run(process.execPath, [cli, 'backtest', '--events', file, '--out', p('bt'), '--updates', p('bt-updates'), '--memberships', p('bt-members'), '--no-progress'], { env });
    const replayed = await run(process.execPath, [cli, 'replay', '--events', file, '--out', p('rp'), '--updates', p('rp-updates'), '--memberships', p('rp-members'), '--decisions', p('rp-decisions')], { env, timeout: 170_000 });
    // replay's own check covers decisions and final actions against the backtest's.
    expect(replayed.stdout).toMatch(/live equals backtest/);
    expect(replayed.stdout).toMatch(/governor decisions +66 = backtest 66/);
    const backtest = await readLines<Alert & { incident_id: string | null }>(p('bt'));
    const replay = await readLines<Alert & { incident_id: string | null }>(p('rp'));
    const incident = replay.filter((a) => a.rule === 'sync_incident');
    expect(incident).toHaveLength(1);
    // Every sync_lag alert carries the incident's id, live as in the backtest.
    const lag = replay.filter((a) => a.rule === 'sync_lag');
    expect(lag).toHaveLength(12);
    for (const a of lag) expect(a.incident_id).toBe(incident[0]!.alert_id);
    const byId = (xs: { alert_id: string }[]) => [...xs].sort((a, b) => (a.alert_id < b.alert_id ? -1 : 1));
    expect(byId(replay)).toEqual(byId(backtest));
    const members = await readLines<IncidentMembership>(p('rp-members'));
    // The 12 sync_lag starts and T02's sequence_gap raised before its start (role before).
    expect(members).toHaveLength(13);
    const gap = replay.filter((a) => a.rule === 'sequence_gap');
    expect(gap.map((a) => [a.terminal_id, a.incident_id])).toEqual([['T02', incident[0]!.alert_id]]);
    expect(members.find((m) => m.alert_id === gap[0]!.alert_id)?.role).toBe('before');
    const byMember = (xs: IncidentMembership[]) => [...xs].sort((a, b) => (a.membership_id < b.membership_id ? -1 : 1));
    expect(byMember(members)).toEqual(byMember(await readLines<IncidentMembership>(p('bt-members'))));
    const byUpdate = (xs: AlertUpdate[]) => [...xs].sort((a, b) => (a.update_id < b.update_id ? -1 : 1));
    expect(byUpdate(await readLines<AlertUpdate>(p('rp-updates')))).toEqual(byUpdate(await readLines<AlertUpdate>(p('bt-updates'))));
    const decisions = await readLines<{ decision: string; incident_id: string | null }>(p('rp-decisions'));
    expect(decisions.filter((d) => d.decision === 'suppressed').every((d) => d.incident_id === incident[0]!.alert_id)).toBe(true);
    expect(decisions.filter((d) => d.decision === 'downgraded')).toHaveLength(6);
  });

  it('publishes heartbeat lines ("type": "heartbeat") to the heartbeat topic: the same upload_backlog alert as the backtest', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'tillwatch-replay-'));
    // A golden file of heartbeats only (one input topic, so the live order is the file's).
    const file = fileURLToPath(new URL('../../../packages/rules/test/scenarios/upload_backlog_draining/events.jsonl', import.meta.url));
    const env = { ...process.env, LOG_LEVEL: 'warn' };
    await run(process.execPath, [cli, 'backtest', '--events', file, '--out', join(dir, 'hb-backtest.jsonl'), '--no-progress'], { env });
    await run(process.execPath, [cli, 'replay', '--events', file, '--out', join(dir, 'hb-replay.jsonl')], { env, timeout: 170_000 });
    const backtest = await readAlerts(join(dir, 'hb-backtest.jsonl'));
    expect(backtest.map((a) => a.rule)).toEqual(['upload_backlog']);
    expect(await readAlerts(join(dir, 'hb-replay.jsonl'))).toEqual(backtest);
  });

  it("follows the rules file's engine.max_clock_skew like the backtest: a line 90 min ahead is sent under a 2 h bound (the detector judges it)", async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'tillwatch-replay-'));
    const T = Date.UTC(2026, 2, 1, 8);
    const sale = (i: number, et: number, rt: number): Transaction => ({
      event_id: `skew-${i}`, txn_id: `tx-skew-${i}`, kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1', card_token: 'tok_skew',
      amount_minor: 2500, currency: 'EUR', terminal_seq: i + 1, original_txn_id: null, event_time: et, received_time: rt,
    });
    // A duplicate charge whose second leg's terminal clock runs 90 min ahead of its receipt.
    const file = join(dir, 'skew.jsonl');
    await writeFile(file, [sale(0, T, T + 500), sale(1, T + 60_000, T + 60_000 - 90 * 60_000 + 10 * 60_000)].map((e) => JSON.stringify(e)).join('\n') + '\n');
    const config = join(dir, 'skew-rules.yaml');
    await writeFile(config, 'engine:\n  max_clock_skew: 2h\n');
    const env = { ...process.env, LOG_LEVEL: 'warn' };
    await run(process.execPath, [cli, 'backtest', '--events', file, '--config', config, '--out', join(dir, 'skew-backtest.jsonl'), '--no-progress'], { env });
    const replayed = await run(process.execPath, [cli, 'replay', '--events', file, '--config', config, '--out', join(dir, 'skew-replay.jsonl')], { env, timeout: 170_000 });
    expect(replayed.stdout).toMatch(/live equals backtest/);
    const backtest = await readAlerts(join(dir, 'skew-backtest.jsonl'));
    expect(backtest.map((a) => a.rule)).toEqual(['duplicate_charge']);
    expect(await readAlerts(join(dir, 'skew-replay.jsonl'))).toEqual(backtest);
  });
});
