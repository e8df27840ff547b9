import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Pool } from 'pg';
import { describeIssues, featureGroupSpecSchema, type GroupRef } from '../../core/featuregroup/schema';
import { getGroup } from '../../core/storage/registry';
import { replayGroup, replayRequestOf } from '../../core/storage/replay';
import type { Logger } from '../../core/logger';
import { compileGroup, groupTables, type CompiledGroup } from '../../core/featuregroup/compiled';
import { writerRoleFor } from '../../core/storage/roles';
import { setCondition, type ConditionInput } from '../conditions';
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
} from '../resource';
import {
  applyCredentials,
  applyDeployment,
  consumerCondition,
  consumerName,
  desiredDeployment,
  readDeployment,
  type ConsumerSettings,
} from './consumer';
import { recordTransitions, writeStatus } from './status';
import { finalizeStore, reconcileStore } from './store';

export interface ReconcilerDeps {
  kube: KubeClients;
  pool: Pool;
  consumer: ConsumerSettings;
  /** Where a replay starts in each partition of a topic (Kafka admin). */
  replayOffsets: (topic: string, from: 'earliest' | number) => Promise<Map<number, number>>;
  /** The consumer's DATABASE_URL for a given writer role and password. */
  consumerDatabaseUrl: (role: string, password: string) => string;
  /** The writer password of a group (derivedWriterPassword under the operator's key). */
  writerPassword: (group: { namespace: string; name: string; uid: string }) => string;
  /** The group's consumption as last observed (lag, stalled partitions), when it has been. */
  progress?: (key: string) => GroupProgress | undefined;
  log: Logger;
}

/** While a consumer rolls out nothing else wakes us reliably on every cluster: look again soon. */
const PROGRESS_REQUEUE_MS = 5_000;

/**
 * One FeatureGroup, moved one step toward its spec: level-triggered and idempotent, from what the
 * API server and Postgres say now, never from the event that woke it.
 */
export class FeatureGroupReconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const group = await this.get(namespace, name);
    if (!group) return {};
    if (group.metadata.deletionTimestamp) return this.finalize(group);
    if (!group.metadata.finalizers?.includes(FINALIZER)) {
      await this.patchFinalizers(group, [...(group.metadata.finalizers ?? []), FINALIZER]);
      return { requeueAfterMs: 0 };
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
      await this.updateStatus(group, [invalid], undefined);
      return {};
    }
    const spec = parsed.data;
    const ref: GroupRef = { namespace, name };
    const compiled = compileGroup(ref, spec);
    const { objects, apps } = this.deps.kube;

    const password = this.deps.writerPassword({ namespace, name, uid: group.metadata.uid });
    await applyCredentials(objects, group, password, this.deps.consumerDatabaseUrl(writerRole(ref), password));
    let store;
    try {
      store = await reconcileStore(this.deps.pool, compiled, generation, password);
    } catch (error) {
      const message = `database error: ${(error as Error).message}`;
      await this.updateStatus(
        group,
        [{ type: ConditionType.StoreReady, status: 'False', reason: 'DatabaseError', message }],
        undefined,
      );
      throw error;
    }
    const replay = store.applied ? await this.replayIfAsked(group, compiled) : undefined;
    if (store.applied)
      await applyDeployment(objects, desiredDeployment(group, spec, this.deps.consumer, replay?.epoch ?? 0, password));
    const deployment = await readDeployment(apps, namespace, consumerName(name));
    const consumer = consumerCondition(deployment);
    const progress = this.deps.progress?.(key);
    const stalled = progress && stalledCondition(progress);
    await this.updateStatus(
      group,
      [store.condition, consumer, ...(replay?.condition ? [replay.condition] : []), ...(stalled ? [stalled] : [])],
      store.table,
      progress,
    );
    return consumer.status === 'True' ? {} : { requeueAfterMs: PROGRESS_REQUEUE_MS };
  }

  /**
   * Carries out a replay asked for by annotation, once per request: the group's state is rebuilt
   * from Kafka (see replayGroup), and the consumer pods roll onto the new epoch.
   */
  private async replayIfAsked(
    group: FeatureGroupObject,
    compiled: CompiledGroup,
  ): Promise<{ epoch: number; condition?: ConditionInput } | undefined> {
    const { ref, spec } = compiled;
    const registered = await getGroup(this.deps.pool, ref);
    if (!registered) return undefined;
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
    const offsets = await this.deps.replayOffsets(spec.source.topic, request.from);
    const epoch = await replayGroup(this.deps.pool, compiled, offsets, request.token);
    this.deps.log.info(
      { group: `${ref.namespace}/${ref.name}`, from: request.token, epoch, partitions: offsets.size },
      'feature group replayed from Kafka',
    );
    const message = `state rebuilt from ${request.from === 'earliest' ? 'the earliest records' : new Date(request.from).toISOString()} (request ${request.token}), epoch ${epoch}`;
    return { epoch, condition: { type: ConditionType.Replayed, status: 'True', reason: 'Replayed', message } };
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
    await this.patchFinalizers(
      group,
      (group.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
    );
    this.deps.log.info({ group: `${namespace}/${name}`, deletionPolicy: policy }, 'feature group finalized');
    return {};
  }

  private async get(namespace: string, name: string): Promise<FeatureGroupObject | undefined> {
    try {
      return (await this.deps.kube.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
      })) as FeatureGroupObject;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
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
    table: string | undefined,
    progress?: GroupProgress,
  ): Promise<void> {
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
    const observed = progress
      ? {
          lag: progress.lag,
          ...(progress.newestEventMs !== undefined ? { newestEventTime: formatTime(progress.newestEventMs) } : {}),
        }
      : {
          ...(group.status?.lag !== undefined ? { lag: group.status.lag } : {}),
          ...(group.status?.newestEventTime ? { newestEventTime: group.status.newestEventTime } : {}),
        };
    const status: FeatureGroupStatus = {
      observedGeneration: generation,
      ...(table ? { table } : group.status?.table ? { table: group.status.table } : {}),
      ...observed,
      conditions,
    };
    await recordTransitions(this.deps.kube.core, group, status, this.deps.log);
    await writeStatus(this.deps.kube.custom, group, status);
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

/** The same naming the grants use, so the consumer's URL always names the role that was granted. */
const writerRole = (ref: GroupRef): string => writerRoleFor(groupTables(ref).values.name);
