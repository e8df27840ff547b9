import {
  makeInformer,
  type Informer,
  type KubernetesObject,
  type ObjectCache,
  type V1Deployment,
} from '@kubernetes/client-node';
import { keepWatching } from '../core/kube-watch';
import type { Logger } from '../core/logger';
import type { KubeClients } from './kube';
import type { WorkQueue } from './queue';
import type { ObjectReads } from './reconcile';
import { GROUP, LABELS, MANAGED_BY, PLURAL, VERSION, type FeatureGroupObject } from './resource';

type Watched<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

const keyOf = (object: KubernetesObject): string | undefined =>
  object.metadata?.namespace && object.metadata.name
    ? `${object.metadata.namespace}/${object.metadata.name}`
    : undefined;

/**
 * Watches FeatureGroups and the Deployments it owns, and turns every change into a queued key.
 * Watches that break are restarted; a periodic resync re-queues everything (level-triggered).
 */
export class Controller {
  private informers: Watched<KubernetesObject>[] = [];
  private groupInformers: Watched<KubernetesObject>[] = [];
  private deploymentInformers: Watched<KubernetesObject>[] = [];
  private resync: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly kube: KubeClients,
    private readonly queue: WorkQueue,
    private readonly namespaces: string[],
    private readonly resyncSeconds: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { custom, apps, config } = this.kube;
    const scopes = this.namespaces.length ? this.namespaces : [undefined];
    for (const namespace of scopes) {
      const groups = namespace
        ? makeInformer(config, `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`, () =>
            custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace }),
          )
        : makeInformer(config, `/apis/${GROUP}/${VERSION}/${PLURAL}`, () =>
            custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }),
          );
      const selector = `${LABELS.managedBy}=${MANAGED_BY}`;
      const deployments = namespace
        ? makeInformer(
            config,
            `/apis/apps/v1/namespaces/${namespace}/deployments`,
            () => apps.listNamespacedDeployment({ namespace, labelSelector: selector }),
            selector,
          )
        : makeInformer(
            config,
            '/apis/apps/v1/deployments',
            () => apps.listDeploymentForAllNamespaces({ labelSelector: selector }),
            selector,
          );
      this.groupInformers.push(groups);
      this.deploymentInformers.push(deployments);
      this.watch(
        groups,
        (object) => keyOf(object),
        'featuregroups',
        (object, k) => this.changedBeyondStatus(object, k),
      );
      groups.on('delete', (object) => {
        const k = keyOf(object);
        if (k) this.seen.delete(k);
      });
      this.watch(deployments, (object) => ownerKey(object), 'deployments');
    }
    await Promise.all(this.informers.map((informer) => informer.start()));
    this.resync = setInterval(() => this.resyncAll(), this.resyncSeconds * 1000);
    this.resync.unref();
    this.resyncAll();
  }

  /**
   * Reads from the informers' caches, as controller-runtime's client does: a reconcile costs the
   * API server no GET. What is read may be a little behind; a write based on it is guarded by
   * resourceVersion or is an idempotent apply, and the watch event of our own write queues the
   * group again with the newer object.
   */
  readonly cache: ObjectReads = {
    group: (namespace, name) =>
      Promise.resolve(this.cached(this.groupInformers, namespace, name) as FeatureGroupObject | undefined),
    deployment: (namespace, name) => Promise.resolve(this.cached(this.deploymentInformers, namespace, name)),
  };

  private cached(
    informers: Watched<KubernetesObject>[],
    namespace: string,
    name: string,
  ): KubernetesObject | undefined {
    for (const informer of informers) {
      const object = informer.get(name, namespace);
      if (object) return object;
    }
    return undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }

  private watch(
    informer: Watched<KubernetesObject>,
    key: (object: KubernetesObject) => string | undefined,
    what: string,
    relevant: (object: KubernetesObject, k: string) => boolean = () => true,
  ): void {
    const enqueue = (object: KubernetesObject): void => {
      const k = key(object);
      if (k) this.queue.add(k);
    };
    informer.on('add', enqueue);
    informer.on('update', (object) => {
      const k = key(object);
      if (k && relevant(object, k)) this.queue.add(k);
    });
    informer.on('delete', enqueue);
    keepWatching(informer, what, this.log, () => this.stopped);
    this.informers.push(informer);
  }

  /** What a FeatureGroup's reconcile depends on besides status, per key, as last seen. */
  private readonly seen = new Map<string, string>();

  /**
   * Whether an update changed more than status (controller-runtime's GenerationChangedPredicate,
   * with the metadata a reconcile reads). Our own status writes would otherwise queue the group
   * again at once: during a replay, a loop as fast as the API server answers. What status-only
   * updates could tell, the resync, requeues and the Deployment watch tell instead.
   */
  private changedBeyondStatus(object: KubernetesObject, key: string): boolean {
    const { uid, generation, annotations, labels, finalizers, deletionTimestamp } = object.metadata ?? {};
    const fingerprint = JSON.stringify([uid, generation, annotations, labels, finalizers, deletionTimestamp]);
    if (this.seen.get(key) === fingerprint) return false;
    this.seen.set(key, fingerprint);
    return true;
  }

  private resyncAll(): void {
    for (const informer of this.groupInformers)
      for (const object of informer.list()) {
        const k = keyOf(object);
        if (k) this.queue.add(k);
      }
  }
}

function ownerKey(deployment: V1Deployment): string | undefined {
  const owner = deployment.metadata?.ownerReferences?.find((o) => o.kind === 'FeatureGroup' && o.controller);
  return owner && deployment.metadata?.namespace ? `${deployment.metadata.namespace}/${owner.name}` : undefined;
}
