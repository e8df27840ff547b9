/**
 * What the operator tells platform engineers, against a real kube-apiserver, Postgres and Kafka:
 * Normal events for progress and Warning ones only when a person is needed, aggregated into one
 * Event whose count grows while a failure repeats (Postgres cut off from the operator by a proxy);
 * names whose tables would collide refused with a reason, never a database error; and the scale
 * subresource moving the consumer replicas, which share the group's partitions.
 */
import { CoreV1Api, CustomObjectsApi, AppsV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Pool } from 'pg';
import { consumerGroupFor } from '../../core/kafka';
import {
  createTopic,
  idempotentProducer,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { installFeatureGroupCrd, kubeConfig, kubectl, kubectlOk } from '../support/kube';
import { eventually, explainedBy, requireEnv, serverEnv, startService, type RunningService } from '../support/services';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { conditionOf, readFeatureGroup, statusSummary, type FeatureGroupResource } from '../support/featuregroups';

const GROUP = 'featurestore.dev';

describe('operator status, events, names and scale', () => {
  const namespace = uniqueName('ops');
  // `<namespace>-a/clicks` and `<namespace>/a-clicks` map to one table name.
  const otherNamespace = `${namespace}-a`;
  let kube: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  let pool: Pool;
  let proxy: TcpProxy;
  let operator: RunningService;
  let runner: RunningService;

  const get = (ns: string, name: string) => readFeatureGroup(custom, ns, name);
  const condition = conditionOf;
  /** A timeout says what status said last, and what the operator and the local runner logged last. */
  const waitFor = async (
    ns: string,
    name: string,
    what: string,
    predicate: (fg: FeatureGroupResource) => boolean,
  ): Promise<FeatureGroupResource> => {
    const found = eventually(
      async () => {
        const fg = await get(ns, name);
        if (predicate(fg)) return fg;
        throw new Error(statusSummary(fg));
      },
      `${ns}/${name}: ${what}`,
      90_000,
    );
    return explainedBy(found, { operator, 'local runner': runner });
  };
  const eventsOf = async (ns: string, name: string): Promise<CoreV1Event[]> =>
    (
      await core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.kind=FeatureGroup,involvedObject.name=${name}`,
      })
    ).items;
  const manifest = (ns: string, name: string, topic: string, replicas = 1, batchSize?: number) =>
    JSON.stringify({
      apiVersion: `${GROUP}/v1alpha1`,
      kind: 'FeatureGroup',
      metadata: { name, namespace: ns },
      spec: {
        entity: { name: 'user', keyField: 'entity_id' },
        source: { topic, eventTimeField: 'timestamp' },
        features: [{ name: 'last_action', type: 'string', from: 'action' }],
        consumer: { replicas, ...(batchSize ? { batchSize } : {}) },
        deletionPolicy: 'Delete',
      },
    });

  beforeAll(async () => {
    kube = kubeConfig();
    core = kube.makeApiClient(CoreV1Api);
    custom = kube.makeApiClient(CustomObjectsApi);
    apps = kube.makeApiClient(AppsV1Api);
    pool = testPool();
    await installFeatureGroupCrd();
    for (const ns of [namespace, otherNamespace]) await core.createNamespace({ body: { metadata: { name: ns } } });
    const database = new URL(requireEnv('DATABASE_URL'));
    // The operator reaches Postgres through a proxy the test can cut; its consumers do not.
    proxy = await startTcpProxy(Number(database.port), database.hostname);
    const throughProxy = new URL(database);
    throughProxy.port = String(proxy.port);
    operator = await startService(
      'operator',
      {
        KUBECONFIG: process.env.KUBECONFIG!,
        DATABASE_URL: throughProxy.toString(),
        CONSUMER_DATABASE_HOST: database.host,
        KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
        LEADER_ELECTION: 'false',
        WATCH_NAMESPACES: `${namespace},${otherNamespace}`,
        RESYNC_SECONDS: '10',
        PROGRESS_INTERVAL_SECONDS: '1',
      },
      `${namespace}-operator`,
    );
    await operator.waitReady();
    runner = await startService('local-runner', { KUBECONFIG: process.env.KUBECONFIG! }, `${namespace}-runner`);
  });

  afterAll(async () => {
    proxy?.restore();
    for (const ns of [namespace, otherNamespace])
      await kubectl(['delete', 'featuregroups', '--all', '-n', ns, '--wait=true', '--timeout=60s']);
    await Promise.all([operator?.stop(), runner?.stop()]);
    await proxy?.stop();
    await pool?.end();
  });

  it('create to Ready emits Normal events only', async () => {
    await kubectlOk(['apply', '-f', '-'], manifest(namespace, 'calm', `${namespace}-calm`));
    await waitFor(namespace, 'calm', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    // Events are recorded once the status they tell of was written: wait for the last of them.
    const events = await eventually(async () => {
      const found = await eventsOf(namespace, 'calm');
      return found.some((e) => e.reason === 'Ready') ? found : undefined;
    }, 'the Ready event');
    expect(events.filter((e) => e.type === 'Warning').map((e) => `${e.reason}: ${e.message}`)).toEqual([]);
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['Provisioned', 'Available', 'Ready']));
  });

  it('names whose tables would collide: the second group is refused with a reason, never a database error', async () => {
    await kubectlOk(['apply', '-f', '-'], manifest(otherNamespace, 'clicks', `${namespace}-clicks`));
    await waitFor(otherNamespace, 'clicks', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await kubectlOk(['apply', '-f', '-'], manifest(namespace, 'a-clicks', `${namespace}-a-clicks`));
    const refused = await waitFor(
      namespace,
      'a-clicks',
      'StoreReady=False',
      (g) => condition(g, 'StoreReady')?.status === 'False',
    );
    expect(condition(refused, 'StoreReady')).toMatchObject({
      reason: 'TableNameTaken',
      message: expect.stringContaining(`already taken by ${otherNamespace}/clicks`),
    });
    const said = [...(refused.status?.conditions ?? []).map((c) => c.message)];
    const warned = await eventually(async () => {
      const found = (await eventsOf(namespace, 'a-clicks')).filter((e) => e.type === 'Warning');
      return found.length > 0 ? found : undefined;
    }, 'a Warning event');
    expect(warned.map((e) => e.reason)).toEqual(['TableNameTaken']);
    for (const text of [...said, ...warned.map((e) => e.message ?? '')])
      expect(text).not.toMatch(/duplicate key|violates|constraint|DatabaseError|SQLSTATE/);
    // The first group is untouched and still Ready.
    expect(condition(await get(otherNamespace, 'clicks'), 'Ready')?.status).toBe('True');
  });

  it('kubectl scale fg gives two consumer replicas sharing the group partitions', async () => {
    const topic = `${namespace}-scaled`;
    await createTopic(testKafka(), topic, 4);
    await kubectlOk(['apply', '-f', '-'], manifest(namespace, 'scaled', topic));
    await waitFor(namespace, 'scaled', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await kubectlOk(['scale', 'featuregroup', 'scaled', '-n', namespace, '--replicas', '2']);
    const scaled = await waitFor(
      namespace,
      'scaled',
      'two replicas, Ready',
      (g) => g.status?.replicas === 2 && condition(g, 'Ready')?.status === 'True',
    );
    expect(scaled.status?.selector).toBe(
      'app.kubernetes.io/name=featurestore-consumer,app.kubernetes.io/instance=scaled',
    );
    const deployment = await apps.readNamespacedDeployment({ name: 'scaled-consumer', namespace });
    expect(deployment.spec?.replicas).toBe(2);
    // What an HPA reads: the scale subresource.
    const scale = JSON.parse(
      await kubectlOk(['get', '--raw', `/apis/${GROUP}/v1alpha1/namespaces/${namespace}/featuregroups/scaled/scale`]),
    ) as { spec: { replicas: number }; status: { replicas: number; selector: string } };
    expect(scale).toMatchObject({ spec: { replicas: 2 }, status: { replicas: 2, selector: scaled.status?.selector } });
    // Two members of the group's Kafka consumer group, splitting the four partitions.
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const members = await eventually(
        async () => {
          const { groups } = await admin.describeGroups([consumerGroupFor({ namespace, name: 'scaled' })]);
          const group = groups[0]!;
          return group.state === 'Stable' && group.members.length === 2 ? group.members : undefined;
        },
        'two stable consumer group members',
        90_000,
      );
      const { AssignerProtocol } = await import('kafkajs');
      const assigned = members.map((m) =>
        Object.values(AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment ?? {}).flat(),
      );
      expect(assigned.every((partitions) => partitions.length > 0)).toBe(true);
      expect(assigned.flat().sort()).toEqual([0, 1, 2, 3]);
    } finally {
      await admin.disconnect();
    }
    const listed = await kubectlOk(['get', 'fg', 'scaled', '-n', namespace]);
    expect(listed).toMatch(/^scaled\s+True\s+2\s/m);
  });

  it('a replay of 100,000 events: Replaying with falling lag, and Ready only once every entity is served', async () => {
    const name = 'replayed';
    const topic = `${namespace}-replayed`;
    const ENTITIES = 20_000;
    const EVENTS = 100_000;
    await createTopic(testKafka(), topic, 4);
    const producer = await idempotentProducer(testKafka());
    const t0 = Date.UTC(2026, 0, 1);
    try {
      for (let start = 0; start < EVENTS; start += 10_000) {
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: 10_000 }, (_, j) => {
            const i = start + j;
            const entity = `${namespace}-e${i % ENTITIES}`;
            const timestamp = new Date(t0 + i * 1000).toISOString();
            return { key: entity, value: JSON.stringify({ entity_id: entity, action: `a${i}`, timestamp }) };
          }),
        });
      }
    } finally {
      await producer.disconnect();
    }
    // Independent of the code under test: an entity's newest event is its last one, i ≡ e (mod ENTITIES).
    const expected = (e: number) => `a${e + EVENTS - ENTITIES}`;
    const consumerGroup = consumerGroupFor({ namespace, name });
    // Small batches, so that the replay takes long enough to be watched.
    await kubectlOk(['apply', '-f', '-'], manifest(namespace, name, topic, 1, 100));
    await eventually(
      async () => ((await storedOffsetTotal(pool, consumerGroup)) === EVENTS ? true : undefined),
      'the first pass over the topic',
      180_000,
    );
    const served = await startService(
      'serving',
      { ...serverEnv(), REGISTRY_REFRESH_MS: '200' },
      `${namespace}-serving`,
    );
    try {
      await served.waitReady();
      /** Every entity's last_action as serving answers it, 1,000 per request; a missing one is undefined. */
      const servedValues = async (): Promise<(string | undefined)[]> => {
        const values: (string | undefined)[] = [];
        for (let from = 0; from < ENTITIES; from += 1_000) {
          const ids = Array.from({ length: 1_000 }, (_, k) => `${namespace}-e${from + k}`);
          const response = await fetch(`${served.url}/get-online-features`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ features: [`${namespace}/${name}:last_action`], entities: { user: ids } }),
          });
          const body = (await response.json()) as { results: { values: (string | null)[]; statuses: string[] }[] };
          const column = body.results[1]!;
          values.push(
            ...column.values.map((v, k) => (column.statuses[k] === 'PRESENT' ? (v ?? undefined) : undefined)),
          );
        }
        return values;
      };
      const firstPass = await eventually(
        async () => {
          const values = await servedValues();
          return values.every((v, e) => v === expected(e)) ? values : undefined;
        },
        'every entity served after the first pass',
        60_000,
      );
      expect(firstPass).toHaveLength(ENTITIES);
      /**
       * The group once its status reports replay `id` and Ready=True; `whileReplaying` sees each
       * status read with Replaying=True on the way. A timeout says what status said last.
       */
      const replayCaughtUp = (id: string, whileReplaying: (fg: FeatureGroupResource) => void = () => undefined) =>
        eventually(
          async () => {
            const fg = await get(namespace, name);
            const said = (fg.status?.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`).join(', ');
            if (fg.status?.replay?.id !== id) throw new Error(`status.replay is ${JSON.stringify(fg.status?.replay)}`);
            if (condition(fg, 'Replaying')?.status === 'True') whileReplaying(fg);
            if (condition(fg, 'Ready')?.status === 'True') return fg;
            throw new Error(`replay ${JSON.stringify(fg.status.replay)}; ${said}`);
          },
          `replay ${id} to catch up`,
          180_000,
        );
      const before = condition(await get(namespace, name), 'Replayed');

      await kubectlOk([
        'annotate',
        'featuregroup',
        name,
        '-n',
        namespace,
        'featurestore.dev/replay-from=earliest',
        'featurestore.dev/replay-id=r1',
      ]);
      // Watch status until Ready: record what Replaying said on the way.
      const behind: number[] = [];
      const lags: (number | undefined)[] = [];
      const readiness: string[] = [];
      const ready = await replayCaughtUp('earliest#r1', (fg) => {
        behind.push(fg.status!.replay!.behind!);
        lags.push(fg.status!.lag);
        readiness.push(`${condition(fg, 'Ready')?.status}/${condition(fg, 'Ready')?.reason}`);
      });
      // At the moment Ready came back, every entity is served with its newest value.
      const values = await servedValues();
      expect(values.filter((v, e) => v !== expected(e))).toEqual([]);
      // While Replaying, Ready was False (Replaying, or Progressing while the consumers rolled onto
      // the new epoch), and LAG showed the replay's figure.
      expect(readiness).toContain('False/Replaying');
      expect(readiness.filter((r) => r !== 'False/Replaying' && r !== 'False/Progressing')).toEqual([]);
      expect(lags).toEqual(behind);
      expect(ready.status?.replay).toMatchObject({ id: 'earliest#r1', behind: 0, completedAt: expect.any(String) });
      expect(condition(ready, 'Replaying')).toMatchObject({ status: 'False', reason: 'CaughtUp' });
      const replayed = condition(ready, 'Replayed')!;
      expect(replayed).toMatchObject({ status: 'True', reason: 'Replayed' });
      expect(replayed.message).toMatch(/request earliest#r1\), epoch 1; caught up with 100,000 records/);
      expect(before).toBeUndefined();
      // The lag Replaying reported fell and never rose, from at most the whole topic.
      const distinct = [...new Set(behind)];
      expect(distinct.length).toBeGreaterThanOrEqual(2);
      expect(distinct[0]).toBeLessThanOrEqual(EVENTS);
      for (let i = 1; i < behind.length; i++) expect(behind[i]).toBeLessThanOrEqual(behind[i - 1]!);

      // The same request again under another replay-id: a replay of its own, with its own times.
      await kubectlOk([
        'annotate',
        'featuregroup',
        name,
        '-n',
        namespace,
        'featurestore.dev/replay-id=r2',
        '--overwrite',
      ]);
      const again = await replayCaughtUp('earliest#r2');
      expect(again.status?.replay?.completedAt).toEqual(expect.any(String));
      expect(again.status?.replay?.epoch).toBe(2);
      expect(condition(again, 'Replayed')!.message).toMatch(/request earliest#r2\), epoch 2/);
      expect(condition(again, 'Replayed')!.lastTransitionTime > replayed.lastTransitionTime).toBe(true);
      expect((await servedValues()).filter((v, e) => v !== expected(e))).toEqual([]);
    } finally {
      await served.stop();
    }
  }, 600_000);

  it('Postgres out of reach: one Warning event whose count grows, then Ready again', async () => {
    await kubectlOk(['apply', '-f', '-'], manifest(namespace, 'cutoff', `${namespace}-cutoff`, 0));
    await waitFor(namespace, 'cutoff', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    proxy.cut();
    try {
      // A change while the database is out of reach: every retry fails the same way.
      await kubectlOk(['apply', '-f', '-'], manifest(namespace, 'cutoff', `${namespace}-cutoff-2`, 0));
      const warnings = async () =>
        (await eventsOf(namespace, 'cutoff')).filter((e) => e.type === 'Warning' && e.reason === 'DatabaseUnreachable');
      const first = await eventually(
        async () => {
          const found = await warnings();
          return found.length === 1 && (found[0]!.count ?? 0) >= 2 ? found[0] : undefined;
        },
        'a repeated DatabaseUnreachable warning',
        60_000,
      );
      const later = await eventually(
        async () => {
          const found = await warnings();
          return found.length === 1 && (found[0]!.count ?? 0) > (first.count ?? 0) ? found[0] : undefined;
        },
        'its count to grow',
        60_000,
      );
      expect(later.metadata?.name).toBe(first.metadata?.name);
      expect(later.message).toMatch(/^StoreReady=False: Postgres cannot be reached/);
      const fg = await get(namespace, 'cutoff');
      expect(condition(fg, 'StoreReady')).toMatchObject({ status: 'False', reason: 'DatabaseUnreachable' });
    } finally {
      proxy.restore();
    }
    await waitFor(
      namespace,
      'cutoff',
      'Ready again at generation 2',
      (g) => g.status?.observedGeneration === 2 && condition(g, 'Ready')?.status === 'True',
    );
  });
});
