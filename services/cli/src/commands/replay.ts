// tillwatch replay --events FILE --out FILE [--config rules.yaml] [--external-detector]
import { parseArgs } from 'node:util';
import { loadRules } from '@tillwatch/detector';
import { createContext } from '../lib/context.js';
import { replay, writeAlertsJsonl } from '../lib/replay.js';
import { formatStatus, localStack, usesLocalStack } from '../lib/stack.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string' },
      out: { type: 'string' },
      config: { type: 'string' },
      'external-detector': { type: 'boolean', default: false },
      'idle-ms': { type: 'string', default: '2000' },
      'keep-topics': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.events || !values.out) {
    console.error('usage: tillwatch replay --events FILE --out FILE [--config rules.yaml] [--external-detector] [--idle-ms 2000] [--keep-topics]');
    return values.help ? 0 : 2;
  }
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
  const r = await replay({ ctx, eventsPath: values.events, rules: loadRules(values.config ?? process.env.TILLWATCH_RULES), external: values['external-detector'], idleMs: Number(values['idle-ms']), keepTopics: values['keep-topics'], log: (l) => console.error(l) });
  await writeAlertsJsonl(values.out, r.alerts);
  const byRule = new Map<string, number>();
  for (const a of r.alerts) byRule.set(a.rule, (byRule.get(a.rule) ?? 0) + 1);
  console.log(`replayed ${r.published} events in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.alerts.length} alerts ${JSON.stringify(Object.fromEntries(byRule))} -> ${values.out}`);
  return 0;
}
