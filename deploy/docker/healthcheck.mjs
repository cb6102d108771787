/* global process, console, fetch, AbortSignal -- Node globals */
// Docker HEALTHCHECK for the service images (deploy/docker/Dockerfile): GET /healthz on this
// container's own HTTP_PORT; exit 0 on 2xx, 1 otherwise. Node rather than curl/wget, which
// node:24-slim does not ship. Liveness only: /readyz is for orchestrators that route traffic.
const port = process.env.HTTP_PORT;
if (!port) {
  console.error('healthcheck: HTTP_PORT is not set');
  process.exit(1);
}
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2500) });
  await res.arrayBuffer();
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthcheck: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
