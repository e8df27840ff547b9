import { API_GROUP, API_VERSION, KIND } from '../core/featuregroup/schema';

export const GROUP = API_GROUP;
export const VERSION = API_VERSION;
export const PLURAL = 'featuregroups';
export const FINALIZER = `${API_GROUP}/cleanup`;
export const FIELD_MANAGER = 'featurestore-operator';

export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  group: `${API_GROUP}/group`,
} as const;
export const SPEC_HASH_ANNOTATION = `${API_GROUP}/spec-hash`;
/** On consumer pods: the replay epoch they were started for; a replay rolls them. */
export const REPLAY_EPOCH_ANNOTATION = `${API_GROUP}/replay-epoch`;
export const MANAGED_BY = 'featurestore-operator';

export const ConditionType = {
  Ready: 'Ready',
  StoreReady: 'StoreReady',
  ConsumerReady: 'ConsumerReady',
  Replayed: 'Replayed',
  Replaying: 'Replaying',
  Stalled: 'Stalled',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** Conditions whose True means trouble (Kubernetes' "abnormal-true" polarity); for the others False does. */
export const ABNORMAL_TRUE: ReadonlySet<ConditionType> = new Set([ConditionType.Stalled, ConditionType.Replaying]);
export const isTrouble = (condition: { type: ConditionType; status: string }): boolean =>
  ABNORMAL_TRUE.has(condition.type) ? condition.status === 'True' : condition.status === 'False';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

/** The replay last asked for, as carried out: what its progress is measured against. */
export interface ReplayStatus {
  /** The request (replay-from, with #replay-id when given). */
  id: string;
  epoch: number;
  /** Where it starts, for the Replayed message: `from the earliest records (request earliest)`. */
  description: string;
  /** Each partition's high watermark when the replay began: caught up once every one is stored. */
  targets: { partition: number; offset: number }[];
  startedAt: string;
  /** Records still behind the targets, as last observed. */
  behind?: number;
  completedAt?: string;
}

export interface FeatureGroupStatus {
  observedGeneration?: number;
  table?: string;
  /** Records the consumers have not stored yet, over all partitions (as last observed). */
  lag?: number;
  /** The newest event time stored, over all partitions. */
  newestEventTime?: string;
  /** A digest of the spec and credentials the store was last applied with: equal, a resync skips Postgres. */
  appliedHash?: string;
  /** Consumer pods running (the scale subresource's status.replicas). */
  replicas?: number;
  /** The consumer pods' label selector (the scale subresource's, for an HPA). */
  selector?: string;
  replay?: ReplayStatus;
  conditions?: Condition[];
}

/** A FeatureGroup as the API server returns it (spec unvalidated until zod says otherwise). */
export interface FeatureGroupObject {
  apiVersion: string;
  kind: typeof KIND;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation: number;
    resourceVersion: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    annotations?: Record<string, string>;
  };
  spec: unknown;
  status?: FeatureGroupStatus;
}
