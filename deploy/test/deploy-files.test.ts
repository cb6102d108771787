// deploy/compose.yaml, deploy/docker/Dockerfile and deploy/k8s checked with what runs here (no
// Docker engine, no cluster): YAML parsing plus structural checks, a small Dockerfile parser, and a
// real run of the image's health-check script against a local HTTP server.
//
// What this does NOT prove: that the images build, that the pinned third-party images and tags
// exist, or that the containers start and talk to each other (see deploy/README.md).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { clickhouseConfig, kafkaConfig, registryConfig, serviceConfig, type Env } from '@tillwatch/config';
import { apiConfig, readModelEnabled } from '@tillwatch/api';
import { CLI, DOCUMENTED_ENV, IMAGE_OF, IMAGE_SERVICES, METRICS_PORTS, SERVICE_PORTS, SERVICES, STAGE_PORT, type ServiceName } from './support/env.js';
import { decodeK8s } from './support/k8s-schema.js';
import { deployDir, dockerDir, k8sDir, repoRoot } from './support/paths.js';

// =============================================================================================
// Dockerfile

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, backslash continuations joined. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  let buf = '';
  let start = 0;
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (buf === '' && /^\s*(#|$)/.test(line)) return;
    if (buf !== '' && /^\s*#/.test(line)) return; // comment inside a continuation
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    buf += line;
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(buf);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse "${buf}"`);
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim().replace(/\s+/g, ' '), line: start });
    buf = '';
  });
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'ARG' && stages.length === 0) {
      const [k, v] = ins.args.split('=');
      args[k!] = v ?? '';
    } else if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: FROM ${ins.args}`);
      const base = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_s, a?: string, b?: string) => args[(a ?? b)!] ?? '');
      stages.push({ name: m[2] ?? `stage${stages.length}`, base, instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile line ${ins.line}: ${ins.keyword} before FROM`);
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(path.join(dockerDir, 'Dockerfile'), 'utf8'));
const stageByName = new Map(dockerfile.stages.map((s) => [s.name, s]));

/** A stage's instructions including those inherited from the stages it is built FROM. */
function lineage(name: string): Stage[] {
  const out: Stage[] = [];
  for (let s = stageByName.get(name); s; s = stageByName.get(s.base)) out.unshift(s);
  return out;
}
function effective(name: string, keyword: string): Instruction | undefined {
  return lineage(name)
    .flatMap((s) => s.instructions)
    .filter((i) => i.keyword === keyword)
    .at(-1);
}
function envOf(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of lineage(name).flatMap((s) => s.instructions).filter((i) => i.keyword === 'ENV'))
    for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  return env;
}
const execForm = (ins: Instruction | undefined): string[] | undefined => {
  if (!ins) return undefined;
  const json = ins.args.replace(/^(--\S+\s+)*CMD\s+/, '');
  return JSON.parse(json) as string[];
};

/** Directories the root package.json "workspaces" patterns resolve to (only "dir" and "dir/*"). */
function workspaceDirs(): string[] {
  const root = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces
    .flatMap((w) => {
      if (!w.endsWith('/*')) return [w];
      const parent = w.slice(0, -2);
      return readdirSync(path.join(repoRoot, parent))
        .map((d) => `${parent}/${d}`)
        .filter((d) => statSync(path.join(repoRoot, d)).isDirectory());
    })
    .filter((d) => existsSync(path.join(repoRoot, d, 'package.json')))
    .sort();
}

/** .dockerignore pattern -> RegExp, enough for the patterns used (`**`, `*`, plain paths; no `!`). */
function dockerignoreRegex(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c !== '*') re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    else if (p[i + 1] !== '*') re += '[^/]*';
    else if (p[i + 2] === '/') {
      re += '(?:.*/)?';
      i += 2;
    } else {
      re += '.*';
      i += 1;
    }
  }
  // A pattern naming a directory excludes everything below it.
  return new RegExp(`^${re}(?:/.*)?$`);
}
const ignoredBy = (patterns: string[], file: string): boolean => patterns.some((p) => dockerignoreRegex(p).test(file));

describe('Dockerfile', () => {
  const targets = ['detector', 'sink', 'api', 'simulate'] as const;

  it('every stage is built from node:24-slim (the current LTS) or from another stage', () => {
    for (const s of dockerfile.stages) expect(stageByName.has(s.base) || s.base === 'node:24-slim', `${s.name} FROM ${s.base}`).toBe(true);
    expect(dockerfile.stages.filter((s) => !stageByName.has(s.base)).map((s) => s.name)).toEqual(['build', 'runtime']);
  });

  it('one target per service, each running the CLI command of that service', () => {
    for (const t of targets) {
      expect(stageByName.has(t), `target ${t}`).toBe(true);
      expect(lineage(t).map((s) => s.name)[0], `${t} derives from runtime`).toBe('runtime');
      expect(execForm(effective(t, 'CMD')), `${t} CMD (exec form)`).toEqual([...CLI, t]);
    }
    // Without --target, docker builds the last stage: make it a service, not the build stage.
    expect(dockerfile.stages.at(-1)?.name).toBe('detector');
  });

  it('the services run as a non-root user', () => {
    for (const t of targets) {
      const user = effective(t, 'USER')?.args;
      expect(user, `${t} USER`).toBeDefined();
      expect(['root', '0', '0:0'], `${t} USER ${user}`).not.toContain(user);
    }
  });

  it('HTTP services have a HEALTHCHECK on their own port and EXPOSE it; the simulator has none', () => {
    // The stage runs in the detector's image with its own HTTP_PORT (compose and k8s set it).
    for (const s of IMAGE_SERVICES) {
      const hc = effective(s, 'HEALTHCHECK');
      expect(hc?.args, `${s} HEALTHCHECK`).toMatch(/CMD \["node", "deploy\/docker\/healthcheck\.mjs"\]$/);
      expect(hc?.args).toMatch(/--interval=\S+ --timeout=\S+ --start-period=\S+ --retries=\d+/);
      expect(envOf(s)['HTTP_PORT'], `${s} HTTP_PORT`).toBe(String(SERVICE_PORTS[s]));
      expect(effective(s, 'EXPOSE')?.args, `${s} EXPOSE`).toBe(String(SERVICE_PORTS[s]));
    }
    expect(effective('simulate', 'HEALTHCHECK')?.args).toBe('NONE');
    expect(existsSync(path.join(dockerDir, 'healthcheck.mjs'))).toBe(true);
  });

  it('sets only documented environment variables, and listens on every interface', () => {
    for (const s of dockerfile.stages) for (const name of Object.keys(envOf(s.name))) expect(DOCUMENTED_ENV.has(name), `${s.name}: ENV ${name}`).toBe(true);
    for (const t of targets) expect(envOf(t)['HTTP_HOST']).toBe('0.0.0.0');
  });

  it('installs production dependencies from the lockfile, with a manifest for every workspace', () => {
    const build = stageByName.get('build')!;
    const copies = build.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    const manifests = copies.map((c) => /^(\S+)\/package\.json \1\/$/.exec(c)?.[1]).filter((x): x is string => x !== undefined);
    expect(manifests.sort()).toEqual(workspaceDirs());
    expect(copies).toContain('package.json package-lock.json ./');
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci --omit=dev\b/.test(r))).toBe(true);
    // npm ci runs before the sources are copied (layer caching), and the sources come after it.
    const idx = (pred: (i: Instruction) => boolean) => build.instructions.findIndex(pred);
    expect(idx((i) => i.keyword === 'RUN' && i.args.includes('npm ci'))).toBeLessThan(idx((i) => i.keyword === 'COPY' && i.args === '. .'));
  });

  it('the image\'s Node line is one package.json "engines" declares; Node 20 (EOL) is not the image', () => {
    const engines = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const lines = engines.split('||').map((r) => Number(/\^(\d+)\./.exec(r.trim())?.[1]));
    expect(lines).toEqual(expect.arrayContaining([22, 24]));
    const imageMajor = Number(/^node:(\d+)-/.exec(dockerfile.args['NODE_IMAGE'] ?? '')?.[1]);
    expect(lines).toContain(imageMajor);
    expect(imageMajor).toBe(Math.max(...lines));
    // The CI runs the unit suite on the other LTS lines.
    expect(readFileSync(path.join(repoRoot, '.ci', 'run'), 'utf8')).toMatch(/\.ci\/unit-on-lts/);
    expect(readFileSync(path.join(repoRoot, '.ci', 'unit-on-lts'), 'utf8')).toMatch(/majors=\(22 24\)/);
  });

  it('tsx, needed at run time, is a production dependency (so --omit=dev keeps it)', () => {
    const pkg = (p: string) => JSON.parse(readFileSync(path.join(repoRoot, p), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
    expect(pkg('package.json').dependencies?.['tsx']).toBeDefined();
    expect(pkg('services/cli/package.json').dependencies?.['tsx']).toBeDefined();
    expect(readFileSync(path.join(repoRoot, 'services/cli/bin/tillwatch.js'), 'utf8')).toMatch(/from 'tsx\/esm\/api'/);
  });

  it('the build context keeps what the image runs and leaves out modules, data and tests', () => {
    const patterns = readFileSync(path.join(dockerDir, 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(patterns.some((p) => p.startsWith('!'))).toBe(false);
    for (const keep of ['services/cli/bin/tillwatch.js', 'services/cli/src/main.ts', 'packages/rules/src/index.ts', 'schemas/clickhouse/001_transactions.sql', 'deploy/docker/healthcheck.mjs', 'deploy/local/src/index.ts', 'package-lock.json'])
      expect(ignoredBy(patterns, keep), `${keep} must be in the build context`).toBe(false);
    for (const drop of ['node_modules/tsx/package.json', 'packages/rules/node_modules/x', '.stack/data/chdb/x', '.git/HEAD', 'packages/rules/test/engine.test.ts', 'deploy/k8s/api.yaml'])
      expect(ignoredBy(patterns, drop), `${drop} must not be in the build context`).toBe(true);
  });
});

// =============================================================================================
// The health-check script, run for real.

describe('deploy/docker/healthcheck.mjs', () => {
  // Asynchronous spawn: the HTTP server answering the check lives in this process.
  const runCheck = (port: string | undefined): Promise<number> =>
    new Promise((resolve, reject) => {
      const env = { ...process.env };
      delete env['HTTP_PORT'];
      if (port !== undefined) env['HTTP_PORT'] = port;
      const child = spawn(process.execPath, [path.join(dockerDir, 'healthcheck.mjs')], { env, stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code ?? -1));
    });

  async function withServer(status: number, fn: (port: number) => Promise<void>): Promise<string[]> {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(req.url === '/healthz' ? status : 404).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      await fn((server.address() as AddressInfo).port);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    return paths;
  }

  it('exits 0 when /healthz answers 200, 1 on 503, 1 when nothing listens or HTTP_PORT is unset', async () => {
    const asked = await withServer(200, async (port) => expect(await runCheck(String(port))).toBe(0));
    expect(asked).toEqual(['/healthz']);
    await withServer(503, async (port) => expect(await runCheck(String(port))).toBe(1));
    const free = await withServer(200, async () => {});
    expect(free).toEqual([]);
    expect(await runCheck('1')).toBe(1);
    expect(await runCheck(undefined)).toBe(1);
  });
});

// =============================================================================================
// compose.yaml

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[] | string;
  environment?: Record<string, string> | string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string };
  deploy?: { replicas?: number };
  volumes?: string[];
  ports?: string[];
  expose?: string[];
  profiles?: string[];
  mem_limit?: string;
}
const compose = parse(readFileSync(path.join(deployDir, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const envObject = (s: ComposeService): Record<string, string> =>
  Array.isArray(s.environment) ? Object.fromEntries(s.environment.map((e) => e.split(/=(.*)/s).slice(0, 2) as [string, string])) : (s.environment ?? {});
const tillwatchServices = Object.entries(compose.services).filter(([, s]) => s.build?.dockerfile === 'deploy/docker/Dockerfile');

describe('compose.yaml', () => {
  it('runs the infrastructure: Kafka 4.x (KRaft), Apicurio registry, ClickHouse, Prometheus, Grafana', () => {
    const s = compose.services;
    expect(s['kafka']?.image).toMatch(/^apache\/kafka:4\./);
    expect(envObject(s['kafka']!)['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
    expect(s['registry']?.image).toMatch(/^apicurio\/apicurio-registry:3\./);
    expect(s['clickhouse']?.image).toMatch(/^clickhouse\/clickhouse-server:/);
    expect(s['prometheus']?.image).toMatch(/^prom\/prometheus:/);
    expect(s['grafana']?.image).toMatch(/^grafana\/grafana:/);
    expect(envObject(s['grafana']!)['GF_PLUGINS_PREINSTALL_SYNC']).toContain('grafana-clickhouse-datasource');
    for (const name of ['kafka', 'registry', 'clickhouse']) expect(s[name]?.healthcheck, `${name} healthcheck (others wait for it)`).toBeDefined();
  });

  it('every Tillwatch service has an image, a build target that exists, a CLI command and documented env only', () => {
    expect(tillwatchServices.map(([n]) => n).sort()).toEqual(['api', 'detector', 'provision', 'simulator', 'sink', 'stage']);
    for (const [name, s] of tillwatchServices) {
      expect(s.image, `${name} image`).toMatch(/^tillwatch\/[\w-]+:\S+$/);
      expect(s.build?.context, name).toBe('..');
      expect(stageByName.has(s.build?.target ?? ''), `${name} target ${s.build?.target}`).toBe(true);
      expect(Array.isArray(s.command), `${name} command in exec form`).toBe(true);
      expect((s.command as string[]).slice(0, 2), name).toEqual([...CLI]);
      const env = envObject(s);
      expect(Object.keys(env).length, `${name} environment`).toBeGreaterThan(0);
      for (const k of Object.keys(env)) expect(DOCUMENTED_ENV.has(k), `${name}: ${k} is not a documented variable`).toBe(true);
      expect(env['KAFKA_BROKERS'], name).toBe('kafka:9092');
      expect(env['SCHEMA_REGISTRY_URL'], name).toBe('http://registry:8080/apis/ccompat/v7');
      expect(env['HTTP_HOST'], name).toBe('0.0.0.0');
    }
  });

  it('detector, sink, api and stage: right command, image and port, health check, ClickHouse where needed', () => {
    for (const svc of SERVICES) {
      const s = compose.services[svc]!;
      const env = envObject(s);
      expect((s.command as string[])[2], svc).toBe(svc);
      expect(s.build?.target, svc).toBe(IMAGE_OF[svc]);
      expect(env['HTTP_PORT'], svc).toBe(String(SERVICE_PORTS[svc]));
      expect(s.healthcheck?.test, svc).toEqual(['CMD', 'node', 'deploy/docker/healthcheck.mjs']);
      if (svc === 'sink' || svc === 'api') {
        expect(env['CLICKHOUSE_URL'], svc).toBe('http://clickhouse:8123');
        expect(env['CLICKHOUSE_DATABASE'], svc).toBe('tillwatch');
      }
      expect((s.depends_on as Record<string, { condition: string }>)['provision']?.condition, svc).toBe('service_completed_successfully');
    }
    expect(envObject(compose.services['api']!)['API_KEYS']).toBeTruthy();
  });

  it('every service serves /metrics where prometheus.compose.yml scrapes it, on the compose network only', () => {
    for (const svc of SERVICES) {
      const s = compose.services[svc]!;
      const env = Object.fromEntries(Object.entries(envObject(s)).map(([k, v]) => [k, composeDefault(v)]));
      // What the service itself would bind /metrics to, parsed as it parses its environment.
      expect(metricsListen(svc, env), svc).toEqual({ host: '0.0.0.0', port: METRICS_PORTS[svc] });
      expect(s.expose ?? [], svc).toContain(String(METRICS_PORTS[svc]));
      // Published host ports ("host:container[/proto]"): never a metrics port.
      const published = (s.ports ?? []).map((p) => Number(/(\d+)(?:\/\w+)?$/.exec(p)?.[1]));
      expect(published, svc).not.toContain(METRICS_PORTS[svc]);
    }
    // The api: its public port on the host, its ops port (/metrics) not.
    expect(compose.services['api']!.ports).toEqual([`${SERVICE_PORTS.api}:${SERVICE_PORTS.api}`]);
    expect(envObject(compose.services['api']!)['API_OPS_PORT']).toBe(String(METRICS_PORTS.api));
  });

  it('the detector runs 2 replicas, no more than the topic has partitions, without fixed host ports', () => {
    const d = compose.services['detector']!;
    expect(d.deploy?.replicas).toBe(2);
    expect(d.deploy!.replicas!).toBeLessThanOrEqual(Number(envObject(d)['TOPIC_PARTITIONS']));
    expect(d.ports ?? []).toEqual([]); // a host port cannot be bound by two replicas
    expect(envObject(d)['DETECTOR_GROUP_ID']).toBeTruthy();
  });

  it('depends_on and URL hosts name services that exist; mounted paths exist', () => {
    const names = new Set(Object.keys(compose.services));
    for (const [name, s] of Object.entries(compose.services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) expect(names.has(d), `${name} depends on ${d}`).toBe(true);
      for (const v of Object.values(envObject(s)))
        for (const m of v.matchAll(/^(?:https?:\/\/)?([a-z][\w-]*):\d+/g)) if (m[1] !== 'localhost') expect(names.has(m[1]!), `${name}: host ${m[1]} in ${v}`).toBe(true);
      for (const vol of s.volumes ?? []) {
        const src = vol.split(':')[0]!;
        if (src.startsWith('.')) expect(existsSync(path.join(deployDir, src)), `${name}: ${src}`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name}: named volume ${src}`).toContain(src);
      }
    }
    const promArgs = (compose.services['prometheus']!.command as string[]).find((a) => a.startsWith('--config.file='))!;
    expect(existsSync(path.join(deployDir, 'prometheus', path.basename(promArgs.split('=')[1]!)))).toBe(true);
  });

  it("every Tillwatch service gets more stop time than its own shutdown deadline (SHUTDOWN_TIMEOUT_MS), so a stuck stop ends with its exit 1, not a SIGKILL", () => {
    for (const [name, s] of tillwatchServices) {
      // The services that stop under SHUTDOWN_TIMEOUT_MS (provision is a one-shot job, the simulator a load generator).
      if (!['detector', 'sink', 'stage', 'api'].includes((s.command as string[])[2]!)) continue;
      const env = Object.fromEntries(Object.entries(envObject(s)).map(([k, v]) => [k, composeDefault(v)]));
      const deadline = serviceConfig(env, { httpPort: 1 }).shutdownTimeoutMs;
      const grace = /^(\d+)s$/.exec(String((s as { stop_grace_period?: string }).stop_grace_period ?? '10s'));
      expect(grace, `${name} stop_grace_period in seconds`).not.toBeNull();
      expect(Number(grace![1]) * 1000, name).toBeGreaterThan(deadline);
    }
  });

  it('every container has a memory limit; a bounded Node heap fits inside it', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.mem_limit, `${name} mem_limit`).toMatch(/^\d+[mg]$/);
      const heap = /--max-old-space-size=(\d+)/.exec(envObject(s)['NODE_OPTIONS'] ?? '')?.[1];
      if (heap) expect(Number(heap) * 2 ** 20, `${name}: heap vs mem_limit`).toBeLessThan(bytes(s.mem_limit!));
    }
  });

  it('every default in the Tillwatch services passes the services\' own configuration parsing', () => {
    for (const [name, s] of tillwatchServices) {
      const env = Object.fromEntries(Object.entries(envObject(s)).map(([k, v]) => [k, composeDefault(v)]));
      const command = (s.command as string[])[2]!;
      expect(() => validateServiceEnv(command, env), `compose ${name} (tillwatch ${command})`).not.toThrow();
    }
    // The api parses its keys (today's default "dev-key" was refused: the container exited at start).
    const apiEnv = Object.fromEntries(Object.entries(envObject(compose.services['api']!)).map(([k, v]) => [k, composeDefault(v)]));
    expect(apiConfig(apiEnv).apiKeys?.length).toBeGreaterThan(0);
  });
});

