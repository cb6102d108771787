// tillwatch provision: topics, schemas (BACKWARD), ClickHouse migrations. Safe to rerun.
import { parseCommand, type CommandSpec } from '../lib/args.js';
import { checkReachable, createContext } from '../lib/context.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { CLICKHOUSE_ENV, KAFKA_ENV, envNotes } from '../lib/env-help.js';
import { provisionAll } from '../lib/provision.js';

export const spec = {
  name: 'provision',
  summary: 'Creates the topics (TOPIC_PARTITIONS, TOPIC_REPLICATION_FACTOR), registers the Avro schemas (compatibility BACKWARD) and applies the ClickHouse migrations. Safe to rerun.',
  options: {},
  notes: envNotes(KAFKA_ENV, ['  TOPIC_PARTITIONS       partitions of new topics (default 6); TOPIC_REPLICATION_FACTOR (default 1)'], CLICKHOUSE_ENV),
} satisfies CommandSpec;

export async function run(argv: string[]): Promise<number> {
  parseCommand(spec, argv);
  const ctx = createContext(process.env, 'cli', { clickhouse: true });
  const ch = openClickHouse();
  try {
    await checkReachable(ctx, { clickhouse: { ch, url: ctx.clickhouseCfg?.url } });
    const r = await provisionAll(ctx, ch);
    console.log(`topics: ${r.topicsCreated.length} created${r.topicsCreated.length ? ` (${r.topicsCreated.join(', ')})` : ''}, ${r.topicsExisting.length} already there`);
    console.log(`schemas: ${Object.entries(r.subjects).map(([s, id]) => `${s}#${id}`).join(', ')} (compatibility BACKWARD)`);
    console.log(`clickhouse (${ch.kind}${ch.path ? ` ${ch.path}` : ''}, database ${ch.database}): ${r.migrationsApplied.length} migrations applied, ${r.migrationsSkipped.length} already applied`);
    return 0;
  } finally {
    await ch.close();
  }
}
