import { isDeepStrictEqual } from 'node:util';
import type { CustomObjectsApi } from '@kubernetes/client-node';
import type { EventRecorder, EventType } from '../events';
import { conditionOf } from '../conditions';
import {
  ConditionType,
  GROUP,
  isTrouble,
  PLURAL,
  VERSION,
  type Condition,
  type FeatureGroupObject,
  type FeatureGroupStatus,
} from '../resource';
import { isConflict, isNotFound } from '../kube';

/**
 * The status a write would not change. Key order is not meaning: the API server may return keys
 * in another order than we wrote them.
 */
const sameStatus = (a: FeatureGroupStatus | undefined, b: FeatureGroupStatus): boolean =>
  isDeepStrictEqual(JSON.parse(JSON.stringify(a ?? {})), JSON.parse(JSON.stringify(b)));

export type StatusWrite = 'unchanged' | 'written' | 'stale';

/**
 * Replaces status through the status subresource (controller-runtime's Status().Update()), only
 * when it changed, so a resync writes nothing.
 *
 * The write is guarded by the resourceVersion of the object the status was computed from. A
 * reconcile reads the informer's cache, which can still hold the object from before our own last
 * write: a status computed from it would put back what that write replaced (a replay's finished
 * conditions, for one). The API server refuses it ('stale'), and the reconcile runs again on a
 * fresher copy. A replace rather than a merge patch, so that a field the new status leaves out is
 * gone, not kept from the old one.
 */
export async function writeStatus(
  custom: CustomObjectsApi,
  group: FeatureGroupObject,
  status: FeatureGroupStatus,
): Promise<StatusWrite> {
  if (sameStatus(group.status, status)) return 'unchanged';
  try {
    await custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: group.metadata.namespace,
      name: group.metadata.name,
      body: { ...group, status },
    });
  } catch (error) {
    if (isConflict(error)) return 'stale';
    if (!isNotFound(error)) throw error;
  }
  return 'written';
}

/** Reasons of a condition on its way to health: worth a Normal event, never a Warning. */
const PROGRESS_REASONS: ReadonlySet<string> = new Set(['Progressing', 'DeploymentMissing', 'Reconciling', 'Replaying']);

/**
 * Warning only when a person has something to do: a refused spec, an unreachable database, a
 * stalled partition, a bad replay request. Rollouts, replays and Ready itself are Normal (Ready
 * mirrors the condition that failed, which already warned).
 */
export function eventTypeFor(condition: Condition): EventType {
  if (condition.type === ConditionType.Ready || PROGRESS_REASONS.has(condition.reason)) return 'Normal';
  return isTrouble(condition) ? 'Warning' : 'Normal';
}

/**
 * A Kubernetes Event on the group for each condition that flipped, as `kubectl describe` shows,
 * and for each of `repeated` even when it did not: a failure that recurs on every retry raises
 * its event's count.
 */
export async function recordTransitions(
  recorder: EventRecorder,
  group: FeatureGroupObject,
  next: FeatureGroupStatus,
  repeated: ReadonlySet<ConditionType> = new Set(),
): Promise<void> {
  for (const condition of next.conditions ?? []) {
    const before = conditionOf(group.status?.conditions, condition.type);
    const flipped = before?.status !== condition.status || before.reason !== condition.reason;
    if (!flipped && !repeated.has(condition.type)) continue;
    await recorder.record(
      group,
      eventTypeFor(condition),
      condition.reason,
      `${condition.type}=${condition.status}: ${condition.message}`,
    );
  }
}
