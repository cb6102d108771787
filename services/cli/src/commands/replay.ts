// tillwatch replay --events FILE --out FILE [--updates FILE] [--refunds FILE] [--config rules.yaml] [--external-detector]
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
    'End-to-end check: publishes a JSON-lines file to run-scoped topics, lets a detector (in this process, or --external-detector) process it, reads the alerts, alert updates and refund reasons back, writes them as JSON lines and checks them against the backtest of the same file.',
  options: {
    events: { type: 'string', value: 'FILE', required: true, description: 'JSON-lines file of transactions' },
    out: { type: 'string', value: 'FILE', required: true, description: 'where the alerts are written, one JSON line each' },
    updates: { type: 'string', value: 'FILE', description: 'where the alert updates read back are written, one JSON line each (as backtest --updates)' },
    refunds: { type: 'string', value: 'FILE', description: 'where the refund reasons read back are written, one JSON line each (as backtest --refunds)' },
    config: { type: 'string', value: 'rules.yaml', description: 'rules file, YAML or JSON (default TILLWATCH_RULES, else the built-in rules)' },
    'external-detector': { type: 'boolean', description: 'publish to the standard topics and collect the alerts of the detector already running' },
    'idle-ms': { type: 'string', value: 'MS', default: '2000', description: 'stop reading once no alert arrived for this long after the detector caught up' },
    'keep-topics': { type: 'boolean', description: 'keep the run-scoped topics and group afterwards (for inspection)' },
  },
  notes: [
    ...envNotes(KAFKA_ENV),
    'With neither KAFKA_BROKERS nor SCHEMA_REGISTRY_URL set, the local stack is started when it is not running.',
    'Live must equal backtest: with the in-process detector, the alerts, alert updates and refund reasons read back are compared (ids and every field) with what the pure engine gives for the same file (as `tillwatch backtest`); exit 1 when they differ. Not checked with --external-detector (its state and clock are its own).',
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
  const byRule = new Map<string, number>();
  for (const a of r.alerts) byRule.set(a.rule, (byRule.get(a.rule) ?? 0) + 1);
  console.log(
    `replayed ${r.published} events in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.alerts.length} alerts ${JSON.stringify(Object.fromEntries(byRule))} -> ${values.out}, ${r.updates.length} alert updates, ${r.refundReasons.length} refund reasons`,
  );
  if (values['external-detector']) return 0;
  const diff = compareOutputs(r, await backtestFile(values.events!, rules));
  console.log(`${diff.equal ? 'live equals backtest' : 'live DIFFERS from backtest'}:\n${formatOutputDiff(diff)}`);
  return diff.equal ? 0 : 1;
}