/** What compose substitutes with nothing set in the shell: ${X:-default} / ${X-default} -> default, ${X} -> '', $$ -> $. */
function composeDefault(v: string): string {
  return v.replace(/\$\$|\$\{(\w+)(?::?-([^}]*))?\}/g, (m, _name: string | undefined, def: string | undefined) => (m === '$$' ? '$' : (def ?? '')));
}

function bytes(q: string): number {
  const m = /^(\d+)(m|g|Mi|Gi)$/.exec(q);
  if (!m) throw new Error(`cannot read memory quantity ${q}`);
  return Number(m[1]) * (m[2]!.startsWith('g') || m[2] === 'Gi' ? 2 ** 30 : 2 ** 20);
}

/**
 * The configuration parsing each CLI command does at start (services' main.ts): a value these
 * refuse would stop the container with a configuration error. Throws the services' own ConfigError.
 */
function validateServiceEnv(command: string, env: Env): void {
  switch (command) {
    case 'detector':
      serviceConfig(env, { httpPort: SERVICE_PORTS.detector });
      kafkaConfig(env);
      registryConfig(env);
      return;
    case 'stage':
      serviceConfig(env, { httpPort: SERVICE_PORTS.stage });
      kafkaConfig(env);
      registryConfig(env);
      return;
    case 'sink':
      serviceConfig(env, { httpPort: SERVICE_PORTS.sink });
      kafkaConfig(env);
      registryConfig(env);
      clickhouseConfig(env);
      return;
    case 'api':
      serviceConfig(env, { httpPort: SERVICE_PORTS.api });
      clickhouseConfig(env);
      apiConfig(env);
      return;
    case 'provision':
      kafkaConfig(env);
      registryConfig(env);
      clickhouseConfig(env);
      return;
    case 'simulate':
      kafkaConfig(env);
      registryConfig(env);
      return;
    default:
      throw new Error(`no configuration check for command ${command}`);
  }
}

