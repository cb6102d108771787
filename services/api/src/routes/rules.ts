// Rules as live data over HTTP (issue 9): GET /rules and GET /rules/history (viewer), PUT /rules
// (admin, the same validation as `tillwatch rules push`), and GET /rules/ids (viewer): the rule ids
// the rules package registers (the console's rule filter; no hard-coded list to keep in step). The rules topic pos.rules.v1 is behind a
// port (RulesBackend): the process wires a follower of the topic (rules-backend.ts), tests a fake.
// Audit: every accepted PUT is a record on pos.rules.v1 naming the API key (pushed_by, via: api,
// pushed_at) - the append-only trail `GET /rules/history` shows - and an info log line with the actor;
// a refused PUT is logged with the actor and the problems.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { RULE_IDS, RulesConfigError } from '@tillwatch/rules';
import { RulesVersionError, type PushRequest, type PushResult, type RulesHistoryEntry, type RulesLedger } from '@tillwatch/rules-live';
import { RulesFormatValues, type RulesFormat } from '@tillwatch/schemas';
import type { Principal } from '../auth.js';
import { noQuery } from '../schemas.js';

export interface RulesBackend {
  /** The ledger of pos.rules.v1 as read so far; throws RulesUnavailableError when it cannot be read. */
  ledger(): Promise<RulesLedger>;
  /** Validates, checks the version, publishes (as pushRulesDocument). */
  push(req: PushRequest): Promise<PushResult>;
}

/** The rules topic is not provisioned, not read yet, or Kafka is unreachable: 503. */
export class RulesUnavailableError extends Error {
  override readonly name = 'RulesUnavailableError';
}

const security: { [label: string]: string[] }[] = [{ apiKey: [] }, { bearer: [] }];
const issue = { type: 'object', properties: { path: { type: 'string' }, problem: { type: 'string' } }, required: ['path', 'problem'] } as const;
const entryProps = {
  version: { type: 'integer', description: 'Rules document version (0: a record that could not be decoded)' },
  status: { type: 'string', enum: ['active', 'superseded', 'rejected', 'duplicate'] },
  pushed_by: { type: 'string', description: 'CLI user or API key name' },
  pushed_at: { type: 'string', format: 'date-time' },
  via: { type: 'string', description: 'cli, api (or anything a direct writer put there)' },
  comment: { type: 'string', nullable: true },
  format: { type: 'string', enum: [...RulesFormatValues], nullable: true },
  offset: { type: 'string', description: 'Offset in pos.rules.v1' },
  problems: { type: 'array', items: issue, description: 'Why a rejected record was refused' },
} as const;
const invalidResponse = {
  type: 'object',
  description: 'The document does not validate (code INVALID_RULES): every problem in issues, each with its key path (as tillwatch rules validate); or the body itself is malformed (FST_ERR_VALIDATION)',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' }, issues: { type: 'array', items: issue } },
  required: ['statusCode', 'error', 'message'],
} as const;

const errorRef = { $ref: 'Error#' } as const;
/** The errors every authenticated route can answer (schemas.ts authErrors), spelled out so the reply types keep their status codes. */
const authErrorRefs = { 400: errorRef, 401: errorRef, 403: errorRef, 429: errorRef, 500: errorRef, 503: errorRef } as const;

export const rulesRouteSchemas = {
  get: {
    operationId: 'getRules',
    tags: ['rules'],
    summary: 'The rules version in force (pos.rules.v1): who pushed it, when, and the document',
    security,
    querystring: noQuery,
    response: {
      200: { type: 'object', properties: { ...entryProps, document: { type: 'string' } }, required: ['version', 'status', 'pushed_by', 'pushed_at', 'via', 'offset', 'document'] },
      ...authErrorRefs,
      404: errorRef,
    },
  },
  history: {
    operationId: 'getRulesHistory',
    tags: ['rules'],
    summary: 'Every record of pos.rules.v1, oldest first, with its status (active, superseded, rejected and why)',
    security,
    querystring: noQuery,
    response: {
      200: { type: 'object', properties: { items: { type: 'array', items: { type: 'object', properties: entryProps, required: ['version', 'status', 'offset', 'problems'] } } }, required: ['items'] },
      ...authErrorRefs,
    },
  },
  ids: {
    operationId: 'getRuleIds',
    tags: ['rules'],
    summary: 'The rule ids this build registers (packages/rules registry, in its order); answered without Kafka',
    description: 'Every detector rule a rules document can configure, whether or not the version in force mentions it (an omitted rule runs with its defaults). Alerts may also carry the second stage\'s rule sync_incident.',
    security,
    querystring: noQuery,
    response: {
      200: { type: 'object', properties: { rules: { type: 'array', items: { type: 'string' } } }, required: ['rules'] },
      ...authErrorRefs,
    },
  },
  put: {
    operationId: 'putRules',
    tags: ['rules'],
    summary: 'Push a new rules version (admin): validated as tillwatch rules push, refused with every problem listed, audit-logged',
    security,
    body: {
      type: 'object',
      additionalProperties: false,
      properties: {
        document: { type: 'string', minLength: 1, maxLength: 1_000_000, description: 'The rules document (YAML or JSON text, with version: N)' },
        format: { type: 'string', enum: [...RulesFormatValues], default: 'yaml' },
        comment: { type: 'string', maxLength: 1000 },
      },
      required: ['document'],
    },
    response: {
      201: {
        type: 'object',
        properties: { version: { type: 'integer' }, previous_version: { type: 'integer', nullable: true }, offset: { type: 'string' }, pushed_by: { type: 'string' }, pushed_at: { type: 'string', format: 'date-time' } },
        required: ['version', 'previous_version', 'offset', 'pushed_by', 'pushed_at'],
      },
      ...authErrorRefs,
      400: invalidResponse,
      409: errorRef,
      413: errorRef,
      415: errorRef,
    },
  },
};

