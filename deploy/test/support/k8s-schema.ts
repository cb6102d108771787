// A strict decode of the Kubernetes objects in deploy/k8s, in the spirit of `kubectl apply
// --validate=strict` (no cluster here): every field must be one the API type has, with the right
// JSON type. Covers the fields of the kinds this project uses (from the Kubernetes API reference,
// v1.30); a field that is valid upstream but not listed fails loudly and is added here on purpose.
// Without it, a misspelt field (automountServiceAccountTokens, livenesProbe) is silently dropped by
// a lenient apply and the manifest does less than it says.

type Spec =
  | 'string'
  | 'number'
  | 'boolean'
  | 'intOrString'
  /** string -> string */
  | 'map'
  /** resource quantities: string or number values */
  | 'quantities'
  | readonly [Spec]
  | { readonly [field: string]: Spec }
  | { readonly enum: readonly string[] };

const isEnum = (s: Spec): s is { enum: readonly string[] } => typeof s === 'object' && !Array.isArray(s) && Array.isArray((s as { enum?: unknown }).enum);

const META: Spec = { name: 'string', namespace: 'string', labels: 'map', annotations: 'map' };
const LABEL_SELECTOR: Spec = { matchLabels: 'map', matchExpressions: [{ key: 'string', operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: ['string'] }] };
const PROBE: Spec = {
  httpGet: { path: 'string', port: 'intOrString', scheme: { enum: ['HTTP', 'HTTPS'] } },
  tcpSocket: { port: 'intOrString' },
  initialDelaySeconds: 'number',
  periodSeconds: 'number',
  timeoutSeconds: 'number',
  successThreshold: 'number',
  failureThreshold: 'number',
};
const PROTOCOL: Spec = { enum: ['TCP', 'UDP', 'SCTP'] };
const CONTAINER: Spec = {
  name: 'string',
  image: 'string',
  imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
  command: ['string'],
  args: ['string'],
  workingDir: 'string',
  ports: [{ name: 'string', containerPort: 'number', protocol: PROTOCOL }],
  env: [{ name: 'string', value: 'string', valueFrom: { secretKeyRef: { name: 'string', key: 'string', optional: 'boolean' }, configMapKeyRef: { name: 'string', key: 'string', optional: 'boolean' } } }],
  envFrom: [{ prefix: 'string', configMapRef: { name: 'string', optional: 'boolean' }, secretRef: { name: 'string', optional: 'boolean' } }],
  startupProbe: PROBE,
  livenessProbe: PROBE,
  readinessProbe: PROBE,
  resources: { requests: 'quantities', limits: 'quantities' },
  securityContext: {
    allowPrivilegeEscalation: 'boolean',
    readOnlyRootFilesystem: 'boolean',
    runAsNonRoot: 'boolean',
    runAsUser: 'number',
    runAsGroup: 'number',
    privileged: 'boolean',
    capabilities: { drop: ['string'], add: ['string'] },
    seccompProfile: { type: { enum: ['RuntimeDefault', 'Localhost', 'Unconfined'] }, localhostProfile: 'string' },
  },
  volumeMounts: [{ name: 'string', mountPath: 'string', readOnly: 'boolean', subPath: 'string' }],
};
const POD_SPEC: Spec = {
  automountServiceAccountToken: 'boolean',
  serviceAccountName: 'string',
  terminationGracePeriodSeconds: 'number',
  restartPolicy: { enum: ['Always', 'OnFailure', 'Never'] },
  securityContext: {
    runAsNonRoot: 'boolean',
    runAsUser: 'number',
    runAsGroup: 'number',
    fsGroup: 'number',
    seccompProfile: { type: { enum: ['RuntimeDefault', 'Localhost', 'Unconfined'] }, localhostProfile: 'string' },
  },
  topologySpreadConstraints: [{ maxSkew: 'number', topologyKey: 'string', whenUnsatisfiable: { enum: ['DoNotSchedule', 'ScheduleAnyway'] }, labelSelector: LABEL_SELECTOR }],
  containers: [CONTAINER],
  initContainers: [CONTAINER],
  volumes: [{ name: 'string', emptyDir: { sizeLimit: 'intOrString', medium: 'string' }, configMap: { name: 'string' }, secret: { secretName: 'string' } }],
};
const POD_TEMPLATE: Spec = { metadata: META, spec: POD_SPEC };
const NP_PEER: Spec = { podSelector: LABEL_SELECTOR, namespaceSelector: LABEL_SELECTOR, ipBlock: { cidr: 'string', except: ['string'] } };
const NP_PORT: Spec = { protocol: PROTOCOL, port: 'intOrString', endPort: 'number' };
const HPA_SCALING: Spec = {
  stabilizationWindowSeconds: 'number',
  selectPolicy: { enum: ['Max', 'Min', 'Disabled'] },
  policies: [{ type: { enum: ['Pods', 'Percent'] }, value: 'number', periodSeconds: 'number' }],
};

