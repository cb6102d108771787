// Checks that regenerated stage goldens changed only where intended: every expected*.jsonl of the
// scenarios at git REF (default HEAD) against the working tree, records compared as JSON with the
// fields named by --ignore left out (default incident_id), order aside; prints what differs.
//   npx tsx packages/stage/test/scenarios/golden-diff.ts [REF] [--ignore f1,f2]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const ig = args.indexOf('--ignore');
const ignore = new Set(ig >= 0 ? args[ig + 1]!.split(',') : ['incident_id']);
const ref = args.find((a, i) => !a.startsWith('--') && (ig < 0 || i !== ig + 1)) ?? 'HEAD';
const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: here, encoding: 'utf8' }).trim();

const strip = (line: string): string => {
  const o = JSON.parse(line) as Record<string, unknown>;
  for (const f of ignore) delete o[f];
  return JSON.stringify(o);
};
let bad = 0;
for (const scenario of readdirSync(here, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
  for (const file of readdirSync(join(here, scenario)).filter((f) => f.startsWith('expected'))) {
    const path = relative(root, join(here, scenario, file));
    let before: string;
    try {
      before = execFileSync('git', ['show', `${ref}:${path}`], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      console.log(`${path}: new file (${readFileSync(join(root, path), 'utf8').split('\n').filter(Boolean).length} lines)`);
      continue;
    }
    const after = existsSync(join(root, path)) ? readFileSync(join(root, path), 'utf8') : '';
    if (before === after) {
      console.log(`${path}: unchanged`);
      continue;
    }
    const a = before.split('\n').filter(Boolean).map(strip);
    const b = after.split('\n').filter(Boolean).map(strip);
    const same = JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
    const order = JSON.stringify(a) === JSON.stringify(b);
    const changed = after.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const values = new Map<string, number>();
    for (const r of changed) {
      for (const f of ignore) {
        const k = `${f}=${r[f] === undefined ? '(absent)' : JSON.stringify(r[f])}`;
        values.set(k, (values.get(k) ?? 0) + 1);
      }
    }
    console.log(`${path}: ${same ? `equal without ${[...ignore].join(',')}` : 'DIFFERENT beyond the ignored fields'}${same && !order ? ' (line order changed)' : ''}; ${[...values].map(([k, n]) => `${k} x${n}`).join(', ')}`);
    if (!same) bad++;
  }
}
process.exitCode = bad > 0 ? 1 : 0;
