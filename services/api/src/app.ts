// createApp builds the fastify instance (routes, auth, validation, docs, rate limit, masking)
// without listening; main.ts connects and listens. Tests drive it through app.inject().
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyRateLimit from '@fastify/rate-limit';
import { AjvCompiler } from '@fastify/ajv-compiler';
import { ClickHouseUnavailableError, type ClickHouse, type TriageStatus } from '@tillwatch/clickhouse';
import type { Alert } from '@tillwatch/schemas';
import type { Logger } from '@tillwatch/telemetry';
import { isHeartbeatEventId } from '@tillwatch/rules';
import type { Registry } from 'prom-client';
import { extractKey, roleAllows, type Access, type Authenticator, type Principal } from './auth.js';
import { createPageCache } from './cache.js';
import { CursorError, decodeCursor, encodeCursor } from './cursor.js';
import type { AlertFeed } from './feed.js';
import { maskDeep, maskPan } from './mask.js';
import { createApiMetrics } from './metrics.js';
import { addLinksAndDescriptions, componentSchemas, routeSchemas } from './schemas.js';
import { toAlertView, type AlertView } from './alert-view.js';
import type { AlertReadModel } from './read-model/read-model.js';
import { createAlertStore, type AlertFilter } from './store.js';
import { registerConsole } from './console.js';
import type { AlertStatus } from './lifecycle.js';
import { withMoney } from './money-view.js';
import { registerRulesRoutes, type RulesBackend } from './routes/rules.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Least role that may call the route, or 'public'. Routes without one require admin. */
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface RateLimitOptions {
  /** Requests per key (per client IP for public routes) per window. */
  max: number;
  timeWindowMs: number;
}

export interface CreateAppOptions {
  ch: ClickHouse;
  alertFeed: AlertFeed;
  auth: Authenticator;
  logger: Logger;
  metricsRegistry: Registry;
  /** Per-key rate limit; false disables. Default 6000 requests per minute. */
  rateLimit?: RateLimitOptions | false;
  /** GET /alerts page cache TTL (ms); 0 disables. Default 1000. */
  alertsCacheMs?: number;
  /** How long past the TTL a cached page is still served while it refreshes in the background. Default 5000. */
  alertsCacheStaleMs?: number;
  /** SSE keep-alive comment interval. Default 15 s. */
  sseHeartbeatMs?: number;
  /** An SSE client whose unsent buffer exceeds this is disconnected (slow consumer). Default 1 MiB. */
  sseMaxBufferBytes?: number;
  /** How GET /alerts reads: 'auto' uses the 006 time-ordered table when present (default). */
  alertReadPath?: 'auto' | 'alerts';
  /** In-memory alert read model (started by the caller): GET /alerts and /alerts/:id from memory where it can. */
  readModel?: AlertReadModel;
  /** Wall clock for triage timestamps (tests pin it). */
  now?: () => number;
  /** `servers` of the OpenAPI document. Default: the document's own origin (a relative URL). */
  publicUrl?: string;
  /** pos.rules.v1 behind GET /rules, GET /rules/history, PUT /rules (routes/rules.ts); absent: they answer 503. */
  rules?: RulesBackend;
}

export interface RouteInfo {
  method: string;
  url: string;
  access: Access;
}

export type ApiApp = FastifyInstance & { readonly routeTable: readonly RouteInfo[] };

type AjvOptions = Parameters<ReturnType<typeof AjvCompiler>>[1];

const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 6000, timeWindowMs: 60_000 };

const TRIAGE_ACTIONS: { path: string; status: TriageStatus; operationId: string; summary: string }[] = [
  { path: 'ack', status: 'acknowledged', operationId: 'acknowledgeAlert', summary: 'Acknowledge an alert (analyst): someone is looking at it' },
  { path: 'resolve', status: 'resolved', operationId: 'resolveAlert', summary: 'Resolve an alert (analyst): handled' },
  { path: 'false-positive', status: 'false_positive', operationId: 'markAlertFalsePositive', summary: 'Mark an alert a false positive (analyst)' },
];

