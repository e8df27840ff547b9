import { createHash } from 'node:crypto';
import { PatchStrategy, setHeaderOptions, type V1Deployment } from '@kubernetes/client-node';
import type { Pool } from 'pg';
import {
  describeIssues,
  featureGroupSpecSchema,
  type FeatureGroupSpec,
  type GroupRef,
} from '../../core/featuregroup/schema';
import { getGroup, type RegisteredGroup } from '../../core/storage/registry';
import { replayGroup, replayRequestOf } from '../../core/storage/replay';
import type { Logger } from '../../core/logger';
import { compileGroup, groupTables, type CompiledGroup } from '../../core/featuregroup/compiled';
import { writerRoleFor } from '../../core/storage/roles';
import { conditionOf, setCondition, type ConditionInput } from '../conditions';
import { describeDatabaseError } from '../database-errors';
import type { EventRecorder } from '../events';
import { isNotFound, type KubeClients } from '../kube';
import type { ReconcileResult } from '../queue';
import { describeStall, type GroupProgress } from '../progress';
import { formatTime } from '../../core/time';
import {
  ConditionType,
  FINALIZER,
  isTrouble,
  GROUP,
  PLURAL,
  VERSION,
  type Condition,
  type FeatureGroupObject,
  type FeatureGroupStatus,
  type ReplayStatus,
} from '../resource';
import { LastWritten } from './last-written';
import { replayBehind, replayConditions } from './replay-progress';
import { consumerGroupFor } from '../../core/kafka';
import {
  applyCredentials,
  applyDeployment,
  consumerCondition,
  consumerName,
  consumerSelector,
  desiredDeployment,
  type ConsumerSettings,
} from './consumer';
import { recordTransitions, writeStatus, type StatusWrite } from './status';
import { finalizeStore, reconcileStore, type StoreOutcome } from './store';

export interface ReconcilerDeps {
  kube: KubeClients;
  pool: Pool;
  consumer: ConsumerSettings;
  /** Each partition's high watermark (Kafka admin): what a replay must catch up with. */
  highWatermarks: (topic: string) => Promise<Map<number, number>>;
  /** Where a replay starts in each partition of a topic (Kafka admin). */
  replayOffsets: (topic: string, from: 'earliest' | number) => Promise<Map<number, number>>;
  /** The consumer's DATABASE_URL for a given writer role and password. */
  consumerDatabaseUrl: (role: string, password: string) => string;
  /** The writer password of a group (derivedWriterPassword under the operator's key). */
  writerPassword: (group: { namespace: string; name: string; uid: string }) => string;
  /** The group's consumption as last observed (lag, stalled partitions), when it has been. */
  progress?: (key: string) => GroupProgress | undefined;
  /** Reads of the objects the controller watches, from its informers' caches. */
  cache: ObjectReads;
  events: EventRecorder;
  /** Counts each time the store is applied (DDL, grants): a resync of unchanged groups adds none. */
  onStoreApplied?: () => void;
  log: Logger;
}

export interface ObjectReads {
  group(namespace: string, name: string): Promise<FeatureGroupObject | undefined>;
  deployment(namespace: string, name: string): Promise<V1Deployment | undefined>;
}

/** While a consumer rolls out nothing else wakes us reliably on every cluster: look again soon. */
const PROGRESS_REQUEUE_MS = 5_000;
/** How often a replay's progress is looked at until it has caught up. */
const REPLAY_REQUEUE_MS = 1_000;
/**
 * A status computed from a cached copy older than our own last write was refused: look again once
 * the watch has brought the newer copy (status-only changes do not queue the group themselves).
 */
const RETRY_STALE: ReconcileResult = { requeueAfterMs: 200 };

/** What a status write reports besides conditions; what is left out keeps its value in status. */
interface Observed {
  table?: string | undefined;
  progress?: GroupProgress | undefined;
  /** Conditions whose event is recorded again even if unchanged: a failure that recurs. */
  repeated?: ReadonlySet<ConditionType>;
  /** What the store now holds, when it was applied or confirmed. */
  appliedHash?: string;
  deployment?: V1Deployment | undefined;
  replay?: ReplayStatus | undefined;
}

/**
 * One FeatureGroup, moved one step toward its spec: level-triggered and idempotent, from what the
 * API server and Postgres say now, never from the event that woke it.
 */
