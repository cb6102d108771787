// Paths of the deploy files under test, from this file's location (works from any cwd).
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const deployDir = path.join(repoRoot, 'deploy');
export const grafanaDir = path.join(deployDir, 'grafana');
export const dashboardsDir = path.join(grafanaDir, 'dashboards');
export const prometheusDir = path.join(deployDir, 'prometheus');
export const k8sDir = path.join(deployDir, 'k8s');
export const dockerDir = path.join(deployDir, 'docker');
export const migrationsDir = path.join(repoRoot, 'schemas', 'clickhouse');
