import { createHash } from 'node:crypto';
import {
  PatchStrategy,
  type KubernetesObjectApi,
  type V1Deployment,
  type V1ResourceRequirements,
  type V1Secret,
} from '@kubernetes/client-node';
import type { FeatureGroupSpec } from '../../core/featuregroup/schema';
import {
  FIELD_MANAGER,
  LABELS,
  MANAGED_BY,
  REPLAY_EPOCH_ANNOTATION,
  SPEC_HASH_ANNOTATION,
  type FeatureGroupObject,
} from '../resource';
import type { ConditionInput } from '../conditions';

export interface ConsumerSettings {
  image: string;
  imagePullPolicy: string;
  imagePullSecrets: string[];
  kafkaBrokers: string[];
  logLevel: string;
  /** Where consumer pods reach Postgres; part of the spec hash so a move rolls them. */
  databaseHost: string;
}

const shortHash = (text: string, length = 8): string =>
  createHash('sha256').update(text).digest('hex').slice(0, length);

/** `<name>-consumer`, shortened with a hash where pod names would pass 63 characters. */
export function consumerName(groupName: string): string {
  const name = `${groupName}-consumer`;
  return name.length <= 52 ? name : `${groupName.slice(0, 34).replace(/[-.]+$/, '')}-${shortHash(groupName)}-consumer`;
}

export function secretName(groupName: string): string {
  return `${consumerName(groupName)}-db`;
}

/** Label values are at most 63 characters; longer group names are labelled by hash. */
function groupLabel(groupName: string): string {
  return groupName.length <= 63 ? groupName : shortHash(groupName, 16);
}

function ownerReference(group: FeatureGroupObject) {
  return {
    apiVersion: group.apiVersion,
    kind: group.kind,
    name: group.metadata.name,
    uid: group.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function consumerLabels(group: FeatureGroupObject): Record<string, string> {
  return {
    [LABELS.name]: 'featurestore-consumer',
    [LABELS.instance]: groupLabel(group.metadata.name),
    [LABELS.component]: 'consumer',
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.group]: groupLabel(group.metadata.name),
  };
}

/** The labels the consumer Deployment selects its pods by. */
function selectorLabels(group: FeatureGroupObject): Record<string, string> {
  const labels = consumerLabels(group);
  return { [LABELS.name]: labels[LABELS.name]!, [LABELS.instance]: labels[LABELS.instance]! };
}

/** The same, as the label selector string the scale subresource reports. */
export const consumerSelector = (group: FeatureGroupObject): string =>
  Object.entries(selectorLabels(group))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/**
 * The desired consumer Deployment: pure, so the same inputs always yield the same object.
 * A digest of the writer password is part of the spec hash: new credentials roll the pods, which
 * read them from the Secret only when they start.
 */
export function desiredDeployment(
  group: FeatureGroupObject,
  spec: FeatureGroupSpec,
  settings: ConsumerSettings,
  replayEpoch: number,
  password: string,
): V1Deployment {
  const name = consumerName(group.metadata.name);
  const labels = consumerLabels(group);
  const selector = selectorLabels(group);
  const specHash = shortHash(
    JSON.stringify({
      spec,
      image: settings.image,
      brokers: settings.kafkaBrokers,
      logLevel: settings.logLevel,
      databaseHost: settings.databaseHost,
      credentials: shortHash(password, 16),
    }),
    16,
  );
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: group.metadata.namespace, labels, ownerReferences: [ownerReference(group)] },
    spec: {
      replicas: spec.consumer.replicas,
      selector: { matchLabels: selector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      template: {
        metadata: {
          labels,
          annotations: { [SPEC_HASH_ANNOTATION]: specHash, [REPLAY_EPOCH_ANNOTATION]: String(replayEpoch) },
        },
        spec: {
          terminationGracePeriodSeconds: 45,
          // Consumers never call the Kubernetes API: no token in the pod.
          automountServiceAccountToken: false,
          ...(settings.imagePullSecrets.length
            ? { imagePullSecrets: settings.imagePullSecrets.map((name) => ({ name })) }
            : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          volumes: [{ name: 'tmp', emptyDir: {} }],
          containers: [
            {
              name: 'consumer',
              image: settings.image,
              imagePullPolicy: settings.imagePullPolicy,
              command: ['node', 'dist/services/consumer/main.js'],
              env: [
                { name: 'FEATURE_GROUP', value: `${group.metadata.namespace}/${group.metadata.name}` },
                { name: 'KAFKA_BROKERS', value: settings.kafkaBrokers.join(',') },
                { name: 'LOG_LEVEL', value: settings.logLevel },
                { name: 'PORT', value: '8083' },
                {
                  name: 'DATABASE_URL',
                  valueFrom: { secretKeyRef: { name: secretName(group.metadata.name), key: 'DATABASE_URL' } },
                },
              ],
              ports: [{ name: 'metrics', containerPort: 8083 }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, failureThreshold: 6 },
              resources: resourceRequirements(spec.consumer.resources),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
        },
      },
    },
  };
}

/** Quantities as the API's strings (a manifest may say `cpu: 1`). */
function resourceRequirements(resources: FeatureGroupSpec['consumer']['resources']): V1ResourceRequirements {
  const list = (values: Record<string, string | number> | undefined) =>
    values && Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
  const limits = list(resources.limits);
  const requests = list(resources.requests);
  return { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}) };
}

/** Server-side apply: the operator owns exactly the fields it sets, and reapplying is a no-op. */
export async function applyDeployment(objects: KubernetesObjectApi, deployment: V1Deployment): Promise<V1Deployment> {
  return objects.patch(deployment, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

/**
 * Writes the consumer's credentials Secret by server-side apply. The password is derived (see
 * derivedWriterPassword), so nothing is read back: the operator needs no `get` on Secrets.
 */
export async function applyCredentials(
  objects: KubernetesObjectApi,
  group: FeatureGroupObject,
  password: string,
  databaseUrl: string,
): Promise<void> {
  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretName(group.metadata.name),
      namespace: group.metadata.namespace,
      labels: consumerLabels(group),
      ownerReferences: [ownerReference(group)],
    },
    type: 'Opaque',
    stringData: { password, DATABASE_URL: databaseUrl },
  };
  await objects.patch(secret, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

/** ConsumerReady from what the Deployment reports: all desired replicas updated and available. */
export function consumerCondition(deployment: V1Deployment | undefined): ConditionInput {
  const type = 'ConsumerReady' as const;
  if (!deployment)
    return {
      type,
      status: 'False',
      reason: 'DeploymentMissing',
      message: 'the consumer Deployment does not exist yet',
    };
  const desired = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  const observed = (status.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
  const available = status.availableReplicas ?? 0;
  const updated = status.updatedReplicas ?? 0;
  if (desired === 0)
    return {
      type,
      status: 'True',
      reason: 'ScaledToZero',
      message: 'consumer.replicas is 0: nothing consumes this group',
    };
  if (observed && available >= desired && updated >= desired) {
    return {
      type,
      status: 'True',
      reason: 'Available',
      message: `${available}/${desired} consumer replicas available`,
    };
  }
  return {
    type,
    status: 'False',
    reason: 'Progressing',
    message: `${available}/${desired} consumer replicas available, ${updated} updated`,
  };
}
