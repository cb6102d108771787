// Rules documents a rule folder adds to the property tests: src/rules/<rule_id>/test/property-configs.ts
// may export `propertyConfigs`, rules documents (as in a rules file: plain objects) under which the
// rule fires on the dense stream (test/helpers/streams.ts) - a lower threshold, a shorter window. The
// properties then run every rule under them too, and "every registered rule fires" counts them. A
// rule that fires on the stream with its defaults needs no such file; none edits the shared stream.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseRulesConfig, type RulesConfig } from '../../src/index.js';

const RULES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'rules');
export const PROPERTY_CONFIGS_FILE = join('test', 'property-configs.ts');

/** Every rule folder's `propertyConfigs`, parsed (an invalid document fails here, naming its folder). */
export async function ruleFolderConfigs(): Promise<RulesConfig[]> {
  const out: RulesConfig[] = [];
  const folders = readdirSync(RULES_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  for (const name of folders) {
    const file = join(RULES_DIR, name, PROPERTY_CONFIGS_FILE);
    if (!existsSync(file)) continue;
    const m = (await import(pathToFileURL(file).href)) as { propertyConfigs?: unknown };
    if (!Array.isArray(m.propertyConfigs) || m.propertyConfigs.length === 0) throw new Error(`${file}: export a non-empty propertyConfigs array of rules documents`);
    for (const [i, doc] of m.propertyConfigs.entries()) {
      try {
        out.push(parseRulesConfig(doc));
      } catch (e) {
        throw new Error(`${file}: propertyConfigs[${i}]: ${(e as Error).message}`, { cause: e });
      }
    }
  }
  return out;
}
