// The environment variables Tillwatch services read (packages/config and the services' main.ts).
// Deploy files may set only these on Tillwatch containers: a misspelt name would be ignored
// silently and the service would fall back to a default (often 127.0.0.1).
export const DOCUMENTED_ENV = new Set([
  'KAFKA_BROKERS',
  'KAFKA_CLIENT_ID',
  'KAFKA_SSL',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'TOPIC_PARTITIONS',
  'TOPIC_REPLICATION_FACTOR',
  'SCHEMA_REGISTRY_URL',
  'SCHEMA_REGISTRY_USERNAME',
  'SCHEMA_REGISTRY_PASSWORD',
  'CLICKHOUSE_URL',
  'CLICKHOUSE_DATABASE',
  'CLICKHOUSE_USER',
  'CLICKHOUSE_PASSWORD',
  'CLICKHOUSE_PATH',
  'HTTP_HOST',
  'HTTP_PORT',
  'LOG_LEVEL',
  'TILLWATCH_RULES',
  'DETECTOR_GROUP_ID',
  'SINK_GROUP_ID',
  'STAGE_GROUP_ID',
  'DETECTOR_STAGE',
  'API_KEYS',
  'API_READ_MODEL',
  'API_READ_MODEL_MAX_ALERTS',
  'API_READ_MODEL_ROWS_MB',
  'API_OPS_PORT',
  // Node's own: heap bound, set next to a container memory limit.
  'NODE_OPTIONS',
]);

/**
 * The long-running services and their default HTTP_PORT (/healthz, /readyz; the api's public API).
 * The second stage (`tillwatch stage`: fleet incidents and the action governor, the only writer of
 * pos.actions.*) is one of them: it is scraped and alerted on like the others.
 */
export const SERVICE_PORTS = { detector: 9464, sink: 9465, api: 8080, stage: 9467 } as const;
export type ServiceName = keyof typeof SERVICE_PORTS;
export const SERVICES = Object.keys(SERVICE_PORTS) as ServiceName[];

/**
 * Where Prometheus scrapes /metrics: the HTTP_PORT of the detector, the sink and the stage, the
 * api's ops port (API_OPS_PORT; its public HTTP_PORT serves no /metrics).
 */
export const METRICS_PORTS = { detector: 9464, sink: 9465, api: 9466, stage: 9467 } as const satisfies Record<ServiceName, number>;

/** The second stage's HTTP_PORT = its metrics and health port. */
export const STAGE_PORT = SERVICE_PORTS.stage;

/**
 * The image (Dockerfile target, k8s image name) each service runs: the stage has no image of its
 * own, it runs `tillwatch stage` in the detector's (deploy/k8s/stage.yaml, compose `stage`).
 */
export const IMAGE_OF = { detector: 'detector', sink: 'sink', api: 'api', stage: 'detector' } as const satisfies Record<ServiceName, string>;

/** The services with an image (Dockerfile target) of their own. */
export const IMAGE_SERVICES = SERVICES.filter((s) => IMAGE_OF[s] === s);

/** The one command line every image and manifest runs: node services/cli/bin/tillwatch.js <cmd>. */
export const CLI = ['node', 'services/cli/bin/tillwatch.js'] as const;