/**
 * PUT /rules's body limit: the document may hold 1,000,000 characters (its schema's maxLength), up to
 * 3 bytes each in UTF-8, plus the comment. The API's default of 1 MiB answered 413 before the schema
 * ran, to valid documents of non-ASCII text and to over-long ones that should get 400.
 */
export const PUT_RULES_BODY_LIMIT = 4 * 1024 * 1024;

const entryView = (e: RulesHistoryEntry) => ({ ...e, pushed_at: new Date(e.pushed_at).toISOString() });

function unavailable(reply: FastifyReply, e: RulesUnavailableError) {
  return reply.code(503).header('retry-after', '5').send({ statusCode: 503, code: 'RULES_UNAVAILABLE', error: 'Service Unavailable', message: e.message });
}

/** Registers the rules routes on the authenticated scope of createApp. Without a backend they answer 503. */
export function registerRulesRoutes(api: FastifyInstance, backend: RulesBackend | undefined): void {
  const ledger = async (): Promise<RulesLedger> => {
    if (!backend) throw new RulesUnavailableError('rules are not served by this API instance (no Kafka configured)');
    return backend.ledger();
  };

  api.get('/rules', { config: { access: 'viewer' }, schema: rulesRouteSchemas.get }, async (_req, reply) => {
    try {
      const a = (await ledger()).active();
      if (!a) return reply.code(404).send({ statusCode: 404, code: 'NO_RULES_VERSION', error: 'Not Found', message: 'no rules version on pos.rules.v1 yet: detectors use TILLWATCH_RULES or the default rules' });
      return { ...entryView(a.entry), document: a.document };
    } catch (e) {
      if (e instanceof RulesUnavailableError) return unavailable(reply, e);
      throw e;
    }
  });

  api.get('/rules/history', { config: { access: 'viewer' }, schema: rulesRouteSchemas.history }, async (_req, reply) => {
    try {
      return { items: (await ledger()).history().map(entryView) };
    } catch (e) {
      if (e instanceof RulesUnavailableError) return unavailable(reply, e);
      throw e;
    }
  });

  api.get('/rules/ids', { config: { access: 'viewer' }, schema: rulesRouteSchemas.ids }, async () => ({ rules: [...RULE_IDS] }));

  api.put<{ Body: { document: string; format?: RulesFormat; comment?: string } }>('/rules', { config: { access: 'admin' }, schema: rulesRouteSchemas.put, bodyLimit: PUT_RULES_BODY_LIMIT }, async (req, reply) => {
    const principal = req.principal as Principal;
    if (!backend) return unavailable(reply, new RulesUnavailableError('rules are not served by this API instance (no Kafka configured)'));
    try {
      const r = await backend.push({ text: req.body.document, format: req.body.format ?? 'yaml', pushedBy: principal.name, via: 'api', comment: req.body.comment ?? null });
      req.log.info({ audit: 'rules.push', actor: principal.name, version: r.version, previous_version: r.previousVersion, offset: r.offset }, 'rules version pushed');
      return reply.code(201).send({ version: r.version, previous_version: r.previousVersion, offset: r.offset, pushed_by: r.record.pushed_by, pushed_at: new Date(r.record.pushed_at).toISOString() });
    } catch (e) {
      if (e instanceof RulesConfigError) {
        req.log.warn({ audit: 'rules.push.refused', actor: principal.name, problems: e.issues }, 'rules push refused: invalid document');
        return reply.code(400).send({ statusCode: 400, code: 'INVALID_RULES', error: 'Bad Request', message: `invalid rules document, ${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}`, issues: e.issues });
      }
      if (e instanceof RulesVersionError) {
        req.log.warn({ audit: 'rules.push.refused', actor: principal.name, version: e.version, active: e.activeVersion }, 'rules push refused: version not greater');
        return reply.code(409).send({ statusCode: 409, code: 'RULES_VERSION_CONFLICT', error: 'Conflict', message: e.message });
      }
      if (e instanceof RulesUnavailableError) return unavailable(reply, e);
      throw e;
    }
  });
}