export class FeatureGroupReconciler {
  /**
   * The store each group was last applied with by this process. Status records the same, but the
   * informer's copy of our own status write can lag behind the next reconcile, which would then
   * apply again for nothing.
   */
  private readonly applied = new LastWritten<{ hash: string; condition: ConditionInput }>();
  /** Replays this process began or last measured, for the same reason. */
  private readonly replays = new LastWritten<ReplayStatus>();

  constructor(private readonly deps: ReconcilerDeps) {}

  /** The StoreReady condition of a store already applied with `hash`, from status or from memory. */
  private appliedStore(group: FeatureGroupObject, hash: string): ConditionInput | undefined {
    const { namespace, name, uid } = group.metadata;
    const remembered = this.applied.get(`${namespace}/${name}`, uid);
    if (remembered?.hash === hash) return remembered.condition;
    const condition = conditionOf(group.status?.conditions, ConditionType.StoreReady);
    return group.status?.appliedHash === hash && condition?.status === 'True' ? condition : undefined;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const group = await this.deps.cache.group(namespace, name);
    if (!group) return {};
    if (group.metadata.deletionTimestamp) return this.finalize(group);
    if (!group.metadata.finalizers?.includes(FINALIZER)) {
      // The watch event of this patch queues the group again, with the finalizer in the cache.
      await this.patchFinalizers(group, [...(group.metadata.finalizers ?? []), FINALIZER]);
      return {};
    }

    const generation = group.metadata.generation;
    const parsed = featureGroupSpecSchema.safeParse(group.spec);
    if (!parsed.success) {
      const invalid: ConditionInput = {
        type: ConditionType.StoreReady,
        status: 'False',
        reason: 'InvalidSpec',
        message: describeIssues(parsed.error),
      };
      return (await this.updateStatus(group, [invalid], {})) === 'stale' ? RETRY_STALE : {};
    }
    const spec = parsed.data;
    const ref: GroupRef = { namespace, name };
    const compiled = compileGroup(ref, spec);
    const { objects } = this.deps.kube;

    const password = this.deps.writerPassword({ namespace, name, uid: group.metadata.uid });
    await applyCredentials(objects, group, password, this.deps.consumerDatabaseUrl(writerRole(ref), password));
    const appliedHash = storeHash(spec, password);
    let store: StoreOutcome;
    let registered: RegisteredGroup | undefined;
    try {
      registered = await getGroup(this.deps.pool, ref);
      const applied = this.appliedStore(group, appliedHash);
      if (applied && registered) {
        // What was applied is what is asked for, and the registry has it: no DDL, no grants, no
        // ALTER ROLE. A spec edit, new credentials or a lost registry row applies again.
        store = { condition: applied, table: registered.table, applied: true };
      } else {
        store = await reconcileStore(this.deps.pool, compiled, generation, password);
        this.deps.onStoreApplied?.();
        if (store.applied) {
          registered = await getGroup(this.deps.pool, ref);
          this.applied.set(key, group.metadata.uid, { hash: appliedHash, condition: store.condition });
        }
      }
    } catch (error) {
      const failure = describeDatabaseError(error);
      this.deps.log.warn({ err: error, group: key, reason: failure.reason }, 'store reconcile failed');
      await this.updateStatus(group, [{ type: ConditionType.StoreReady, status: 'False', ...failure }], {
        repeated: new Set([ConditionType.StoreReady]),
      });
      throw error;
    }
    const replay = store.applied && registered ? await this.replayIfAsked(group, compiled, registered) : undefined;
    if (store.applied)
      await applyDeployment(objects, desiredDeployment(group, spec, this.deps.consumer, replay?.epoch ?? 0, password));
    const deployment = await this.deps.cache.deployment(namespace, consumerName(name));
    const consumer = consumerCondition(deployment);
    const progress = this.deps.progress?.(key);
    const stalled = progress && stalledCondition(progress);
    const conditions = [store.condition, consumer, ...(replay?.condition ? [replay.condition] : [])];
    let replaying = replay ? this.currentReplay(group, replay.began, replay.epoch) : undefined;
    if (replaying && !replaying.completedAt) {
      const behind = await replayBehind(this.deps.pool, consumerGroupFor(ref), spec.source.topic, replaying);
      conditions.push(...replayConditions(replaying, behind));
      const total = [...behind.values()].reduce((a, b) => a + b, 0);
      replaying = {
        ...replaying,
        behind: total,
        ...(total === 0 ? { completedAt: formatTime(Date.now()) } : {}),
      };
      this.replays.set(key, group.metadata.uid, replaying);
    } else if (replaying && !replay?.condition) {
      // Caught up already: said again from what is known, never left to what the cache holds (a
      // refused new request's Replayed condition stands instead).
      conditions.push(...replayConditions(replaying, new Map()));
    }
    if (stalled) conditions.push(stalled);
    const written = await this.updateStatus(group, conditions, {
      table: store.table,
      progress,
      ...(store.applied ? { appliedHash } : {}),
      deployment,
      replay: replaying,
    });
    if (written === 'stale') return RETRY_STALE;
    if (replaying && !replaying.completedAt) return { requeueAfterMs: REPLAY_REQUEUE_MS };
    return consumer.status === 'True' ? {} : { requeueAfterMs: PROGRESS_REQUEUE_MS };
  }

