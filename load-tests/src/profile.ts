// CPU profile of one phase of a load test, taken in-process with the inspector (the detector runs
// in the harness's own process), written as a .cpuprofile (Chrome DevTools / speedscope) and
// summarised as the top entries by self time. HEAP_PROFILE=1: the same phase's allocations, sampled
// (V8's sampling heap profiler, every 32 KiB allocated), written as a .heapprofile and summarised as
// the functions that allocated the most bytes (what the garbage collector then has to handle).
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

/** A call frame's place: the package path under node_modules, else the path from the working directory, and the line. */
function whereOf({ url, lineNumber }: { url: string; lineNumber: number }): string {
  const file = url.replace(/^file:\/\//, '');
  return file ? `${file.includes('node_modules') ? file.slice(file.lastIndexOf('node_modules/') + 13) : relative(process.cwd(), file)}:${lineNumber + 1}` : '';
}

/** Aggregates self time per function (name + file + line); (idle), (program) and (garbage collector) stay as V8 names them. */
export function topSelf(profile: Profile, n: number): TopEntry[] {
  const hits = new Map<string, { fn: string; where: string; hits: number }>();
  let total = 0;
  for (const node of profile.nodes) {
    const h = node.hitCount ?? 0;
    if (h === 0) continue;
    total += h;
    const { functionName } = node.callFrame;
    const where = whereOf(node.callFrame);
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

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** Starts the sampling heap profiler; the returned function stops it, writes the profile and returns the top allocators by bytes. */
export async function startHeapProfile(name: string): Promise<() => Promise<TopEntry[]>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  // Objects collected before the stop are kept in the samples: what was allocated, not what stayed.
  await session.post('HeapProfiler.startSampling', { samplingInterval: 32 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return async () => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    session.disconnect();
    const path = join(resultsDir, `${name}.heapprofile`);
    writeFileSync(path, JSON.stringify(profile));
    const bytes = new Map<string, TopEntry & { bytes: number }>();
    let total = 0;
    const walk = (node: HeapNode) => {
      if (node.selfSize > 0) {
        const { functionName } = node.callFrame;
        const where = whereOf(node.callFrame);
        const key = `${functionName}@${where}`;
        const e = bytes.get(key) ?? { fn: functionName || '(anonymous)', where, selfPct: 0, bytes: 0 };
        e.bytes += node.selfSize;
        bytes.set(key, e);
        total += node.selfSize;
      }
      for (const c of node.children) walk(c);
    };
    walk(profile.head);
    const top = [...bytes.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 10)
      .map((e) => ({ fn: e.fn, where: e.where, selfPct: Math.round((e.bytes / total) * 1000) / 10 }));
    console.error(`heap profile written to ${path} (${Math.round(total / 2 ** 20)} MiB sampled); top 10 allocators by bytes:`);
    for (const t of top) console.error(`  ${String(t.selfPct).padStart(5)} %  ${t.fn}  ${t.where}`);
    return top;
  };
}