/**
 * Longest path parameter the router accepts. Far above every id's maxLength (128), so a long id
 * reaches validation and gets the documented 400 instead of find-my-way's default 414 at 100
 * characters; node:http itself refuses request heads over 16 KiB (431) before fastify sees them.
 */
const MAX_PARAM_LENGTH = 16_384;

/** A route pattern (`/alerts/:id/history`, `/docs/*`) as a matcher of concrete paths. */
const patternRegExp = (url: string): RegExp =>
  new RegExp(`^${url.split(/(:[A-Za-z0-9_]+|\*)/).map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('')}$`);

/** A PAN-like number in a triage note is refused (not just masked): it would be stored otherwise. */
const containsPan = (s: string): boolean => maskPan(s) !== s;

// The RFC 3339 date-times the schema's `format: date-time` (ajv-formats, full mode) accepts: `T`,
// `t` or a space between date and time, any number of fraction digits, `Z`/`z` or an offset with or
// without minutes (`+01`, `+0100`, `+01:00`), and second 60 when the time is 23:59 in UTC.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt\s](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2})(?::?(\d{2}))?)$/;

/**
 * Epoch ms of an RFC 3339 date-time query parameter (`from`, `to`), NaN if it is not one.
 * `Date.parse` cannot be used as is: it answers NaN for a leap second (`2016-12-31T23:59:60Z`), which
 * RFC 3339 and the schema allow, and for an offset without minutes (`+01`). A leap second counts as
 * the last millisecond of its minute (`23:59:59.999`): epoch ms have no 61st second, and that is
 * where it sorts (after every time of that minute, before the next minute). Fractions are cut to
 * milliseconds, as Date.parse does.
 */
export function parseDateTimeParam(text: string): number {
  const m = DATE_TIME.exec(text);
  if (!m) return Number.NaN;
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const leap = sec === 60;
  const ms = leap ? 999 : Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const at = new Date(0);
  at.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it maps years 0-99 to 1900-1999
  at.setUTCHours(h, mi, leap ? 59 : sec, ms);
  // A day or time that does not exist (the schema refuses those already) is not rolled over.
  if (at.getUTCFullYear() !== y || at.getUTCMonth() !== mo - 1 || at.getUTCDate() !== d || at.getUTCHours() !== h || at.getUTCMinutes() !== mi) return Number.NaN;
  const offsetMin = m[8] === undefined ? 0 : (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10] ?? 0));
  return at.getTime() - offsetMin * 60_000;
}

/** A `from`/`to` parameter as epoch ms; 400 naming the parameter if it is no date-time after all. */
function timeParam(name: string, text: string): number {
  const ms = parseDateTimeParam(text);
  if (Number.isNaN(ms)) throw new HttpError(400, 'FST_ERR_VALIDATION', `querystring.${name} must be a date-time (RFC 3339, e.g. 2024-05-01T12:00:00Z)`);
  return ms;
}

class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * One message per validation failure naming the field and what was expected, e.g.
 * "querystring.limit must be <= 500", "querystring has unknown parameter 'severty'".
 */
function formatValidation(errors: readonly { keyword: string; instancePath: string; params: Record<string, unknown>; message?: string | undefined }[], dataVar: string): Error {
  const e = errors[0];
  if (!e) return new Error(`${dataVar} is invalid`);
  const path = dataVar + e.instancePath.replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  let message: string;
  switch (e.keyword) {
    case 'additionalProperties':
      message = `${path} has unknown ${dataVar === 'querystring' ? 'parameter' : 'property'} '${String(e.params['additionalProperty'])}'`;
      break;
    case 'required':
      message = `${path}.${String(e.params['missingProperty'])} is required`;
      break;
    case 'enum':
      message = `${path} must be one of: ${(e.params['allowedValues'] as unknown[]).map(String).join(', ')}`;
      break;
    case 'type':
      message = `${path} must be ${String(e.params['type'])}`;
      break;
    case 'format':
      message = `${path} must be a ${String(e.params['format'])}${e.params['format'] === 'date-time' ? ' (RFC 3339, e.g. 2024-05-01T12:00:00Z)' : ''}`;
      break;
    case 'pattern':
      if (path === 'querystring.cursor') {
        message = 'querystring.cursor is not a valid cursor: pass next_cursor from a previous page unchanged';
        break;
      }
      message = `${path} has characters that are not allowed (expected pattern ${String(e.params['pattern'])})`;
      break;
    default:
      message = `${path} ${e.message ?? 'is invalid'}`;
  }
  return new Error(message);
}

