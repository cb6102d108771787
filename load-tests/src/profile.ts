// CPU profile of one phase of a load test, taken in-process with the inspector (the detector runs
// in the harness's own process), written as a .cpuprofile (Chrome DevTools / speedscope) and
// summarised as the top entries by self time.
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { resultsDir } from './common.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

export interface TopEntry {
  fn: string;
  where: string;
  selfPct: number;
}

/** Aggregates self time per function (name + file + line); (idle), (program) and (garbage collector) stay as V8 names them. */
export function topSelf(profile: Profile, n: number): TopEntry[] {
  const hits = new Map<string, { fn: string; where: string; hits: number }>();
  let total = 0;
  for (const node of profile.nodes) {
    const h = node.hitCount ?? 0;
    if (h === 0) continue;
    total += h;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, '');
    const where = file ? `${file.includes('node_modules') ? file.slice(file.lastIndexOf('node_modules/') + 13) : relative(process.cwd(), file)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const e = hits.get(key) ?? { fn: functionName || '(anonymous)', where, hits: 0 };
    e.hits += h;
    hits.set(key, e);
  }
  return [...hits.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, n)
    .map((e) => ({ fn: e.fn, where: e.where, selfPct: Math.round((e.hits / total) * 1000) / 10 }));
}

/** Starts the sampling profiler; the returned function stops it, writes the profile and returns its top entries. */
export async function startProfile(name: string): Promise<() => Promise<TopEntry[]>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    session.disconnect();
    const path = join(resultsDir, `${name}.cpuprofile`);
    writeFileSync(path, JSON.stringify(profile));
    const top = topSelf(profile, 5);
    console.error(`CPU profile written to ${path}; top 5 by self time:`);
    for (const t of top) console.error(`  ${String(t.selfPct).padStart(5)} %  ${t.fn}  ${t.where}`);
    return top;
  };
}
