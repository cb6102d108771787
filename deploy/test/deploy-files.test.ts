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
import { CLI, DOCUMENTED_ENV, SERVICE_PORTS, SERVICES, type ServiceName } from './support/env.js';
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

  it('every stage is built from node:20-slim or from another stage', () => {
    for (const s of dockerfile.stages) expect(stageByName.has(s.base) || s.base === 'node:20-slim', `${s.name} FROM ${s.base}`).toBe(true);
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
    for (const s of SERVICES) {
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
    expect(tillwatchServices.map(([n]) => n).sort()).toEqual(['api', 'detector', 'provision', 'simulator', 'sink']);
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

  it('detector, sink and api: right command and port, health check, ClickHouse where needed', () => {
    for (const svc of SERVICES) {
      const s = compose.services[svc]!;
      const env = envObject(s);
      expect((s.command as string[])[2], svc).toBe(svc);
      expect(s.build?.target, svc).toBe(svc);
      expect(env['HTTP_PORT'], svc).toBe(String(SERVICE_PORTS[svc]));
      expect(s.healthcheck?.test, svc).toEqual(['CMD', 'node', 'deploy/docker/healthcheck.mjs']);
      if (svc !== 'detector') {
        expect(env['CLICKHOUSE_URL'], svc).toBe('http://clickhouse:8123');
        expect(env['CLICKHOUSE_DATABASE'], svc).toBe('tillwatch');
      }
      expect((s.depends_on as Record<string, { condition: string }>)['provision']?.condition, svc).toBe('service_completed_successfully');
    }
    expect(envObject(compose.services['api']!)['API_KEYS']).toBeTruthy();
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
  spec: { containers: K8sContainer[]; securityContext?: { runAsNonRoot?: boolean }; volumes?: Array<{ name: string }> };
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
  };
}

const k8sFiles = readdirSync(k8sDir).filter((f) => f.endsWith('.yaml')).sort();
const k8sObjects: Array<K8sObject & { file: string }> = k8sFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) =>
    parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => {
      if (d.errors.length > 0) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { ...(d.toJS() as K8sObject), file: f };
    }),
  );
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
    const kust = parse(readFileSync(path.join(k8sDir, 'kustomization.yaml'), 'utf8')) as { namespace: string; resources: string[]; images: Array<{ name: string }> };
    expect([...kust.resources].sort()).toEqual(k8sFiles.filter((f) => f !== 'kustomization.yaml'));
    expect(kust.namespace).toBe('tillwatch');
    for (const o of k8sObjects) {
      expect(o.apiVersion && o.kind && o.metadata?.name, `${o.file}: apiVersion/kind/name`).toBeTruthy();
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.file} ${o.kind}/${o.metadata.name}`).toBe('tillwatch');
    }
    expect(ofKind('Namespace').map((n) => n.metadata.name)).toEqual(['tillwatch']);
    const images = ofKind('Deployment').flatMap((d) => d.spec!.template!.spec.containers.map((c) => c.image));
    for (const img of images) expect(kust.images.map((i) => i.name), `image ${img} has a tag in kustomization.yaml`).toContain(img);
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
      expect(c!.image, svc).toBe(`tillwatch/${svc}`);
      expect(c!.command, svc).toEqual([...CLI, svc]);
      const port = c!.ports?.find((p) => p.name === 'http');
      expect(port?.containerPort, svc).toBe(SERVICE_PORTS[svc]);
      expect(containerEnv(c!).get('HTTP_PORT'), svc).toBe(String(SERVICE_PORTS[svc]));
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
      expect(a, svc).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(SERVICE_PORTS[svc]), 'prometheus.io/path': '/metrics' });
    }
    expect(k8sObjects.some((o) => o.kind === 'ServiceMonitor')).toBe(false);
  });

  it('containers get only documented variables, from objects that exist; ClickHouse and api keys only where used', () => {
    const containers = k8sObjects.filter((o) => o.spec?.template).flatMap((o) => o.spec!.template!.spec.containers.map((c) => [`${o.kind}/${o.metadata.name}`, c] as const));
    expect(containers.length).toBe(4); // 3 Deployments + the provision Job
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

  it('the detector has no more replicas than the topic has partitions', () => {
    const partitions = Number(configMap('tillwatch-config')?.data?.['TOPIC_PARTITIONS']);
    expect(partitions).toBeGreaterThan(0);
    expect(deployment('detector').spec!.replicas!).toBeLessThanOrEqual(partitions);
    expect(ofKind('PodDisruptionBudget').map((p) => p.metadata.name)).toEqual(['tillwatch-detector']);
  });

  it('secrets are placeholders, never real credentials', () => {
    for (const s of ofKind('Secret')) {
      expect(s.data, `${s.metadata.name}: use stringData placeholders`).toBeUndefined();
      for (const [k, v] of Object.entries(s.stringData ?? {})) if (/PASSWORD|KEYS/.test(k)) expect(v, `${s.metadata.name}.${k}`).toBe('CHANGE_ME');
    }
  });
});
