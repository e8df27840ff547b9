import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
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