const top = (spec: Record<string, Spec>): Spec => ({ apiVersion: 'string', kind: 'string', metadata: META, ...spec });

/** kind -> [apiVersion, schema]. */
const KINDS: Record<string, readonly [string, Spec]> = {
  Namespace: ['v1', top({})],
  ConfigMap: ['v1', top({ data: 'map', immutable: 'boolean' })],
  Secret: ['v1', top({ type: 'string', data: 'map', stringData: 'map', immutable: 'boolean' })],
  Service: [
    'v1',
    top({
      spec: {
        type: { enum: ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] },
        clusterIP: 'string',
        selector: 'map',
        ports: [{ name: 'string', port: 'number', targetPort: 'intOrString', protocol: PROTOCOL }],
      },
    }),
  ],
  Deployment: [
    'apps/v1',
    top({
      spec: {
        replicas: 'number',
        revisionHistoryLimit: 'number',
        minReadySeconds: 'number',
        selector: LABEL_SELECTOR,
        strategy: { type: { enum: ['RollingUpdate', 'Recreate'] }, rollingUpdate: { maxSurge: 'intOrString', maxUnavailable: 'intOrString' } },
        template: POD_TEMPLATE,
      },
    }),
  ],
  Job: ['batch/v1', top({ spec: { backoffLimit: 'number', ttlSecondsAfterFinished: 'number', activeDeadlineSeconds: 'number', template: POD_TEMPLATE } })],
  PodDisruptionBudget: ['policy/v1', top({ spec: { minAvailable: 'intOrString', maxUnavailable: 'intOrString', selector: LABEL_SELECTOR } })],
  HorizontalPodAutoscaler: [
    'autoscaling/v2',
    top({
      spec: {
        scaleTargetRef: { apiVersion: 'string', kind: 'string', name: 'string' },
        minReplicas: 'number',
        maxReplicas: 'number',
        metrics: [
          {
            type: { enum: ['Resource', 'Pods', 'Object', 'External', 'ContainerResource'] },
            resource: { name: 'string', target: { type: { enum: ['Utilization', 'AverageValue', 'Value'] }, averageUtilization: 'number', averageValue: 'intOrString', value: 'intOrString' } },
          },
        ],
        behavior: { scaleUp: HPA_SCALING, scaleDown: HPA_SCALING },
      },
    }),
  ],
  NetworkPolicy: [
    'networking.k8s.io/v1',
    top({
      spec: {
        podSelector: LABEL_SELECTOR,
        policyTypes: [{ enum: ['Ingress', 'Egress'] }],
        ingress: [{ from: [NP_PEER], ports: [NP_PORT] }],
        egress: [{ to: [NP_PEER], ports: [NP_PORT] }],
      },
    }),
  ],
};

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function check(value: unknown, spec: Spec, at: string, errors: string[]): void {
  const expect = (ok: boolean, what: string) => {
    if (!ok) errors.push(`${at}: expected ${what}, got ${typeName(value)}`);
    return ok;
  };
  if (spec === 'string' || spec === 'number' || spec === 'boolean') {
    expect(typeof value === spec, spec);
    return;
  }
  if (spec === 'intOrString') {
    expect(typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value)), 'integer or string');
    return;
  }
  if (spec === 'map' || spec === 'quantities') {
    if (!expect(typeName(value) === 'object', 'object')) return;
    for (const [k, v] of Object.entries(value as object))
      if (!(typeof v === 'string' || (spec === 'quantities' && typeof v === 'number'))) errors.push(`${at}.${k}: expected string, got ${typeName(v)}`);
    return;
  }
  if (Array.isArray(spec)) {
    if (!expect(Array.isArray(value), 'array')) return;
    (value as unknown[]).forEach((v, i) => check(v, spec[0] as Spec, `${at}[${i}]`, errors));
    return;
  }
  if (isEnum(spec)) {
    if (expect(typeof value === 'string', 'string') && !spec.enum.includes(value as string)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${spec.enum.join(', ')}`);
    return;
  }
  if (!expect(typeName(value) === 'object', 'object')) return;
  const fields = spec as Record<string, Spec>;
  for (const [k, v] of Object.entries(value as object)) {
    const path = at === '' ? k : `${at}.${k}`;
    const sub = fields[k];
    if (sub === undefined) errors.push(`${path}: unknown field`);
    else check(v, sub, path, errors);
  }
}

/** Errors of a strict decode of one object (empty: it decodes). */
export function decodeK8s(obj: unknown): string[] {
  const o = obj as { apiVersion?: string; kind?: string };
  const known = KINDS[o.kind ?? ''];
  if (!known) return [`kind ${o.kind} (${o.apiVersion}) is not one this decoder knows`];
  const [apiVersion, spec] = known;
  const errors: string[] = [];
  if (o.apiVersion !== apiVersion) errors.push(`apiVersion: ${o.kind} is ${apiVersion}, not ${o.apiVersion}`);
  check(obj, spec, '', errors);
  return errors;
}
