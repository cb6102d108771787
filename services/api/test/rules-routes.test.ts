// GET /rules, GET /rules/history (viewer), PUT /rules (admin) through app.inject(), with the rules
// topic behind its port: an in-memory ledger folded exactly as the detector folds pos.rules.v1.
// The alert store is not touched by these routes, so no ClickHouse is needed.
import { describe, expect, it } from 'vitest';
import type { ClickHouse } from '@tillwatch/clickhouse';
import { RULE_IDS } from '@tillwatch/rules';
import { RulesLedger, RulesVersionError, validateRulesDocument, type PushRequest } from '@tillwatch/rules-live';
import { auth, buildApp } from './fixtures.js';
import { RulesUnavailableError, type RulesBackend } from '../src/routes/rules.js';

const noClickHouse = { table: (n: string) => `test.${n}`, database: 'test' } as unknown as ClickHouse;

function fakeBackend() {
  const ledger = new RulesLedger();
  let offset = 0;
  const pushes: PushRequest[] = [];
  const backend: RulesBackend = {
    ledger: async () => ledger,
    push: async (req) => {
      pushes.push(req);
      const config = validateRulesDocument(req.text, req.format);
      const active = ledger.active();
      if (active && config.version <= active.config.version) throw new RulesVersionError(config.version, active.config.version);
      const record = { version: config.version, format: req.format, document: req.text, pushed_by: req.pushedBy, pushed_at: Date.UTC(2026, 11, 6, 3, offset), via: req.via, comment: req.comment ?? null };
      ledger.apply(record, String(offset++));
      return { version: config.version, previousVersion: active?.config.version ?? null, offset: String(offset - 1), record };
    },
  };
  return { backend, ledger, pushes };
}

