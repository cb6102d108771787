// tillwatch backtest --events FILE --out FILE [--config FILE] [--rejects FILE]
// The same pure rule engine as the live detector, clocked by the stream's received times.
import { parseArgs } from 'node:util';
import { formatSummary, runBacktest } from '@tillwatch/rules/backtest';

export async function run(argv: string[]): Promise<number> {
  // Two rule sets on one input (issue 9): lib/compare-command.ts.
  if (argv.includes('--compare')) return (await import('../lib/compare-command.js')).runCompareCommand(argv);
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string' },
      out: { type: 'string' },
      config: { type: 'string' },
      rejects: { type: 'string' },
      'no-progress': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help || !values.events || !values.out) {
    console.error('usage: tillwatch backtest --events FILE --out FILE [--config rules.yaml] [--rejects FILE] [--no-progress]');
    return values.help ? 0 : 2;
  }
  const summary = await runBacktest({
    eventsPath: values.events,
    outPath: values.out,
    configPath: values.config,
    rejectsPath: values.rejects,
    progress: !values['no-progress'] && process.stderr.isTTY === true,
    log: (line: string) => console.error(line),
  });
  console.log(formatSummary(summary));
  return 0;
}
