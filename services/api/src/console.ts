// The risk analysts' web console (services/api/console/): its static files at /console, public
// (they hold no data; every data call the page makes carries the user's API key and gets the API's
// roles), with a Content-Security-Policy that allows only the package's own scripts and styles
// (no inline script, no eval, Trusted Types on so no string reaches an HTML sink), and the small
// read-only routes only the console needs (console-reads.ts). Registered from app.ts with one call.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ClickHouse } from '@tillwatch/clickhouse';
import type { ApiMetrics } from './metrics.js';
import type { AlertStore } from './store.js';
import { registerConsoleReads } from './console-reads.js';

/** Where the console's files are: plain ES modules, served as they are (no build step). */
export const CONSOLE_DIR = fileURLToPath(new URL('../console/static/', import.meta.url));

/**
 * Only the package's own files; no inline script or style, no eval; `connect-src 'self'` keeps
 * the key from being sent anywhere else; Trusted Types with no policy makes innerHTML & co. throw
 * (https://w3c.github.io/trusted-types/dist/spec/), so stream data can only ever become text.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Every file under dir, read once at start: the set of servable paths is fixed, so no request
 * path is ever joined onto the file system (no traversal to think about).
 */
export function loadConsoleFiles(dir: string = CONSOLE_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const type = TYPES[extname(name)];
        if (!type) continue;
        const body = readFileSync(full);
        files.set(relative(dir, full).split(sep).join('/'), { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
      }
    }
  };
  walk(dir);
  return files;
}

export interface ConsoleOptions {
  ch: ClickHouse;
  store: AlertStore;
  metrics: ApiMetrics;
  /** Folder of the console's files (tests). */
  dir?: string;
}

export function registerConsole(app: FastifyInstance, options: ConsoleOptions): void {
  const files = loadConsoleFiles(options.dir);
  const index = files.get('index.html');
  if (!index) throw new Error(`console: no index.html in ${options.dir ?? CONSOLE_DIR}`);

  const send = (reply: FastifyReply, file: StaticFile, ifNoneMatch: string | undefined) => {
    void reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      // Nothing of the console's address (filters, ids) goes to another site.
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin')
      // Revalidate every time: a new version of the console is picked up at once, cheaply (304).
      .header('cache-control', 'no-cache')
      .header('etag', file.etag);
    if (ifNoneMatch === file.etag) return reply.code(304).send();
    return reply.type(file.type).send(file.body);
  };

  const hide = { hide: true } as const;
  app.get('/console', { config: { access: 'public' }, schema: hide }, (_req, reply) => reply.redirect('/console/', 302));
  app.get<{ Params: { '*': string } }>('/console/*', { config: { access: 'public' }, schema: hide }, (req, reply) => {
    const path = req.params['*'];
    const file = path.startsWith('assets/') ? files.get(path) : undefined;
    if (file) return send(reply, file, req.headers['if-none-match']);
    // The console's own pages (/console/alerts/<id>, ...) are routes of the page, not files.
    if (path === '' || /^(alerts|terminals|merchants)\/[^/]+$/.test(path)) return send(reply, index, req.headers['if-none-match']);
    return reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no such console file' });
  });

  registerConsoleReads(app, options);
}