  /**
   * Carries out a replay asked for by annotation, once per request: the group's state is rebuilt
   * from Kafka (see replayGroup), and the consumer pods roll onto the new epoch.
   */
  private async replayIfAsked(
    group: FeatureGroupObject,
    compiled: CompiledGroup,
    registered: RegisteredGroup,
  ): Promise<{ epoch: number; condition?: ConditionInput; began?: ReplayStatus }> {
    const { ref, spec } = compiled;
    const request = replayRequestOf(group.metadata.annotations);
    if (!request) return { epoch: registered.replayEpoch };
    if ('error' in request)
      return {
        epoch: registered.replayEpoch,
        condition: {
          type: ConditionType.Replayed,
          status: 'False',
          reason: 'InvalidReplayRequest',
          message: request.error,
        },
      };
    if (registered.replayToken === request.token) return { epoch: registered.replayEpoch };
    // The targets first: what the topic holds now is what the replay must have stored to be done.
    const targets = await this.deps.highWatermarks(spec.source.topic);
    const offsets = await this.deps.replayOffsets(spec.source.topic, request.from);
    const { epoch, replayed } = await replayGroup(this.deps.pool, compiled, offsets, request.token);
    if (!replayed) return { epoch };
    this.deps.log.info(
      { group: `${ref.namespace}/${ref.name}`, from: request.token, epoch, partitions: offsets.size },
      'feature group replayed from Kafka',
    );
    const began: ReplayStatus = {
      id: request.token,
      epoch,
      description: `from ${request.from === 'earliest' ? 'the earliest records' : new Date(request.from).toISOString()} (request ${request.token})`,
      targets: [...targets].sort(([a], [b]) => a - b).map(([partition, offset]) => ({ partition, offset })),
      startedAt: formatTime(Date.now()),
    };
    return { epoch, began };
  }

  /**
   * The replay in progress, if one is: begun by this reconcile, remembered by this process (the
   * informer's copy of our status write may lag), or recorded in status by an earlier leader.
   */
  private currentReplay(
    group: FeatureGroupObject,
    began: ReplayStatus | undefined,
    epoch: number,
  ): ReplayStatus | undefined {
    const key = `${group.metadata.namespace}/${group.metadata.name}`;
    const known = began ?? this.replays.get(key, group.metadata.uid) ?? group.status?.replay;
    return known?.epoch === epoch ? known : undefined;
  }

