// tillwatch backtest --events FILE --out FILE [--config FILE] [--rejects FILE] [--updates FILE] [--refunds FILE] [--actions FILE] [--memberships FILE] [--max-rejects N] [--json]
// Both pipeline stages: the rule engine, then the second stage (fleet incidents, action governor).
// The same pure rule engine as the live detector, clocked by the stream's received times, and the
// same validation (a line the backtest rejects is a record the detector dead-letters).
import { formatSummary } from '@tillwatch/rules/backtest';
import { runStagedBacktest } from '@tillwatch/stage/backtest';
import { numberOption, parseCommand, type CommandSpec } from '../lib/args.js';
import { assertReadableFile } from '../lib/jsonl.js';
import { formatTrailSummary } from '../lib/money-trail.js';

export const spec = {
  name: 'backtest',
  summary: 'Runs the rule engine over a JSON-lines file of transactions (arrival order; a line with "type": "heartbeat" is a heartbeat) and writes the alerts it fires, one JSON line each. No Kafka, no ClickHouse.',
  options: {
    events: { type: 'string', value: 'FILE', required: true, description: 'JSON-lines file of transactions and heartbeats ("type": "heartbeat")' },
    out: { type: 'string', value: 'FILE', required: true, description: 'where the alerts are written' },
    config: { type: 'string', value: 'rules.yaml', description: 'rules file, YAML or JSON (default: the built-in rules); engine.max_clock_skew bounds event times' },
    rejects: { type: 'string', value: 'FILE', description: 'where rejected lines go with their reason ({line, reason, raw}) (default OUT.rejects.jsonl)' },
    updates: { type: 'string', value: 'FILE', description: 'where alert updates (auto-resolutions, episode ends) are written, one JSON line each' },
    refunds: { type: 'string', value: 'FILE', description: 'where refund reasons are written ({event_id, txn_id, original_txn_id, reason, ...}), one JSON line each' },
    actions: { type: 'string', value: 'FILE', description: "where the action governor's actions are written: the action contract plus decision (issued, suppressed or downgraded), decision_reason and incident_id, one JSON line each" },
    memberships: { type: 'string', value: 'FILE', description: 'where the incident memberships are written (which per-terminal alert belongs to which fleet incident; the alert lines carry it as incident_id), one JSON line each' },
    'max-rejects': { type: 'string', value: 'N', description: 'exit 1 when more than N lines are rejected (default: unlimited)' },
    json: { type: 'boolean', description: 'print the summary as one JSON object on stdout (for scripts)' },
    'no-progress': { type: 'boolean', description: 'no progress bar on stderr (shown only on a terminal anyway)' },
  },
  notes: [
    'Two rule sets on the same input in one pass: tillwatch backtest --compare A.yaml B.yaml --out DIR (--events FILE | --from-clickhouse [--since 7d] [--merchant M])',
    '  writes DIR/A.jsonl, DIR/B.jsonl and DIR/diff.md (per rule: alerts only in A, only in B, in both, with examples).',
    'Exit: 0 done; 1 more rejected lines than --max-rejects, or a failure; 2 wrong command line.',
  ],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  // Two rule sets on one input (issue 9): lib/compare-command.ts.
  if (argv.includes('--compare')) return (await import('../lib/compare-command.js')).runCompareCommand(argv);
  const { values } = parseCommand(spec, argv);
  const maxRejects = values['max-rejects'] !== undefined ? numberOption(spec, 'max-rejects', values['max-rejects'], { min: 0, integer: true }) : Infinity;
  await assertReadableFile(values.events);
  const summary = await runStagedBacktest({
    actionsPath: values.actions,
    membershipsPath: values.memberships,
    eventsPath: values.events,
    outPath: values.out,
    configPath: values.config,
    rejectsPath: values.rejects,
    updatesPath: values.updates,
    refundsPath: values.refunds,
    progress: !values['no-progress'] && !values.json && process.stderr.isTTY === true,
    log: (line: string) => console.error(line),
  });
  const tooMany = summary.rejected > maxRejects;
  if (values.json) console.log(JSON.stringify({ ...summary, maxRejects: Number.isFinite(maxRejects) ? maxRejects : null, ok: !tooMany }));
  else console.log(`${formatSummary(summary)}\n${formatTrailSummary(summary)}\n  governor decisions      ${summary.decisions.issued} issued, ${summary.decisions.suppressed} suppressed, ${summary.decisions.downgraded} downgraded${values.actions ? `  -> ${values.actions}` : ''}\n  incident memberships    ${summary.memberships}${values.memberships ? `  -> ${values.memberships}` : ''}${summary.late_links > 0 ? `\n  late links              ${summary.late_links} (input out of received-time order: those alert lines say incident_id null; the memberships file has the link)` : ''}`);
  if (tooMany) {
    console.error(`tillwatch backtest: ${summary.rejected} lines rejected, more than --max-rejects ${maxRejects} (see ${summary.rejectsPath})`);
    return 1;
  }
  return 0;
}
