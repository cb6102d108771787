// /metrics, /healthz and /readyz for a service. node:http rather than a framework: the stream
// services have exactly three routes and should not carry a web stack.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface OpsServerOptions {
  registry: Registry;
  /** Liveness: the process is not wedged (event loop answers). */
  healthy?: () => boolean;
  /** Readiness: connected, partitions restored, able to do its work. */
  ready: () => boolean | { ready: boolean; detail?: unknown };
  host: string;
  port: number;
}

export interface OpsServer {
  listen(): Promise<{ url: string }>;
  close(): Promise<void>;
  readonly server: Server;
}

export function createOpsServer(o: OpsServerOptions): OpsServer {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      o.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
      );
      return;
    }
    if (path === '/healthz') {
      const ok = o.healthy ? o.healthy() : true;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'unhealthy' }));
      return;
    }
    if (path === '/readyz') {
      const r = o.ready();
      const { ready, detail } = typeof r === 'boolean' ? { ready: r, detail: undefined } : r;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ready' : 'not ready', detail }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found', routes: ['/metrics', '/healthz', '/readyz'] }));
  });
  return {
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, o.host, () => {
          const a = server.address() as AddressInfo;
          resolve({ url: `http://${o.host}:${a.port}` });
        });
      }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