  private async finalize(group: FeatureGroupObject): Promise<ReconcileResult> {
    if (!group.metadata.finalizers?.includes(FINALIZER)) return {};
    const { namespace, name } = group.metadata;
    const parsed = featureGroupSpecSchema.safeParse(group.spec);
    const policy = parsed.success ? parsed.data.deletionPolicy : 'Retain';
    // Owner references let the cluster's garbage collector remove the Deployment; deleting it here
    // as well stops consumers before their table goes, and works where no collector runs.
    await this.deps.kube.apps
      .deleteNamespacedDeployment({ name: consumerName(name), namespace })
      .catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
    await finalizeStore(this.deps.pool, { namespace, name }, policy);
    this.applied.delete(`${namespace}/${name}`);
    this.replays.delete(`${namespace}/${name}`);
    await this.patchFinalizers(
      group,
      (group.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
    );
    this.deps.log.info({ group: `${namespace}/${name}`, deletionPolicy: policy }, 'feature group finalized');
    return {};
  }

  /** Merge patch guarded by resourceVersion: a concurrent writer makes it fail and we retry. */
  private async patchFinalizers(group: FeatureGroupObject, finalizers: string[]): Promise<void> {
    await this.deps.kube.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: group.metadata.namespace,
        name: group.metadata.name,
        body: { metadata: { finalizers, resourceVersion: group.metadata.resourceVersion } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  private async updateStatus(
    group: FeatureGroupObject,
    inputs: ConditionInput[],
    observed: Observed,
  ): Promise<StatusWrite> {
    const { table, progress, repeated = new Set<ConditionType>(), appliedHash, deployment, replay } = observed;
    const generation = group.metadata.generation;
    let conditions: Condition[] = group.status?.conditions ?? [];
    for (const input of inputs) conditions = setCondition(conditions, input, generation);
    // Replayed reports the last replay request; a bad one does not stop the group serving.
    const failing = conditions.filter(
      (c) => c.type !== ConditionType.Ready && c.type !== ConditionType.Replayed && isTrouble(c),
    );
    const ready: ConditionInput =
      failing.length === 0 && conditions.some((c) => c.type === ConditionType.ConsumerReady)
        ? {
            type: ConditionType.Ready,
            status: 'True',
            reason: 'Ready',
            message: 'store provisioned and consumer available',
          }
        : {
            type: ConditionType.Ready,
            status: 'False',
            reason: failing[0]?.reason ?? 'Reconciling',
            message: failing[0]?.message ?? 'reconciling',
          };
    conditions = setCondition(conditions, ready, generation);
    const consumption = progress
      ? {
          lag: progress.lag,
          ...(progress.newestEventMs !== undefined ? { newestEventTime: formatTime(progress.newestEventMs) } : {}),
        }
      : {
          ...(group.status?.lag !== undefined ? { lag: group.status.lag } : {}),
          ...(group.status?.newestEventTime ? { newestEventTime: group.status.newestEventTime } : {}),
        };
    const applied = appliedHash ?? group.status?.appliedHash;
    const replicas = deployment?.status?.replicas ?? group.status?.replicas;
    const status: FeatureGroupStatus = {
      observedGeneration: generation,
      ...(table ? { table } : group.status?.table ? { table: group.status.table } : {}),
      ...consumption,
      ...(replay && !replay.completedAt && replay.behind !== undefined ? { lag: replay.behind } : {}),
      ...(applied ? { appliedHash: applied } : {}),
      ...(replay ? { replay } : group.status?.replay ? { replay: group.status.replay } : {}),
      // The scale subresource's view: replicas running, and the selector an HPA counts pods by.
      ...(replicas !== undefined ? { replicas } : {}),
      selector: consumerSelector(group),
      conditions,
    };
    const written = await writeStatus(this.deps.kube.custom, group, status);
    // Only a status the API server took is news: one computed from a stale copy is computed again.
    if (written !== 'stale') await recordTransitions(this.deps.events, group, status, repeated);
    return written;
  }
}

function stalledCondition(progress: GroupProgress): ConditionInput {
  if (progress.stalled.length > 0) {
    return {
      type: ConditionType.Stalled,
      status: 'True',
      reason: 'PartitionStalled',
      message: describeStall(progress.stalled, Date.now()),
    };
  }
  return {
    type: ConditionType.Stalled,
    status: 'False',
    reason: progress.lag > 0 ? 'Progressing' : 'CaughtUp',
    message: `${progress.lag} records behind`,
  };
}

/** What applying the store depends on: the spec and the writer's credentials. */
const storeHash = (spec: FeatureGroupSpec, password: string): string =>
  createHash('sha256')
    .update(JSON.stringify({ spec, credentials: createHash('sha256').update(password).digest('hex') }))
    .digest('hex')
    .slice(0, 32);

/** The same naming the grants use, so the consumer's URL always names the role that was granted. */
const writerRole = (ref: GroupRef): string => writerRoleFor(groupTables(ref).values.name);
