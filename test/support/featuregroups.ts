/**
 * FeatureGroups as the tests read them back from the API server: typed independently of the
 * operator's own types (operator/resource.ts), so an assertion checks what was written, not what
 * the operator meant to write.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';

export const FEATURE_GROUP_API = { group: 'featurestore.dev', version: 'v1alpha1', plural: 'featuregroups' } as const;

export interface ReadCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface FeatureGroupResource {
  metadata: { name: string; namespace: string; uid: string; generation: number; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: {
    observedGeneration?: number;
    table?: string;
    replicas?: number;
    selector?: string;
    lag?: number;
    newestEventTime?: string;
    replay?: { id: string; epoch: number; behind?: number; completedAt?: string };
    conditions?: ReadCondition[];
  };
}

export const readFeatureGroup = async (
  custom: CustomObjectsApi,
  namespace: string,
  name: string,
): Promise<FeatureGroupResource> =>
  (await custom.getNamespacedCustomObject({ ...FEATURE_GROUP_API, namespace, name })) as FeatureGroupResource;

export const listFeatureGroups = async (custom: CustomObjectsApi, namespace: string): Promise<FeatureGroupResource[]> =>
  ((await custom.listNamespacedCustomObject({ ...FEATURE_GROUP_API, namespace })) as { items: FeatureGroupResource[] })
    .items;

export const conditionOf = (fg: FeatureGroupResource, type: string): ReadCondition | undefined =>
  fg.status?.conditions?.find((c) => c.type === type);

/** Ready=True for the generation the group has now. */
export const isReadyNow = (fg: FeatureGroupResource): boolean =>
  fg.status?.observedGeneration === fg.metadata.generation && conditionOf(fg, 'Ready')?.status === 'True';

/** What a group's status says, in one line, for a test that timed out waiting on it. */
export const statusSummary = (fg: FeatureGroupResource): string => {
  const { conditions = [], ...rest } = fg.status ?? {};
  const said = conditions.map((c) => `${c.type}=${c.status}/${c.reason}: ${c.message}`).join('; ');
  return `generation ${fg.metadata.generation}, status ${JSON.stringify(rest)}, conditions: ${said || 'none'}`;
};
