// tillwatch provision: topics, schemas (BACKWARD), ClickHouse migrations. Safe to rerun.
import { createContext } from '../lib/context.js';
import { openClickHouse } from '../lib/clickhouse.js';
import { provisionAll } from '../lib/provision.js';

export async function run(_argv: string[]): Promise<number> {
  const ctx = createContext();
  const ch = openClickHouse();
  try {
    const r = await provisionAll(ctx, ch);
    console.log(`topics: ${r.topicsCreated.length} created${r.topicsCreated.length ? ` (${r.topicsCreated.join(', ')})` : ''}, ${r.topicsExisting.length} already there`);
    console.log(`schemas: ${Object.entries(r.subjects).map(([s, id]) => `${s}#${id}`).join(', ')} (compatibility BACKWARD)`);
    console.log(`clickhouse (${ch.kind}${ch.path ? ` ${ch.path}` : ''}, database ${ch.database}): ${r.migrationsApplied.length} migrations applied, ${r.migrationsSkipped.length} already applied`);
    return 0;
  } finally {
    await ch.close();
  }
}
