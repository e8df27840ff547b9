/**
 * The operator's status write against a real kube-apiserver: a status computed from a cached copy
 * older than the last write is refused, never written over it, and a write replaces status whole.
 *
 * The race this guards: a reconcile reads the informer's cache before the watch has delivered the
 * operator's own last status write. Before the guard, such a reconcile put back Replaying=True
 * over a replay that had just caught up, and the group stayed Ready=False for good (a fresh-clone
 * CI run saw it).
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { writeStatus } from '../../operator/reconcile/status';
import {
  ConditionType,
  type Condition,
  type FeatureGroupObject,
  type FeatureGroupStatus,
} from '../../operator/resource';
import { uniqueName } from '../support/platform';
import { installFeatureGroupCrd, kubeConfig } from '../support/kube';

const GROUP = 'featurestore.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'featuregroups';

describe('status writes', () => {
  const namespace = uniqueName('status');
  const name = 'written';
  let core: CoreV1Api;
  let custom: CustomObjectsApi;

  const read = async (): Promise<FeatureGroupObject> =>
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      name,
    })) as FeatureGroupObject;
  const condition = (type: ConditionType, status: 'True' | 'False', reason: string): Condition => ({
    type,
    status,
    reason,
    message: reason,
    lastTransitionTime: '2026-01-01T00:00:00.000Z',
    observedGeneration: 1,
  });

  beforeAll(async () => {
    const kube = kubeConfig();
    core = kube.makeApiClient(CoreV1Api);
    custom = kube.makeApiClient(CustomObjectsApi);
    await installFeatureGroupCrd();
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'FeatureGroup',
        metadata: { name, namespace },
        spec: {
          entity: { name: 'user', keyField: 'entity_id' },
          source: { topic: `${namespace}-events` },
          features: [{ name: 'n', type: 'int64', from: 'n' }],
        },
      },
    });
  });

  afterAll(async () => {
    // The group first: this API server runs no namespace controller to empty a deleted namespace.
    await custom
      ?.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })
      .catch(() => undefined);
    await core?.deleteNamespace({ name: namespace });
  });

  it('refuses a status computed from a stale copy, and replaces status whole', async () => {
    const original = await read();
    const replaying: FeatureGroupStatus = {
      observedGeneration: 1,
      lag: 500,
      replay: {
        id: 'earliest#r1',
        epoch: 1,
        description: 'from the earliest records',
        targets: [{ partition: 0, offset: 500 }],
        startedAt: '2026-01-01T00:00:00.000Z',
        behind: 500,
      },
      conditions: [
        condition(ConditionType.Replaying, 'True', 'Replaying'),
        condition(ConditionType.Ready, 'False', 'Replaying'),
      ],
    };
    expect(await writeStatus(custom, original, replaying)).toBe('written');
    const afterFirst = await read();
    expect(afterFirst.status).toEqual(replaying);

    const caughtUp: FeatureGroupStatus = {
      observedGeneration: 1,
      replay: { ...replaying.replay!, behind: 0, completedAt: '2026-01-01T00:00:05.000Z' },
      conditions: [
        condition(ConditionType.Replaying, 'False', 'CaughtUp'),
        condition(ConditionType.Ready, 'True', 'Ready'),
      ],
    };
    expect(await writeStatus(custom, afterFirst, caughtUp)).toBe('written');
    // Replaced, not merged: `lag`, which the new status leaves out, is gone.
    const afterSecond = await read();
    expect(afterSecond.status).toEqual(caughtUp);

    // A reconcile that still reads the copy from before the second write: the replay it remembers
    // has caught up, the conditions it carries over from that copy have not. The API server
    // refuses the write, and what the second write said stands.
    const fromStaleCopy: FeatureGroupStatus = { ...replaying, replay: caughtUp.replay! };
    expect(await writeStatus(custom, afterFirst, fromStaleCopy)).toBe('stale');
    expect((await read()).status).toEqual(caughtUp);
    // The same status again is no write at all.
    expect(await writeStatus(custom, afterSecond, caughtUp)).toBe('unchanged');
    expect((await read()).metadata.resourceVersion).toBe(afterSecond.metadata.resourceVersion);
  });
});