describe('rules routes', () => {
  it('PUT /rules (admin) validates like the CLI, publishes with the key name as pushed_by, and refuses a version not greater', async () => {
    const f = fakeBackend();
    const { app } = buildApp(noClickHouse, { rules: f.backend });
    const put = (role: 'viewer' | 'analyst' | 'admin', body: object) => app.inject({ method: 'PUT', url: '/rules', headers: auth(role), payload: body });
    expect((await put('analyst', { document: 'version: 1\n' })).statusCode).toBe(403);
    expect((await put('viewer', { document: 'version: 1\n' })).statusCode).toBe(403);

    const ok = await put('admin', { document: 'version: 1\n', comment: 'first' });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toEqual({ version: 1, previous_version: null, offset: '0', pushed_by: 'root', pushed_at: '2026-12-06T03:00:00.000Z' });
    expect(f.pushes[0]).toMatchObject({ pushedBy: 'root', via: 'api', comment: 'first', format: 'yaml' });

    const bad = await put('admin', { document: 'version: 2\nrules:\n  abnormal_amount:\n    ratio: 1\n  sync_lag:\n    severity: urgent\n' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_RULES', message: 'invalid rules document, 2 problems' });
    expect(bad.json<{ issues: { path: string }[] }>().issues.map((i) => i.path).sort()).toEqual(['rules.abnormal_amount.ratio', 'rules.sync_lag.severity']);

    const json = await put('admin', { document: JSON.stringify({ version: 2, rules: { abnormal_amount: { ratio: 6 } } }), format: 'json' });
    expect(json.statusCode).toBe(201);
    const stale = await put('admin', { document: 'version: 2\n' });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ code: 'RULES_VERSION_CONFLICT' });
    expect((await put('admin', { nope: 1 })).statusCode).toBe(400);
    expect(f.ledger.active()!.config.version).toBe(2);
  });

  it('PUT /rules takes a document of the schema\'s full length in non-ASCII text (2 MB of JSON), and one character more is a 400, not a 413', async () => {
    const f = fakeBackend();
    const { app } = buildApp(noClickHouse, { rules: f.backend });
    const head = 'version: 1\n# ';
    const full = head + '÷'.repeat(1_000_000 - head.length); // ÷: 2 bytes in UTF-8
    const put = (document: string) => app.inject({ method: 'PUT', url: '/rules', headers: { ...auth('admin'), 'content-type': 'application/json' }, payload: JSON.stringify({ document, comment: 'ü'.repeat(1000) }) });
    const ok = await put(full);
    expect(ok.statusCode).toBe(201);
    const over = await put(full + '÷');
    expect(over.statusCode).toBe(400);
    expect(f.ledger.active()!.config.version).toBe(1);
  });

  it('GET /rules and /rules/history (viewer): the version in force and every record, rejected ones with their problems', async () => {
    const f = fakeBackend();
    const { app } = buildApp(noClickHouse, { rules: f.backend });
    const none = await app.inject({ method: 'GET', url: '/rules', headers: auth('viewer') });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toMatchObject({ code: 'NO_RULES_VERSION' });
    await f.backend.push({ text: 'version: 1\n', format: 'yaml', pushedBy: 'ana', via: 'cli' });
    await f.backend.push({ text: 'version: 3\nrules:\n  sync_lag:\n    mode: shadow\n', format: 'yaml', pushedBy: 'root', via: 'api', comment: 'sync_lag in shadow' });
    // A record written straight to the topic that the ledger refused.
    f.ledger.apply({ version: 4, format: 'yaml', document: 'version: 4\nrules: 7\n', pushed_by: 'mallory', pushed_at: 0, via: 'direct', comment: null }, '2');

    const cur = await app.inject({ method: 'GET', url: '/rules', headers: auth('viewer') });
    expect(cur.statusCode).toBe(200);
    expect(cur.json()).toMatchObject({ version: 3, status: 'active', pushed_by: 'root', via: 'api', comment: 'sync_lag in shadow', offset: '1', document: 'version: 3\nrules:\n  sync_lag:\n    mode: shadow\n' });

    const hist = await app.inject({ method: 'GET', url: '/rules/history', headers: auth('viewer') });
    expect(hist.statusCode).toBe(200);
    const items = hist.json<{ items: { version: number; status: string; problems: { path: string }[] }[] }>().items;
    expect(items.map((i) => [i.version, i.status])).toEqual([
      [1, 'superseded'],
      [3, 'active'],
      [4, 'rejected'],
    ]);
    expect(items[2]!.problems[0]!.path).toBe('rules');
    expect((await app.inject({ method: 'GET', url: '/rules' })).statusCode).toBe(401);
  });

  it('answers 503 when the rules topic cannot be read, or when no backend is configured', async () => {
    const down: RulesBackend = {
      ledger: async () => {
        throw new RulesUnavailableError('rules unavailable: pos.rules.v1 does not exist (run tillwatch provision)');
      },
      push: async () => {
        throw new RulesUnavailableError('rules unavailable');
      },
    };
    const { app } = buildApp(noClickHouse, { rules: down });
    const r = await app.inject({ method: 'GET', url: '/rules/history', headers: auth('viewer') });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({ code: 'RULES_UNAVAILABLE', message: expect.stringContaining('does not exist') });
    expect((await app.inject({ method: 'PUT', url: '/rules', headers: auth('admin'), payload: { document: 'version: 1\n' } })).statusCode).toBe(503);
    const bare = buildApp(noClickHouse).app;
    expect((await bare.inject({ method: 'GET', url: '/rules', headers: auth('viewer') })).statusCode).toBe(503);
  });

  it('GET /rules/ids (viewer): the registered rule ids, in registry order, with or without the rules topic', async () => {
    for (const { app } of [buildApp(noClickHouse), buildApp(noClickHouse, { rules: fakeBackend().backend })]) {
      const r = await app.inject({ method: 'GET', url: '/rules/ids', headers: auth('viewer') });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({ rules: [...RULE_IDS] });
      expect((await app.inject({ method: 'GET', url: '/rules/ids' })).statusCode).toBe(401);
    }
  });
});