export function createApp(options: CreateAppOptions): ApiApp {
  const { ch, alertFeed, auth, metricsRegistry, now = Date.now } = options;
  const metrics = createApiMetrics(metricsRegistry);
  const ajvFactory = AjvCompiler();
  const store = createAlertStore({ ch, metrics, ...(options.alertReadPath ? { readPath: options.alertReadPath } : {}), ...(options.readModel ? { readModel: options.readModel } : {}) });
  const cache = createPageCache<string>({ ttlMs: options.alertsCacheMs ?? 1000, staleMs: options.alertsCacheStaleMs ?? 5000 });
  const heartbeatMs = options.sseHeartbeatMs ?? 15_000;
  const sseMaxBuffer = options.sseMaxBufferBytes ?? 1024 * 1024;

  // Logs: the request URL may carry anything a client typed (a PAN in a filter), errors may quote
  // stored values; headers (x-api-key, Authorization) are never serialised at all.
  const logger = options.logger.child(
    { component: 'api' },
    {
      serializers: {
        req: (req: FastifyRequest) => ({ method: req.method, url: maskPan(req.url), remoteAddress: req.ip }),
        res: (reply: FastifyReply) => ({ statusCode: reply.statusCode }),
        err: (err: Error & { code?: unknown; statusCode?: unknown }) => ({
          type: err.name,
          message: maskPan(String(err.message)),
          stack: err.stack === undefined ? undefined : maskPan(err.stack),
          code: err.code,
          statusCode: err.statusCode,
        }),
      },
    },
  );

  const app = Fastify({
    loggerInstance: logger,
    // Unknown query parameters and body properties are errors (a typo like ?severty= must not
    // silently widen a query), not silently removed as fastify's default does. Query strings and
    // path parameters are text, so they are coerced (limit=10 -> 10, one rule -> [rule]); JSON
    // bodies are not: {"note": 42} is a 400, not the note "42".
    schemaController: {
      compilersFactory: {
        buildValidator: (externalSchemas, ajvOptions) => {
          const base = { ...ajvOptions?.customOptions, removeAdditional: false, useDefaults: true, allErrors: false } as const;
          const coercing = ajvFactory(externalSchemas, { ...ajvOptions, customOptions: { ...base, coerceTypes: 'array' } } as AjvOptions);
          const strict = ajvFactory(externalSchemas, { ...ajvOptions, customOptions: { ...base, coerceTypes: false } } as AjvOptions);
          return (route) => (route.httpPart === 'body' ? strict(route) : coercing(route));
        },
      },
    },
    schemaErrorFormatter: (errors, dataVar) => formatValidation(errors as never, dataVar),
    // Close idle keep-alive sockets on close(); SSE streams are ended in preClose below.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
  }) as unknown as ApiApp;

  const routeTable: RouteInfo[] = [];
  Object.defineProperty(app, 'routeTable', { value: routeTable, enumerable: false });

  // Default-deny: a route that declares no access needs admin. Documentation routes (swagger-ui
  // registers its own) are public.
  app.addHook('onRoute', (route) => {
    const config = (route.config ??= {}) as { access?: Access };
    if (config.access === undefined) config.access = route.url === '/docs' || route.url.startsWith('/docs/') ? 'public' : 'admin';
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) if (m !== 'HEAD') routeTable.push({ method: m, url: route.url, access: config.access });
  });

  app.decorateRequest('principal', null);

  // Authentication (401) and authorisation (403) before anything else; unknown URLs need a key too,
  // so the route table cannot be probed anonymously.
  app.addHook('onRequest', async (req, reply) => {
    // No route: an unknown path needs a key (the route table cannot be probed anonymously), and so
    // does an unknown method on a path, unless the path is public (405 then, whatever the role).
    const known = req.is404 ? methodsAt(req.url) : undefined;
    const access: Access = req.is404 ? (known?.access === 'public' ? 'public' : 'viewer') : (req.routeOptions.config.access ?? 'admin');
    // Answered here, before body parsing: a QUERY or POST to a path that does not take it must get
    // its 404/405, not a 400/415 about its body.
    if (access === 'public') return req.is404 ? noRoute(req, reply, known) : undefined;
    const presented = extractKey(req.headers);
    const deny = (status: 401 | 403, reason: string, message: string) => {
      metrics.authFailures.inc({ reason });
      if (status === 401) void reply.header('www-authenticate', 'Bearer realm="tillwatch"');
      return reply.code(status).send({ statusCode: status, code: status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', error: status === 401 ? 'Unauthorized' : 'Forbidden', message });
    };
    if (presented.kind === 'missing') return deny(401, 'missing', 'missing API key: send header x-api-key: <key> or Authorization: Bearer <key>');
    if (presented.kind === 'malformed') return deny(401, 'malformed', `malformed credentials: ${presented.reason}`);
    const principal = auth.authenticate(presented.value);
    if (!principal) return deny(401, 'invalid', 'invalid API key');
    if (!roleAllows(principal.role, access)) return deny(403, 'forbidden', `role ${principal.role} may not ${req.method} ${req.routeOptions.url ?? req.url}: requires ${access}`);
    req.principal = principal;
    if (req.is404) return noRoute(req, reply, known);
  });

  // Defence in depth for card data: every JSON body leaves with PAN-like strings masked.
  app.addHook('preSerialization', async (_req, _reply, payload) => maskDeep(payload));

  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.observe({ method: req.method, route: req.routeOptions.url ?? 'unknown', status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      return reply.code(400).send({ statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: err.message });
    }
    if (err instanceof HttpError) {
      return reply.code(err.statusCode).send({ statusCode: err.statusCode, code: err.code, error: STATUS_CODES[err.statusCode] ?? 'Error', message: err.message });
    }
    if (err instanceof CursorError) {
      return reply.code(400).send({ statusCode: 400, code: 'INVALID_CURSOR', error: 'Bad Request', message: err.message });
    }
    if (err instanceof ClickHouseUnavailableError) {
      req.log.warn({ err }, 'ClickHouse unavailable');
      return reply.code(503).header('retry-after', '5').send({ statusCode: 503, code: 'CLICKHOUSE_UNAVAILABLE', error: 'Service Unavailable', message: 'the alert store (ClickHouse) is unavailable; retry later' });
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status < 500) {
      return reply.code(status).send({ statusCode: status, code: err.code ?? 'CLIENT_ERROR', error: STATUS_CODES[status] ?? 'Error', message: maskPan(err.message) });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ statusCode: 500, code: 'INTERNAL', error: 'Internal Server Error', message: 'internal error (logged with the request id)' });
  });

  // Routes by path, for 405 + Allow (RFC 9110 §15.5.6) on a known path called with another method.
  let matchers: { re: RegExp; method: string; access: Access }[] | undefined;
  function methodsAt(url: string): { allow: string[]; access: Access } | undefined {
    matchers ??= routeTable.map((r) => ({ re: patternRegExp(r.url), method: r.method, access: r.access }));
    const path = url.split('?')[0] ?? '';
    const hits = matchers.filter((m) => m.re.test(path));
    if (hits.length === 0) return undefined;
    const allow = new Set(hits.map((h) => h.method));
    // fastify answers HEAD for every GET route (exposeHeadRoutes).
    if (allow.has('GET')) allow.add('HEAD');
    const rank: Access[] = ['public', 'viewer', 'analyst', 'admin'];
    const access = hits.map((h) => h.access).reduce((a, b) => (rank.indexOf(a) <= rank.indexOf(b) ? a : b));
    return { allow: [...allow].sort(), access };
  }

  function noRoute(req: FastifyRequest, reply: FastifyReply, known = methodsAt(req.url)) {
    const path = maskPan(req.url.split('?')[0] ?? '');
    if (known) {
      return reply.code(405).header('allow', known.allow.join(', ')).send({ statusCode: 405, code: 'METHOD_NOT_ALLOWED', error: 'Method Not Allowed', message: `${req.method} is not allowed on ${path}; allowed: ${known.allow.join(', ')}` });
    }
    return reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: `no route ${req.method} ${path}` });
  }

  app.setNotFoundHandler((req, reply) => {
    void noRoute(req, reply);
  });

  for (const s of componentSchemas) app.addSchema(s);

  void app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Tillwatch alert API',
        version: '1',
        // The repository is a private package (package.json "private": true, no licence granted).
        license: { name: 'UNLICENSED (proprietary; not for redistribution)', url: 'https://docs.npmjs.com/cli/v10/configuring-npm/package-json#license' },
        description: 'Alerts, triage, terminals and a live alert stream for risk teams. Authenticate with `x-api-key: <key>` or `Authorization: Bearer <key>`. Roles: viewer (read), analyst (read + triage), admin (everything).',
      },
      servers: [{ url: options.publicUrl ?? '/', description: options.publicUrl ? 'This API' : 'This API (the origin that served this document)' }],
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      tags: [
        { name: 'alerts', description: 'Alerts and the live stream' },
        { name: 'triage', description: 'Acknowledge / resolve / false-positive, with an audit trail' },
        { name: 'terminals', description: 'Terminal health' },
        { name: 'auth', description: 'Keys and roles' },
        { name: 'ops', description: 'Health, readiness, metrics' },
      ],
    },
    // Component schemas keep their $id as name (Alert, Transaction, ...) instead of def-N.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`) },
    // Response descriptions per status, and OpenAPI links (alert list -> triage and history).
    transformObject: (documentObject) => addLinksAndDescriptions((documentObject as { openapiObject: Parameters<typeof addLinksAndDescriptions>[0] }).openapiObject) as never,
  });

  if (options.rateLimit !== false) {
    const rl = options.rateLimit ?? DEFAULT_RATE_LIMIT;
    void app.register(fastifyRateLimit, {
      global: true,
      max: rl.max,
      timeWindow: rl.timeWindowMs,
      // After authentication, so the budget is per API key (several consoles behind one NAT do not
      // share one), and per IP for public routes.
      hook: 'preHandler',
      keyGenerator: (req) => (req.principal ? `key:${req.principal.name}` : `ip:${req.ip}`),
      // Probes and scrapes must keep working when a client misbehaves.
      allowList: (req) => req.routeOptions.config.access === 'public',
      errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: `rate limit exceeded: ${ctx.max} requests per ${ctx.after} per API key; retry in ${Math.ceil(ctx.ttl / 1000)} s` }),
    });
  }

  void app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  void app.register(async (api) => {
    api.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());

    api.get('/healthz', { config: { access: 'public' }, schema: routeSchemas.healthz }, async () => ({ status: 'ok' }));

    api.get('/readyz', { config: { access: 'public' }, schema: routeSchemas.readyz }, async (_req, reply) => {
      try {
        await withTimeout(store.ping(), 2000, 'ClickHouse ping timed out after 2000 ms');
        return { status: 'ready' };
      } catch (e) {
        return reply.code(503).send({ status: 'not ready', reason: maskPan(e instanceof Error ? e.message : String(e)) });
      }
    });

    api.get('/whoami', { config: { access: 'viewer' }, schema: routeSchemas.whoami }, async (req) => req.principal as Principal);

    api.get('/admin/keys', { config: { access: 'admin' }, schema: routeSchemas.adminKeys }, async () => ({ keys: auth.principals.map((p) => ({ name: p.name, role: p.role })) }));

    api.get<{ Querystring: ListQuery }>('/alerts', { config: { access: 'viewer' }, schema: routeSchemas.listAlerts }, async (req, reply) => {
      const q = req.query;
      const filter: AlertFilter = {
        ...(q.rule ? { rules: q.rule } : {}),
        ...(q.severity ? { severities: q.severity as AlertFilter['severities'] } : {}),
        ...(q.status ? { statuses: q.status as AlertStatus[] } : {}),
        ...(q.terminal ? { terminals: q.terminal } : {}),
        ...(q.merchant ? { merchants: q.merchant } : {}),
        ...(q.from !== undefined ? { fromMs: timeParam('from', q.from) } : {}),
        ...(q.to !== undefined ? { toMs: timeParam('to', q.to) } : {}),
      };
      // from is inclusive and to exclusive: to <= from is a valid, empty range (the schema cannot
      // state a relation between two parameters, so the API does not refuse one).
      if (filter.fromMs !== undefined && filter.toMs !== undefined && filter.fromMs >= filter.toMs) {
        if (q.cursor !== undefined) decodeCursor(q.cursor);
        metrics.cache.inc({ result: 'miss' });
        return reply.header('x-cache', 'miss').send({ items: [], next_cursor: null });
      }
      const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
      const limit = q.limit ?? 50;
      const key = JSON.stringify([filter, limit, q.cursor ?? null]);
      // The cache holds the finished body (masked, serialised with the route's response schema):
      // a polled page costs neither ClickHouse nor serialisation again.
      const { value, result } = cache.get(key, async () => {
        const page = await store.listAlerts(filter, { limit, cursor });
        return reply.serialize(maskDeep({ items: page.items, next_cursor: page.next ? encodeCursor(page.next) : null })) as string;
      });
      metrics.cache.inc({ result });
      const body = await value;
      return reply.header('x-cache', result).type('application/json; charset=utf-8').send(body);
    });

    api.get<{ Params: { id: string } }>('/alerts/:id', { config: { access: 'viewer' }, schema: routeSchemas.getAlert }, async (req) => {
      const alert = await mustGetAlert(req.params.id);
      const [evidence, actions] = [await store.evidence(alert), await store.actions(alert)];
      // The fate of each action proposed for it (the second stage's governor; empty before it ran).
      const action_decisions = store.decisions ? await store.decisions(alert) : [];
      // The fleet incident of a per-terminal alert, or an incident's member alerts (the second stage's incident_members).
      const links = store.incident ? await store.incident(alert) : { incident_id: null, members: [], members_total: 0 };
      const found = new Set(evidence.map((t) => t.event_id));
      const notStored = alert.event_ids.filter((e) => !found.has(e));
      // Heartbeat evidence (terminal_offline, upload_backlog, pending gaps) is never a stored
      // transaction: it is named apart, not reported as missing.
      return {
        alert,
        evidence: evidence.map(withMoney),
        missing_evidence: notStored.filter((e) => !isHeartbeatEventId(e)),
        heartbeat_evidence: notStored.filter(isHeartbeatEventId),
        actions,
        action_decisions,
        incident_id: links.incident_id,
        incident_members: links.members,
        incident_members_total: links.members_total,
      };
    });

    api.get<{ Params: { id: string } }>('/alerts/:id/history', { config: { access: 'viewer' }, schema: routeSchemas.history }, async (req) => {
      const alert = await mustGetAlert(req.params.id);
      const entries = await store.history(alert.alert_id);
      return { alert_id: alert.alert_id, status: alert.status, entries };
    });

    for (const action of TRIAGE_ACTIONS) {
      api.post<{ Params: { id: string }; Body: { note: string } }>(
        `/alerts/:id/${action.path}`,
        { config: { access: 'analyst' }, schema: routeSchemas.triage(action.operationId, action.summary) },
        async (req) => {
          if (containsPan(req.body.note)) {
            throw new HttpError(400, 'FST_ERR_VALIDATION', 'body.note looks like it contains a card number (PAN); refer to the card by its token');
          }
          const alert = await mustGetAlert(req.params.id);
          const principal = req.principal as Principal;
          const entry = { status: action.status, actor: principal.name, note: req.body.note, at: now() };
          await store.recordTriage({ alert_id: alert.alert_id, ...entry });
          cache.invalidate();
          metrics.triage.inc({ status: action.status });
          req.log.info({ alert_id: alert.alert_id, status: action.status, actor: principal.name, previous: alert.status }, 'alert triaged');
          return { alert_id: alert.alert_id, previous_status: alert.status, entry };
        },
      );
    }

    api.get<{ Params: { id: string }; Querystring: { recent?: number } }>('/terminals/:id', { config: { access: 'viewer' }, schema: routeSchemas.terminal }, async (req) => {
      const view = await store.terminal(req.params.id, { recent: req.query.recent ?? 20 });
      if (!view) throw new HttpError(404, 'NOT_FOUND', `terminal ${maskPan(req.params.id)} has no stored transactions or alerts`);
      return { ...view, recent_transactions: view.recent_transactions.map(withMoney) };
    });

    api.get<{ Querystring: StreamQuery }>('/stream/alerts', { config: { access: 'viewer' }, schema: routeSchemas.stream }, (req, reply) => {
      streamAlerts(req, reply, req.query);
    });

    registerRulesRoutes(api, options.rules);
  });

  // The analysts' web console at /console (static, public) and the reads only it needs.
  void app.register(async (api) => registerConsole(api, { ch, store, metrics }));

  // ----------------------------------------------------------------------------------------------
  // Server-sent events (https://html.spec.whatwg.org/multipage/server-sent-events.html).

  const streams = new Set<{ end(reason: string): void }>();

  function streamAlerts(req: FastifyRequest, reply: FastifyReply, q: StreamQuery) {
    const match = (a: Alert) =>
      (!q.rule || q.rule.includes(a.rule)) &&
      (!q.severity || q.severity.includes(a.severity)) &&
      (!q.terminal || q.terminal.includes(a.terminal_id)) &&
      (!q.merchant || q.merchant.includes(a.merchant_id));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // retry: reconnection delay hint for EventSource clients.
    res.write(`retry: 5000\n: connected as ${req.principal?.name ?? 'unknown'}\n\n`);
    metrics.sseClients.inc();
    let ended = false;
    const stream = {
      end(reason: string) {
        if (ended) return;
        ended = true;
        unsubscribe();
        clearInterval(heartbeat);
        streams.delete(stream);
        metrics.sseClients.dec();
        metrics.sseDisconnects.inc({ reason });
        if (!res.writableEnded) res.end();
      },
    };
    const send = (chunk: string) => {
      if (ended) return;
      // A client that does not read would make us buffer without bound: cut it off instead.
      if (res.writableLength > sseMaxBuffer) {
        req.log.warn({ buffered: res.writableLength }, 'SSE client too slow; disconnecting');
        stream.end('slow');
        return;
      }
      res.write(chunk);
    };
    const unsubscribe = alertFeed.subscribe((alert) => {
      if (!match(alert)) return;
      const view = toAlertView(maskDeep(alert), undefined);
      // One data line: JSON.stringify never emits a raw newline.
      send(`id: ${view.alert_id}\nevent: alert\ndata: ${JSON.stringify(view)}\n\n`);
      metrics.sseEvents.inc();
    });
    const heartbeat = setInterval(() => send(`: ping ${now()}\n\n`), heartbeatMs);
    heartbeat.unref();
    streams.add(stream);
    res.on('close', () => stream.end('client'));
    res.on('error', () => stream.end('error'));
  }

  app.addHook('preClose', async () => {
    for (const s of [...streams]) s.end('shutdown');
  });

  async function mustGetAlert(id: string): Promise<AlertView> {
    const alert = await store.getAlert(id);
    if (!alert) throw new HttpError(404, 'NOT_FOUND', `alert ${maskPan(id)} not found`);
    return alert;
  }

  return app;
}

interface ListQuery {
  rule?: string[];
  severity?: string[];
  status?: string[];
  terminal?: string[];
  merchant?: string[];
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string;
}

interface StreamQuery {
  rule?: string[];
  severity?: string[];
  terminal?: string[];
  merchant?: string[];
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ClickHouseUnavailableError(message)), ms);
    }),
  ]);
}