/** Where a service binds /metrics, as its main.ts reads the environment: the api's ops server (API_OPS_PORT) binds HTTP_HOST. */
function metricsListen(service: ServiceName, env: Env): { host: string; port: number } {
  const svc = serviceConfig(env, { httpPort: SERVICE_PORTS[service] });
  return { host: svc.httpHost, port: service === 'api' ? apiConfig(withKeyReplaced(env)).opsPort : svc.httpPort };
}

/** The environment as an operator applies it: the k8s Secret's placeholder key (which the api refuses) replaced by a real one. */
function withKeyReplaced<E extends Record<string, string | undefined>>(env: E): E {
  const keys = env['API_KEYS'];
  return keys === undefined ? env : { ...env, API_KEYS: keys.replace(/CHANGE-ME[^:]*/g, 'k8sRandomKey0123456789abcdef') };
}

describe('configuration checks themselves', () => {
  it('refuse what the services refuse (so a passing deploy-file check means something)', () => {
    expect(() => validateServiceEnv('api', { API_KEYS: 'dev-key' })).toThrow(/API_KEYS/);
    expect(() => validateServiceEnv('sink', { KAFKA_BROKERS: 'kafka' })).toThrow(/KAFKA_BROKERS/);
    expect(() => validateServiceEnv('detector', { HTTP_PORT: 'eighty' })).toThrow(/HTTP_PORT/);
    expect(composeDefault('${TILLWATCH_API_KEYS:-a:b:c}')).toBe('a:b:c');
    expect(composeDefault('${X}')).toBe('');
    expect(metricsListen('api', {})).toEqual({ host: '127.0.0.1', port: METRICS_PORTS.api });
    expect(metricsListen('api', { HTTP_HOST: '0.0.0.0', HTTP_PORT: '8080', API_OPS_PORT: '9999' })).toEqual({ host: '0.0.0.0', port: 9999 });
    expect(metricsListen('sink', { HTTP_PORT: '9999' }).port).toBe(9999);
  });
});

