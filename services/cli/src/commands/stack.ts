// tillwatch stack up | down [--wipe] | status [--json] | fetch
import { UsageError, parseCommand, type CommandSpec } from '../lib/args.js';
import { clickhouseStatus, formatClickHouseStatus, formatStatus, localStack } from '../lib/stack.js';

export const spec = {
  name: 'stack',
  summary: 'The local stack without Docker: Kafka and the Apicurio schema registry as local processes (artifacts from Maven Central, cached under .stack/artifacts/), ClickHouse embedded (chDB) in the process that uses it.',
  positionals: {
    usage: 'up | down | status | fetch',
    description: [
      'sub-commands:',
      '  up       start Kafka and the registry (fetching them on first use) and wait until they are ready',
      '  down     stop them (data kept unless --wipe)',
      '  status   one line per component; exit 0 when every component is healthy, 3 otherwise (default)',
      '  fetch    download and cache the artifacts only',
    ],
  },
  options: {
    wipe: { type: 'boolean', description: 'down: also delete the stack\'s data directories' },
    json: { type: 'boolean', description: 'status: print one JSON object ({healthy, components, clickhouse}) instead of the table' },
    verbose: { type: 'boolean', description: 'log every step (also TILLWATCH_DEBUG=1)' },
  },
} satisfies CommandSpec;

const SUBCOMMANDS = ['up', 'down', 'status', 'fetch'];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(spec, argv);
  const [sub = 'status', ...extra] = positionals;
  if (!SUBCOMMANDS.includes(sub)) throw new UsageError(spec, `unknown sub-command "${sub}" (expected one of ${SUBCOMMANDS.join(', ')})`);
  if (extra.length > 0) throw new UsageError(spec, `unexpected argument "${extra[0]}"`);
  if (values.wipe && sub !== 'down') throw new UsageError(spec, '--wipe applies to `stack down` only');
  if (values.json && sub !== 'status') throw new UsageError(spec, '--json applies to `stack status` only');
  const stack = localStack(values.verbose || Boolean(process.env.TILLWATCH_DEBUG));
  switch (sub) {
    case 'up': {
      const r = await stack.up();
      console.log(formatStatus(await stack.status()));
      console.log(formatClickHouseStatus(await clickhouseStatus()));
      console.log(`stack up in ${(r.elapsedMs / 1000).toFixed(1)} s (${Object.entries(r.components).map(([k, v]) => `${k} ${v}`).join(', ')})`);
      return 0;
    }
    case 'down': {
      const r = await stack.down({ wipeData: values.wipe });
      console.log(Object.entries(r).map(([k, v]) => `${k}: ${v}`).join(', '));
      return 0;
    }
    case 'status': {
      const s = await stack.status();
      const ch = await clickhouseStatus();
      if (values.json) console.log(JSON.stringify({ healthy: s.healthy, components: s.components, clickhouse: ch }));
      else {
        console.log(formatStatus(s));
        console.log(formatClickHouseStatus(ch));
      }
      return s.healthy ? 0 : 3;
    }
    default: {
      const r = await stack.fetch();
      console.log(`artifacts cached: ${(r.artifactBytes / 1024 / 1024).toFixed(0)} MiB`);
      return 0;
    }
  }
}
