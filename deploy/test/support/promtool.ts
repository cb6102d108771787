// Locating promtool for the Prometheus tests. Missing promtool skips those tests locally (with a
// message saying how to get it) but fails them in CI (env CI set): there, .ci/run installs it with
// deploy/prometheus/ensure-promtool.sh, and a silent skip would hide a broken install.
import { execFileSync, spawnSync } from 'node:child_process';

export interface PromtoolResult {
  code: number;
  output: string;
}

export function findPromtool(): string | undefined {
  const fromEnv = process.env['PROMTOOL'];
  if (fromEnv) return fromEnv;
  try {
    return execFileSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export const MISSING_PROMTOOL =
  'promtool is not installed: run deploy/prometheus/ensure-promtool.sh (installs the Debian package "prometheus"), or set PROMTOOL=/path/to/promtool';

export function runPromtool(promtool: string, args: string[], cwd: string): PromtoolResult {
  const r = spawnSync(promtool, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function isCI(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}