// =============================================================================================
// k8s

interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: K8sContainer[]; securityContext?: { runAsNonRoot?: boolean }; volumes?: Array<{ name: string }>; automountServiceAccountToken?: boolean };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } | Record<string, string>;
    template?: PodTemplate;
    ports?: Array<{ name: string; port: number; targetPort: string | number }>;
    minAvailable?: number | string;
    maxUnavailable?: number | string;
    scaleTargetRef?: { apiVersion: string; kind: string; name: string };
    minReplicas?: number;
    maxReplicas?: number;
    podSelector?: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: NetworkPolicyRule[];
    egress?: NetworkPolicyRule[];
  };
}
interface NetworkPolicyPeer {
  namespaceSelector?: { matchLabels?: Record<string, string> };
  podSelector?: { matchLabels?: Record<string, string> };
}
interface NetworkPolicyRule {
  from?: NetworkPolicyPeer[];
  to?: NetworkPolicyPeer[];
  ports?: Array<{ protocol?: string; port?: number | string }>;
}

const k8sFiles = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml')).sort();
const k8sObjects: Array<K8sObject & { file: string }> = k8sFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => {
      if (d.errors.length > 0) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      if (d.warnings.length > 0) throw new Error(`${f}: ${d.warnings.map((e) => e.message).join('; ')}`);
      return { ...(d.toJS() as K8sObject), file: f };
    }),
  );
