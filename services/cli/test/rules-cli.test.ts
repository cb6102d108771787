// tillwatch rules validate|push|show|history through its ports: an in-memory rules topic (the same
// ledger the detector folds), files from a map, output collected.
import { describe, expect, it } from 'vitest';
import { RulesLedger, RulesVersionError, validateRulesDocument, type PushRequest } from '@tillwatch/rules-live';
import { runRulesCli, type RulesCliDeps } from '../src/lib/rules-cli.js';

function harness(files: Record<string, string>, opts: { topicExists?: boolean } = {}) {
  const ledger = new RulesLedger();
  let offset = 0;
  const out: string[] = [];
  const err: string[] = [];
  let t = Date.UTC(2026, 11, 1, 9);
  const push = async (req: PushRequest) => {
    const config = validateRulesDocument(req.text, req.format);
    const active = ledger.active();
    if (active && config.version <= active.config.version) throw new RulesVersionError(config.version, active.config.version);
    const record = { version: config.version, format: req.format, document: req.text, pushed_by: req.pushedBy, pushed_at: (t += 60_000), via: req.via, comment: req.comment ?? null };
    ledger.apply(record, String(offset++));
    return { version: config.version, previousVersion: active?.config.version ?? null, offset: String(offset - 1), record };
  };
  const deps: RulesCliDeps = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    readFile: async (p) => {
      if (!(p in files)) throw new Error(`ENOENT ${p}`);
      return files[p]!;
    },
    defaultUser: () => 'ana',
    store: () => ({ topic: 'pos.rules.v1', ledger: async () => (opts.topicExists === false ? null : ledger), push, close: async () => undefined }),
  };
  const run = async (...argv: string[]) => {
    out.length = 0;
    err.length = 0;
    const code = await runRulesCli(argv, deps);
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  return { run, ledger };
}

const files = {
  'v1.yaml': 'version: 1\n',
  'v2.yaml': 'version: 2\nrules:\n  abnormal_amount:\n    ratio: 6\n',
  'v2.json': JSON.stringify({ version: 2, rules: { sync_lag: { threshold: '20m' } } }),
  'bad.yaml': 'version: 3\nrules:\n  abnormal_amount:\n    ratio: 1\n  sync_lag:\n    severity: urgent\n  nope: {}\n',
  'noversion.yaml': 'rules:\n  sync_lag:\n    enabled: false\n',
};

describe('tillwatch rules', () => {
  it('validate: valid documents print their version; invalid ones list every problem and exit 1', async () => {
    const h = harness(files);
    expect(await h.run('validate', 'v2.yaml')).toMatchObject({ code: 0, out: 'v2.yaml: valid rules document, version 2' });
    expect((await h.run('validate', 'v2.json')).code).toBe(0);
    const bad = await h.run('validate', 'bad.yaml');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('3 problems');
    for (const p of ['rules.abnormal_amount.ratio', 'rules.sync_lag.severity', 'rules.nope']) expect(bad.err).toContain(`  - ${p}: `);
    expect((await h.run('validate', 'noversion.yaml')).err).toMatch(/version: a pushed rules document must declare its version/);
    expect((await h.run('validate')).code).toBe(2);
  });

  it('push: publishes valid documents with a greater version, refuses invalid or not-greater ones', async () => {
    const h = harness(files);
    expect(await h.run('push', 'v1.yaml')).toMatchObject({ code: 0 });
    const p2 = await h.run('push', 'v2.yaml', '--by', 'bo', '--comment', 'ratio 6');
    expect(p2.code).toBe(0);
    expect(p2.out).toMatch(/pushed version 2 \(version in force before: 1\) to pos\.rules\.v1/);
    const again = await h.run('push', 'v2.json');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/version 2 is not greater than the version in force \(2\)/);
    const bad = await h.run('push', 'bad.yaml');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('rules.sync_lag.severity');
    expect(h.ledger.history().map((e) => [e.version, e.status, e.pushed_by])).toEqual([
      [1, 'superseded', 'ana'],
      [2, 'active', 'bo'],
    ]);
  });

  it('show and history: the version in force, who pushed it and when; every record with its status', async () => {
    const h = harness(files);
    expect((await h.run('show')).out).toMatch(/no rules version on pos\.rules\.v1 yet/);
    await h.run('push', 'v1.yaml');
    await h.run('push', 'v2.yaml', '--by', 'bo', '--comment', 'ratio 6');
    const show = await h.run('show', '--document');
    expect(show.out).toMatch(/^version 2 in force, pushed by bo \(cli\) at 2026-12-01T09:02:00\.000Z: "ratio 6"/);
    expect(show.out).toContain('ratio: 6');
    expect(JSON.parse((await h.run('show', '--json')).out)).toMatchObject({ version: 2, pushed_by: 'bo', status: 'active', document: files['v2.yaml'] });
    const hist = await h.run('history');
    expect(hist.out.split('\n')[0]).toBe('2 records on pos.rules.v1 (oldest first):');
    expect(hist.out).toMatch(/ {3}1 {2}superseded/);
    expect(hist.out).toMatch(/ {3}2 {2}active/);
    expect((await h.run('history', '--json')).out.split('\n').map((l) => (JSON.parse(l) as { version: number }).version)).toEqual([1, 2]);
  });

  it('says so when the topic is not provisioned', async () => {
    const h = harness(files, { topicExists: false });
    const r = await h.run('show');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pos\.rules\.v1 does not exist/);
  });
});
