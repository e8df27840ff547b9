import { PatchStrategy, setHeaderOptions, type CoreV1Api, type CustomObjectsApi } from '@kubernetes/client-node';
import type { Logger } from '../../core/logger';
import { conditionOf } from '../conditions';
import { GROUP, isTrouble, PLURAL, VERSION, type FeatureGroupObject, type FeatureGroupStatus } from '../resource';
import { isNotFound } from '../kube';

const sameStatus = (a: FeatureGroupStatus | undefined, b: FeatureGroupStatus): boolean =>
  JSON.stringify(a ?? {}) === JSON.stringify(b);

/** Writes status through the status subresource, only when it changed (no write storms on resync). */
export async function writeStatus(
  custom: CustomObjectsApi,
  group: FeatureGroupObject,
  status: FeatureGroupStatus,
): Promise<boolean> {
  if (sameStatus(group.status, status)) return false;
  try {
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: group.metadata.namespace,
        name: group.metadata.name,
        body: { status },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  return true;
}

/** A Kubernetes Event on the group for each condition that flipped, as `kubectl describe` shows. */
export async function recordTransitions(
  core: CoreV1Api,
  group: FeatureGroupObject,
  next: FeatureGroupStatus,
  log: Logger,
): Promise<void> {
  for (const condition of next.conditions ?? []) {
    const before = conditionOf(group.status?.conditions, condition.type);
    if (before?.status === condition.status && before.reason === condition.reason) continue;
    const now = new Date();
    await core
      .createNamespacedEvent({
        namespace: group.metadata.namespace,
        body: {
          metadata: { generateName: `${group.metadata.name}.`, namespace: group.metadata.namespace },
          involvedObject: {
            apiVersion: group.apiVersion,
            kind: group.kind,
            name: group.metadata.name,
            namespace: group.metadata.namespace,
            uid: group.metadata.uid,
          },
          type: isTrouble(condition) ? 'Warning' : 'Normal',
          reason: condition.reason,
          message: `${condition.type}=${condition.status}: ${condition.message}`,
          source: { component: 'featurestore-operator' },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((error: unknown) => log.warn({ err: error }, 'could not record event'));
  }
}