const kustomization = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as { images: Array<{ name: string; newTag: string }> };
const ofKind = (kind: string) => k8sObjects.filter((o) => o.kind === kind);
const deployment = (svc: ServiceName) => ofKind('Deployment').find((d) => d.metadata.name === `tillwatch-${svc}`)!;
const configMap = (name: string) => ofKind('ConfigMap').find((c) => c.metadata.name === name);
const secret = (name: string) => ofKind('Secret').find((c) => c.metadata.name === name);

/** The environment a container gets: env entries plus every key of its envFrom sources. */
function containerEnv(c: K8sContainer): Map<string, string> {
  const env = new Map<string, string>();
  for (const from of c.envFrom ?? []) {
    const src = from.configMapRef ? configMap(from.configMapRef.name)?.data : from.secretRef ? secret(from.secretRef.name)?.stringData : undefined;
    if (!src) throw new Error(`container ${c.name}: envFrom ${JSON.stringify(from)} names no object in deploy/k8s`);
    for (const [k, v] of Object.entries(src)) env.set(k, v);
  }
  for (const e of c.env ?? []) env.set(e.name, e.value ?? '');
  return env;
}

describe('k8s manifests', () => {
  it('the kustomization lists every manifest file, and every object is namespaced in tillwatch', () => {
    const kust = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as { namespace: string; resources: string[]; images: Array<{ name: string; newTag: string }> };
    expect([...kust.resources].sort()).toEqual(k8sFiles.filter((f) => f !== 'kustomization.yaml'));
    expect(kust.namespace).toBe('tillwatch');
    for (const o of k8sObjects) {
      expect(o.apiVersion && o.kind && o.metadata?.name, `${o.file}: apiVersion/kind/name`).toBeTruthy();
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.file} ${o.kind}/${o.metadata.name}`).toBe('tillwatch');
    }
    expect(ofKind('Namespace').map((n) => n.metadata.name)).toEqual(['tillwatch']);
    const images = k8sObjects.filter((o) => o.spec?.template).flatMap((d) => d.spec!.template!.spec.containers.map((c) => c.image));
    for (const img of images) {
      // Pinned in the base manifest (without kustomize, an untagged image pulls :latest) and the
      // same tag as kustomization.yaml sets.
      const [name, tag] = img.split(':');
      expect(tag, `image ${img} is pinned`).toMatch(/^\d+\.\d+\.\d+$/);
      expect(kust.images.find((i) => i.name === name)?.newTag, `image ${img} vs kustomization.yaml`).toBe(tag);
    }
  });

  it('a Deployment and a Service per service; Services select their Deployment and name a real port', () => {
    for (const svc of SERVICES) {
      const d = deployment(svc);
      expect(d, svc).toBeDefined();
      const labels = d.spec!.template!.metadata.labels;
      const selector = (d.spec!.selector as { matchLabels: Record<string, string> }).matchLabels;
      for (const [k, v] of Object.entries(selector)) expect(labels[k], `${svc} selector ${k}`).toBe(v);
      expect(labels['app.kubernetes.io/name']).toBe(`tillwatch-${svc}`);
      const service = ofKind('Service').find((s) => s.metadata.name === `tillwatch-${svc}`);
      expect(service, `Service tillwatch-${svc}`).toBeDefined();
      for (const [k, v] of Object.entries(service!.spec!.selector as Record<string, string>)) expect(labels[k], `Service ${svc} selector`).toBe(v);
      const portNames = d.spec!.template!.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const p of service!.spec!.ports ?? []) expect(portNames, `Service ${svc} targetPort`).toContain(p.targetPort);
    }
  });

  it('every container: image, CLI command, probes on /healthz and /readyz, requests and a memory limit, hardened', () => {
    for (const svc of SERVICES) {
      const tpl = deployment(svc).spec!.template!;
      expect(tpl.spec.securityContext?.runAsNonRoot, svc).toBe(true);
      const [c, ...others] = tpl.spec.containers;
      expect(others, svc).toEqual([]);
      expect(c!.image, svc).toBe(`tillwatch/${IMAGE_OF[svc]}:${kustomization.images.find((i) => i.name === `tillwatch/${IMAGE_OF[svc]}`)?.newTag}`);
      expect(tpl.spec.automountServiceAccountToken, `${svc}: no service-account token`).toBe(false);
      expect(c!.command, svc).toEqual([...CLI, svc]);
      const port = c!.ports?.find((p) => p.name === 'http');
      expect(port?.containerPort, svc).toBe(SERVICE_PORTS[svc]);
      expect(containerEnv(c!).get('HTTP_PORT'), svc).toBe(String(SERVICE_PORTS[svc]));
      // /metrics: the detector and the sink on their http port, the api on a port of its own named
      // metrics, where the process binds it (API_OPS_PORT on HTTP_HOST, reachable on the pod IP).
      const metricsPort = c!.ports?.find((p) => p.name === (METRICS_PORTS[svc] === SERVICE_PORTS[svc] ? 'http' : 'metrics'));
      expect(metricsPort?.containerPort, `${svc} metrics port`).toBe(METRICS_PORTS[svc]);
      expect(metricsListen(svc, Object.fromEntries(containerEnv(c!))), svc).toEqual({ host: '0.0.0.0', port: METRICS_PORTS[svc] });
      expect(c!.livenessProbe?.httpGet, svc).toEqual({ path: '/healthz', port: 'http' });
      expect(c!.readinessProbe?.httpGet, svc).toEqual({ path: '/readyz', port: 'http' });
      expect(c!.resources?.requests?.['cpu'], `${svc} cpu request`).toBeTruthy();
      expect(c!.resources?.requests?.['memory'], `${svc} memory request`).toBeTruthy();
      expect(c!.resources?.limits?.['memory'], `${svc} memory limit`).toBeTruthy();
      expect(c!.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      // A read-only root needs a writable /tmp (tsx's transform cache).
      expect(c!.volumeMounts?.find((m) => m.mountPath === '/tmp'), svc).toBeDefined();
      for (const m of c!.volumeMounts ?? []) expect(tpl.spec.volumes?.map((v) => v.name), `${svc} volume ${m.name}`).toContain(m.name);
    }
  });

  it('pods are scraped through annotations on their own metrics port', () => {
    for (const svc of SERVICES) {
      const a = deployment(svc).spec!.template!.metadata.annotations ?? {};
      expect(a, svc).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORTS[svc]), 'prometheus.io/path': '/metrics' });
    }
    expect(containerEnv(deployment('api').spec!.template!.spec.containers[0]!).get('API_OPS_PORT')).toBe(String(METRICS_PORTS.api));
    expect(k8sObjects.some((o) => o.kind === 'ServiceMonitor')).toBe(false);
  });

  it("the api's read model, sized in compose and k8s, is on over their ClickHouse server (auto would leave it off)", () => {
    const k8sEnv = Object.fromEntries(containerEnv(deployment('api').spec!.template!.spec.containers[0]!));
    const composeEnv = Object.fromEntries(Object.entries(envObject(compose.services['api']!)).map(([k, v]) => [k, composeDefault(v)]));
    const envs: Array<[string, Record<string, string>]> = [
      ['k8s', withKeyReplaced(k8sEnv)],
      ['compose', composeEnv],
    ];
    for (const [where, env] of envs) {
      expect(env['CLICKHOUSE_URL'], where).toBeTruthy();
      expect(Number(env['API_READ_MODEL_MAX_ALERTS']), where).toBeGreaterThan(0);
      expect(readModelEnabled(apiConfig(env), 'http'), where).toBe(true);
    }
  });

  it('containers get only documented variables, from objects that exist; ClickHouse and api keys only where used', () => {
    const containers = k8sObjects.filter((o) => o.spec?.template).flatMap((o) => o.spec!.template!.spec.containers.map((c) => [`${o.kind}/${o.metadata.name}`, c] as const));
    expect(containers.length).toBe(5); // 3 service Deployments + the stage + the provision Job
    for (const [owner, c] of containers) {
      const env = containerEnv(c);
      for (const k of env.keys()) expect(DOCUMENTED_ENV.has(k), `${owner}: ${k}`).toBe(true);
      expect(env.get('HTTP_HOST'), owner).toBe('0.0.0.0');
      for (const k of ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL']) expect(env.get(k), `${owner}: ${k}`).toBeTruthy();
    }
    expect(containerEnv(deployment('detector').spec!.template!.spec.containers[0]!).has('CLICKHOUSE_PASSWORD')).toBe(false);
    expect(containerEnv(deployment('sink').spec!.template!.spec.containers[0]!).has('API_KEYS')).toBe(false);
    expect(containerEnv(deployment('api').spec!.template!.spec.containers[0]!).has('API_KEYS')).toBe(true);
    const job = ofKind('Job').find((j) => j.metadata.name === 'tillwatch-provision')!;
    expect(job.spec!.template!.spec.containers[0]!.command).toEqual([...CLI, 'provision']);
  });

  it('the second stage runs: one replica of tillwatch stage (the only writer of pos.actions.* while DETECTOR_STAGE is on), recreated, probed, scraped', () => {
    const d = ofKind('Deployment').find((x) => x.metadata.name === 'tillwatch-stage')!;
    expect(d).toBeDefined();
    expect(d.spec!.replicas).toBe(1);
    expect((d.spec as { strategy?: { type?: string } }).strategy?.type).toBe('Recreate');
    const tpl = d.spec!.template!;
    const [c, ...others] = tpl.spec.containers;
    expect(others).toEqual([]);
    expect(c!.image).toBe(`tillwatch/detector:${kustomization.images.find((i) => i.name === 'tillwatch/detector')?.newTag}`);
    expect(c!.command).toEqual([...CLI, 'stage']);
    expect(c!.ports?.find((p) => p.name === 'http')?.containerPort).toBe(STAGE_PORT);
    expect(containerEnv(c!).get('HTTP_PORT')).toBe(String(STAGE_PORT));
    expect(containerEnv(c!).get('STAGE_GROUP_ID')).toBe('tillwatch-stage');
    expect(containerEnv(c!).has('DETECTOR_STAGE')).toBe(false);
    expect(containerEnv(deployment('detector').spec!.template!.spec.containers[0]!).get('DETECTOR_STAGE') ?? 'true').toBe('true');
    expect(c!.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c!.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c!.resources?.limits?.['memory']).toBeTruthy();
    expect(c!.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(tpl.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(STAGE_PORT), 'prometheus.io/path': '/metrics' });
    expect(ofKind('Service').find((s) => s.metadata.name === 'tillwatch-stage')?.spec?.ports?.[0]?.targetPort).toBe('http');
  });

  it('the detector has no more replicas than the topic has partitions', () => {
    const partitions = Number(configMap('tillwatch-config')?.data?.['TOPIC_PARTITIONS']);
    expect(partitions).toBeGreaterThan(0);
    expect(deployment('detector').spec!.replicas!).toBeLessThanOrEqual(partitions);
    expect(ofKind('PodDisruptionBudget').map((p) => p.metadata.name).sort()).toEqual(['tillwatch-api', 'tillwatch-detector']);
  });

  it('the 2-replica api keeps a pod through voluntary disruptions and scales on CPU', () => {
    const api = deployment('api');
    const pdb = ofKind('PodDisruptionBudget').find((p) => p.metadata.name === 'tillwatch-api')!;
    const labels = api.spec!.template!.metadata.labels;
    for (const [k, v] of Object.entries((pdb.spec!.selector as { matchLabels: Record<string, string> }).matchLabels)) expect(labels[k]).toBe(v);
    expect(api.spec!.replicas).toBe(2);
    // minAvailable below the replica count: a drain can still evict one pod at a time.
    expect(Number(pdb.spec!.minAvailable)).toBeGreaterThanOrEqual(1);
    expect(Number(pdb.spec!.minAvailable)).toBeLessThan(api.spec!.replicas!);
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.spec!.scaleTargetRef)).toEqual([{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'tillwatch-api' }]);
    expect(hpas[0]!.spec!.minReplicas).toBe(api.spec!.replicas);
    expect(hpas[0]!.spec!.maxReplicas!).toBeGreaterThan(hpas[0]!.spec!.minReplicas!);
    // Utilisation targets need a CPU request.
    expect(api.spec!.template!.spec.containers[0]!.resources?.requests?.['cpu']).toBeTruthy();
  });

  it('network policies: default deny, ingress only to the api (and metrics from monitoring), egress only to what each workload uses', () => {
    const policies = ofKind('NetworkPolicy');
    const deny = policies.find((p) => Object.keys(p.spec!.podSelector ?? {}).length === 0 || Object.keys(p.spec!.podSelector?.matchLabels ?? {}).length === 0);
    expect(deny?.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const cfg = configMap('tillwatch-config')!.data!;
    const portOf = (u: string) => Number(/:(\d+)(?:\/|$)/.exec(u)?.[1]);
    const kafkaPort = portOf(cfg['KAFKA_BROKERS']!.split(',')[0]!);
    const registryPort = portOf(cfg['SCHEMA_REGISTRY_URL']!);
    const clickhousePort = portOf(cfg['CLICKHOUSE_URL']!);
    const nsOf = (u: string) => /^(?:https?:\/\/)?[\w-]+\.([\w-]+)\.svc/.exec(u)?.[1];
    const wanted = {
      api: { ingressFromAnywhere: true, egress: { kafka: false, registry: false, clickhouse: true } },
      detector: { ingressFromAnywhere: false, egress: { kafka: true, registry: true, clickhouse: false } },
      sink: { ingressFromAnywhere: false, egress: { kafka: true, registry: true, clickhouse: true } },
      provision: { ingressFromAnywhere: false, egress: { kafka: true, registry: true, clickhouse: true } },
      stage: { ingressFromAnywhere: false, egress: { kafka: true, registry: true, clickhouse: false } },
    } as const;
    const workloads = k8sObjects.filter((o) => o.spec?.template);
    expect(workloads.length).toBe(Object.keys(wanted).length);
    for (const w of workloads) {
      const labels = w.spec!.template!.metadata.labels;
      const key = labels['app.kubernetes.io/name']!.replace(/^tillwatch-/, '') as keyof typeof wanted;
      const mine = policies.filter((p) => p !== deny && Object.entries(p.spec!.podSelector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v));
      expect(mine.length, `${key}: one NetworkPolicy`).toBe(1);
      const p = mine[0]!.spec!;
      expect(p.policyTypes).toEqual(['Ingress', 'Egress']);
      const ingress = p.ingress ?? [];
      const httpPort = w.spec!.template!.spec.containers[0]!.ports?.find((x) => x.name === 'http')?.containerPort;
      // Prometheus (namespace monitoring only) on the metrics port, if the workload has one.
      const metricsPort = key === 'stage' ? STAGE_PORT : key in METRICS_PORTS ? METRICS_PORTS[key as ServiceName] : undefined;
      const fromMonitoring = metricsPort === undefined ? [] : [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: metricsPort }] }];
      if (wanted[key].ingressFromAnywhere) {
        // Clients from anywhere on the HTTP port only (never on the metrics port), then Prometheus.
        expect(httpPort, key).not.toBe(metricsPort);
        expect(ingress, key).toEqual([{ ports: [{ protocol: 'TCP', port: httpPort }] }, ...fromMonitoring]);
      } else {
        expect(ingress, key).toEqual(fromMonitoring);
      }
      const egress = p.egress ?? [];
      const to = (ns: string | undefined, ports: number[]) =>
        egress.some((r) => r.to?.some((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === ns) && ports.every((x) => r.ports?.some((rp) => rp.port === x)));
      expect(to('kube-system', [53]), `${key}: DNS`).toBe(true);
      expect(egress.find((r) => r.to?.some((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'kube-system'))?.ports?.map((x) => x.protocol).sort()).toEqual(['TCP', 'UDP']);
      expect(to(nsOf(cfg['KAFKA_BROKERS']!), [kafkaPort]), `${key}: Kafka`).toBe(wanted[key].egress.kafka);
      expect(to(nsOf(cfg['SCHEMA_REGISTRY_URL']!), [registryPort]), `${key}: registry`).toBe(wanted[key].egress.registry);
      expect(to(nsOf(cfg['CLICKHOUSE_URL']!), [clickhousePort]), `${key}: ClickHouse`).toBe(wanted[key].egress.clickhouse);
      // Nothing else: every egress rule names a peer (no allow-all) and is one of the above.
      for (const r of egress) expect(r.to?.length, `${key}: egress rule without a peer allows everything`).toBeGreaterThan(0);
      expect(egress.length, key).toBe(1 + Object.values(wanted[key].egress).filter(Boolean).length);
    }
  });

  it('every object decodes strictly: known kind and apiVersion, no unknown or mistyped field', () => {
    for (const o of k8sObjects) {
      const { file, ...obj } = o;
      expect(decodeK8s(obj), `${file} ${o.kind}/${o.metadata.name}`).toEqual([]);
    }
  });

  it('the strict decoder rejects misspelt and mistyped fields', () => {
    const d = deployment('api');
    const { file: _file, ...obj } = d;
    const broken = structuredClone(obj) as unknown as { spec: { replicas: unknown; template: { spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> } } } };
    broken.spec.replicas = '2';
    broken.spec.template.spec['automountServiceAccountTokens'] = false;
    broken.spec.template.spec.containers[0]!['livenesProbe'] = {};
    expect(decodeK8s(broken).sort()).toEqual([
      'spec.replicas: expected number, got string',
      'spec.template.spec.automountServiceAccountTokens: unknown field',
      'spec.template.spec.containers[0].livenesProbe: unknown field',
    ]);
    expect(decodeK8s({ apiVersion: 'v1', kind: 'Widget', metadata: { name: 'x' } })).toEqual(['kind Widget (v1) is not one this decoder knows']);
  });

  it('every ConfigMap/Secret value a container gets passes the services\' own configuration parsing, once the placeholder key is replaced', () => {
    for (const o of k8sObjects.filter((x) => x.spec?.template)) {
      const c = o.spec!.template!.spec.containers[0]!;
      const command = c.command![2]!;
      const env = Object.fromEntries(containerEnv(c));
      // Applied unedited, the api refuses to start rather than serve the published placeholder as an admin key.
      if (command === 'api') expect(() => validateServiceEnv(command, env)).toThrow(/API_KEYS.*placeholder key of the deploy templates/);
      expect(() => validateServiceEnv(command, withKeyReplaced(env)), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
  });

  it('secrets are placeholders, never real credentials', () => {
    for (const s of ofKind('Secret')) {
      expect(s.data, `${s.metadata.name}: use stringData placeholders`).toBeUndefined();
      for (const [k, v] of Object.entries(s.stringData ?? {})) if (/PASSWORD|KEYS/.test(k)) expect(v, `${s.metadata.name}.${k}`).toMatch(/^CHANGE[_-]ME\b/);
    }
  });
});
