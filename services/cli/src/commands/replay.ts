// tillwatch replay --events FILE --out FILE [--updates FILE] [--refunds FILE] [--memberships FILE] [--config rules.yaml] [--external-detector]
import { loadRules } from '@tillwatch/detector';
import { numberOption, parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, createContext } from '../lib/context.js';
import { KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { assertReadableFile } from '../lib/jsonl.js';
import { backtestFile, compareOutputs, formatOutputDiff, replay, writeAlertsJsonl, writeContractJsonl } from '../lib/replay.js';
import { formatStatus, localStack, usesLocalStack } from '../lib/stack.js';

export const spec = {
  name: 'replay',
  summary:
    'End-to-end check: publishes a JSON-lines file to run-scoped topics, lets a detector and the second stage (in this process, or --external-detector) process it, reads the alerts (with their fleet incident), alert updates, refund reasons, incident memberships, governor decisions and actions back, writes them as JSON lines and checks them against the backtest of the same file.',
  options: {
    events: { type: 'string', value: 'FILE', required: true, description: 'JSON-lines file of transactions' },
    out: { type: 'string', value: 'FILE', required: true, description: 'where the alerts are written, one JSON line each (the alert contract plus incident_id, as backtest --out)' },
    updates: { type: 'string', value: 'FILE', description: 'where the alert updates read back are written, one JSON line each (as backtest --updates)' },
    refunds: { type: 'string', value: 'FILE', description: 'where the refund reasons read back are written, one JSON line each (as backtest --refunds)' },
    memberships: { type: 'string', value: 'FILE', description: 'where the incident memberships read back are written, one JSON line each (as backtest --memberships)' },
    decisions: { type: 'string', value: 'FILE', description: "where the governor's decisions read back are written, one JSON line each (action-decision contract)" },
    config: { type: 'string', value: 'rules.yaml', description: 'rules file, YAML or JSON (default TILLWATCH_RULES, else the built-in rules)' },
    'external-detector': { type: 'boolean', description: 'publish to the standard topics and collect the alerts of the pipeline already running (detector and stage)' },
    'idle-ms': { type: 'string', value: 'MS', default: '2000', description: 'stop reading once no alert arrived for this long after the detector caught up' },
    'keep-topics': { type: 'boolean', description: 'keep the run-scoped topics and group afterwards (for inspection)' },
  },
  notes: [
    ...envNotes(KAFKA_ENV),
    'With neither KAFKA_BROKERS nor SCHEMA_REGISTRY_URL set, the local stack is started when it is not running.',
    'Live must equal backtest: with the in-process detector and stage, the alerts (with incident_id), alert updates, refund reasons, incident memberships, governor decisions and final actions read back are compared (ids and every field) with what both pure stages give for the same file (as `tillwatch backtest`); exit 1 when any differs. Not checked with --external-detector (its state and clock are its own).',
  ],
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(spec, argv);
  const idleMs = numberOption(spec, 'idle-ms', values['idle-ms']!, { min: 0, integer: true });
  await assertReadableFile(values.events!);
  if (usesLocalStack()) {
    const stack = localStack();
    const s = await stack.status();
    if (!s.healthy) {
      console.error('starting the local stack...');
      await stack.up();
      console.error(formatStatus(await stack.status()));
    }
  }
  const ctx = createContext(process.env, 'replay');
  await checkReachable(ctx);
  const rules = loadRules(values.config ?? process.env.TILLWATCH_RULES);
  const r = await replay({ ctx, eventsPath: values.events!, rules, external: values['external-detector'], idleMs, keepTopics: values['keep-topics'], log: (l) => console.error(l) });
  await writeAlertsJsonl(values.out!, r.alerts);
  if (values.updates) await writeContractJsonl(values.updates, 'alertUpdate', r.updates);
  if (values.refunds) await writeContractJsonl(values.refunds, 'refundReason', r.refundReasons);
  if (values.memberships) await writeContractJsonl(values.memberships, 'incidentMembership', r.memberships);
  if (values.decisions) await writeContractJsonl(values.decisions, 'actionDecision', r.decisions);
  const byRule = new Map<string, number>();
  for (const a of r.alerts) byRule.set(a.rule, (byRule.get(a.rule) ?? 0) + 1);
  console.log(
    `replayed ${r.published} events in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.alerts.length} alerts ${JSON.stringify(Object.fromEntries(byRule))} -> ${values.out}, ${r.updates.length} alert updates, ${r.refundReasons.length} refund reasons, ${r.memberships.length} incident memberships, ${r.decisions.length} governor decisions, ${r.actions.length} actions`,
  );
  if (values['external-detector']) return 0;
  const diff = compareOutputs(r, await backtestFile(values.events!, rules));
  console.log(`${diff.equal ? 'live equals backtest' : 'live DIFFERS from backtest'}:\n${formatOutputDiff(diff)}`);
  return diff.equal ? 0 : 1;
}
