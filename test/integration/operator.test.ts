/**
 * The operator against a real kube-apiserver, Postgres and Kafka: FeatureGroups applied as a user
 * would become tables, grants and consumer Deployments (run by the local runner), with status,
 * schema evolution, refusals, deletion policies and least privilege.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1Deployment,
} from '@kubernetes/client-node';
import { Pool } from 'pg';
import { tableNameFor } from '../../core/storage/identifiers';
import { consumerGroupFor } from '../../core/kafka';
import { dropWriterRole, writerRoleFor, SERVING_ROLE } from '../../core/storage/roles';
import { secretName } from '../../operator/reconcile/consumer';
import { dropStore } from '../../core/storage/store';
import { createTopic, readTopic, testKafka, testPool, uniqueName } from '../support/platform';
import { installFeatureGroupCrd, kubeConfig, kubectl, kubectlOk } from '../support/kube';
import { conditionOf, readFeatureGroup, type FeatureGroupResource } from '../support/featuregroups';
import { eventually, requireEnv, type RunningService, serverEnv, startService } from '../support/services';
import { recordSoak } from '../support/soak';

const GROUP = 'featurestore.dev';
const root = join(__dirname, '..', '..');

describe('operator', () => {
  const namespace = uniqueName('op');
  let kube: KubeConfig;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  let objects: KubernetesObjectApi;
  let pool: Pool;
  let operator: RunningService;
  let standby: RunningService;
  let runner: RunningService;

  const operatorEnv = (name: string) => ({
    KUBECONFIG: process.env.KUBECONFIG!,
    DATABASE_URL: requireEnv('DATABASE_URL'),
    KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
    LEASE_NAMESPACE: namespace,
    POD_NAME: name,
    WATCH_NAMESPACES: namespace,
    RESYNC_SECONDS: '10',
  });

  const get = (name: string) => readFeatureGroup(custom, namespace, name);

  const condition = conditionOf;

  const apply = (name: string, spec: Record<string, unknown>) =>
    objects.patch(
      {
        apiVersion: `${GROUP}/v1alpha1`,
        kind: 'FeatureGroup',
        metadata: { name, namespace },
        spec,
      } as KubernetesObject,
      undefined,
      undefined,
      'operator-test',
      true,
      PatchStrategy.ServerSideApply,
    );

  const waitFor = (name: string, what: string, predicate: (fg: FeatureGroupResource) => boolean, timeoutMs = 60_000) =>
    eventually(
      async () => {
        const fg = await get(name);
        return predicate(fg) ? fg : undefined;
      },
      `${name}: ${what}`,
      timeoutMs,
    );

  const columns = async (table: string) =>
    new Map(
      (
        await pool.query<{ column_name: string; data_type: string }>(
          'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
          ['features', table],
        )
      ).rows.map((r) => [r.column_name, r.data_type]),
    );

  const baseSpec = (topic: string) => ({
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic, eventTimeField: 'timestamp' },
    features: [{ name: 'last_action', type: 'string', from: 'action' }],
  });

  beforeAll(async () => {
    kube = kubeConfig();
    custom = kube.makeApiClient(CustomObjectsApi);
    apps = kube.makeApiClient(AppsV1Api);
    objects = KubernetesObjectApi.makeApiClient(kube);
    pool = testPool();
    await installFeatureGroupCrd();
    await kube.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    operator = await startService('operator', operatorEnv('operator-a'), `${namespace}-operator-a`);
    standby = await startService('operator', operatorEnv('operator-b'), `${namespace}-operator-b`);
    await Promise.all([operator.waitReady(), standby.waitReady()]);
    runner = await startService('local-runner', { KUBECONFIG: process.env.KUBECONFIG! }, `${namespace}-runner`);
  });

  afterAll(async () => {
    // Leave no consumer Deployments behind for the next run or `make up` (no garbage collector runs
    // here): delete every group while an operator still runs its finalizer, then stop.
    if ([operator, standby].some((s) => s?.running) && custom) {
      const list = (await custom.listNamespacedCustomObject({
        group: GROUP,
        version: 'v1alpha1',
        plural: 'featuregroups',
        namespace,
      })) as { items: FeatureGroupResource[] };
      for (const fg of list.items) {
        await custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: 'v1alpha1',
            plural: 'featuregroups',
            namespace,
            name: fg.metadata.name,
            body: { spec: { deletionPolicy: 'Delete' } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      }
      await kubectl(['delete', 'featuregroups', '--all', '-n', namespace, '--wait=true', '--timeout=60s']);
    }
    await Promise.all([operator?.stop(), standby?.stop(), runner?.stop()]);
    // The Retain test leaves its store by design; serving in later runs must not read it.
    if (pool) {
      const keep = { namespace, name: 'keep' };
      await dropStore(pool, keep, consumerGroupFor(keep));
      await dropWriterRole(pool, tableNameFor(keep));
    }
    await pool?.end();
  });

  const leading = async (s: RunningService) =>
    ((await (await fetch(`${s.url}/leader`)).json()) as { leading: boolean }).leading;

  it('exactly one of two operator replicas leads (Lease)', async () => {
    await eventually(
      async () => ((await leading(operator)) !== (await leading(standby)) ? true : undefined),
      'one leader',
    );
    for (let i = 0; i < 10; i++) {
      expect([await leading(operator), await leading(standby)].filter(Boolean)).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('kubectl apply of the example becomes Ready: typed table, grants and an owned, available consumer Deployment', async () => {
    const manifest = readFileSync(join(root, 'examples/user-activity.yaml'), 'utf8')
      .replace('namespace: default', `namespace: ${namespace}`)
      .replace('topic: raw-events', `topic: ${namespace}-events`);
    expect(await kubectlOk(['apply', '-f', '-'], manifest)).toMatch(
      /featuregroup.featurestore.dev\/user-activity created/,
    );
    const fg = await waitFor('user-activity', 'Ready=True', (g) => condition(g, 'Ready')?.status === 'True');
    const table = tableNameFor({ namespace, name: 'user-activity' });
    const listed = await kubectlOk(['get', 'fg', '-n', namespace]);
    expect(listed).toMatch(/^NAME\s+READY\s+REPLICAS\s+LAG\s+TABLE\s+AGE/m);
    // LAG is empty until the operator's first look at the group's progress.
    expect(listed).toMatch(new RegExp(`^user-activity\\s+True\\s+1\\s+(\\d+\\s+)?${table}\\s`, 'm'));
    expect(fg.status?.table).toBe(table);
    expect(fg.status?.observedGeneration).toBe(fg.metadata.generation);
    expect(condition(fg, 'StoreReady')).toMatchObject({ status: 'True', reason: 'Provisioned' });
    expect(condition(fg, 'ConsumerReady')).toMatchObject({ status: 'True', reason: 'Available' });
    expect(Object.fromEntries(await columns(table))).toMatchObject({
      entity_id: 'text',
      last_action: 'text',
      last_action__ts: 'timestamp with time zone',
      last_amount: 'double precision',
      last_seen_at: 'timestamp with time zone',
    });
    const deployment = await apps.readNamespacedDeployment({ name: 'user-activity-consumer', namespace });
    expect(deployment.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'FeatureGroup', name: 'user-activity', uid: fg.metadata.uid, controller: true }),
    ]);
    expect(deployment.spec?.template.spec?.containers[0]?.env).toEqual(
      expect.arrayContaining([{ name: 'FEATURE_GROUP', value: `${namespace}/user-activity` }]),
    );

    // The writer's password reached Postgres only as a SCRAM verifier: never in a statement.
    const secret = await kube
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: secretName('user-activity'), namespace });
    const password = decodeURIComponent(new URL(Buffer.from(secret.data!.DATABASE_URL!, 'base64').toString()).password);
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    // Preloaded by test/servers/postgres.sh since the server started; the view needs the extension.
    await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const statements = (
      await pool.query<{ query: string }>("SELECT query FROM pg_stat_statements WHERE query ILIKE '%password%'")
    ).rows.map((r) => r.query);
    expect(statements.some((q) => q.includes(writerRoleFor(table)) && q.includes('SCRAM-SHA-256$4096:'))).toBe(true);
    expect(statements.filter((q) => q.includes(password))).toEqual([]);
  });

  it('serves events sent through ingest to the operator-made group (the seed contract end to end)', async () => {
    const topic = `${namespace}-events`;
    const env = { ...serverEnv(), INGEST_TOPICS: topic, INGEST_DEFAULT_TOPIC: topic };
    const [ingest, serving] = await Promise.all([
      startService('ingest', env, `${namespace}-ingest`),
      startService('serving', env, `${namespace}-serving`),
    ]);
    try {
      await Promise.all([ingest.waitReady(), serving.waitReady()]);
      // An id of its own: serving answers from every registered group, other suites' included.
      const user = `user_${namespace}`;
      // Recent, whole-second times: the example's ttl is 24h, and serving prints seconds without ".000".
      const at = (secondsAgo: number) =>
        new Date((Math.floor(Date.now() / 1000) - secondsAgo) * 1000).toISOString().replace('.000Z', 'Z');
      const [newest, older, oldest] = [at(5), at(6), at(60)];
      const events = [
        { entity_id: user, action: 'view', page: '/home', timestamp: older },
        { entity_id: user, action: 'click', page: '/cart', amount: 12.5, timestamp: newest },
        { entity_id: user, action: 'scroll', timestamp: oldest },
      ];
      const sent = await fetch(`${ingest.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      expect(sent.status).toBe(202);
      const body = await eventually(
        async () => {
          const response = await fetch(`${serving.url}/features/${user}`);
          const json = (await response.json()) as { features?: Record<string, unknown> };
          return response.ok && json.features?.last_action === 'click' && json.features.last_page === '/cart'
            ? json
            : undefined;
        },
        `${user} served from the operator-made group`,
        60_000,
      );
      expect(body).toEqual({
        entity_id: user,
        features: { last_action: 'click', last_page: '/cart', last_amount: 12.5, last_seen_at: newest },
        last_updated: newest,
      });
      const online = await fetch(`${serving.url}/get-online-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          features: [`${namespace}/user-activity:last_action`],
          entities: { user: [user, 'nobody'] },
        }),
      });
      expect(online.status).toBe(200);
      const feast = (await online.json()) as { results: { values: unknown[]; statuses: string[] }[] };
      expect(feast.results.at(-1)).toMatchObject({ values: ['click', null], statuses: ['PRESENT', 'NOT_FOUND'] });
    } finally {
      await Promise.all([ingest.stop(), serving.stop()]);
    }
  });

  it('a group with its own topic and a nested key: ingest, started before it, accepts and keys its events; a second group on the topic with another key is refused by a condition', async () => {
    const topic = `${namespace}-telemetry`;
    await createTopic(testKafka(), topic, 8);
    const ingest = await startService('ingest', serverEnv(), `${namespace}-ingest-routes`);
    try {
      await ingest.waitReady();
      await apply('devices', {
        entity: { name: 'device', keyField: 'device.id' },
        source: { topic, eventTimeField: 'at' },
        features: [{ name: 'temperature', type: 'float64', from: 'reading.celsius' }],
      });
      await waitFor('devices', 'Ready', (fg) => condition(fg, 'Ready')?.status === 'True');
      const post = (events: unknown[]) =>
        fetch(`${ingest.url}/v1/events?topic=${topic}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(events),
        });
      const events = Array.from({ length: 80 }, (_, i) => ({
        device: { id: `dev-${i % 16}` },
        reading: { celsius: i },
        at: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      }));
      // Accepted without a restart; a refusal publishes nothing, so asking again is safe.
      const sent = await eventually(async () => {
        const answer = await post(events);
        return answer.status === 400 ? undefined : answer;
      }, 'ingest to accept the new topic');
      expect(sent.status).toBe(202);
      const records = await readTopic(testKafka(), topic, events.length);
      const partitions = new Map<string, Set<number>>();
      for (const r of records)
        partitions.set(r.key ?? '(none)', (partitions.get(r.key ?? '(none)') ?? new Set()).add(r.partition));
      expect([...partitions.keys()].sort()).toEqual([...new Set(events.map((e) => e.device.id))].sort());
      expect([...partitions.values()].filter((p) => p.size !== 1)).toEqual([]);

      await apply('devices-b', {
        entity: { name: 'device', keyField: 'entity_id' },
        source: { topic },
        features: [{ name: 'temperature', type: 'float64', from: 'reading.celsius' }],
      });
      const refused = await waitFor(
        'devices-b',
        'StoreReady False',
        (fg) => condition(fg, 'StoreReady')?.status === 'False',
      );
      expect(condition(refused, 'StoreReady')).toMatchObject({ reason: 'TopicKeyConflict' });
      expect(condition(refused, 'StoreReady')?.message).toContain(`${namespace}/devices`);
      expect((await columns(tableNameFor({ namespace, name: 'devices-b' }))).size).toBe(0);
      expect((await post([{ device: { id: 'dev-0' }, reading: { celsius: 1 } }])).status).toBe(202);
      expect(condition(await get('devices'), 'Ready')?.status).toBe('True');
    } finally {
      await ingest.stop();
    }
  });

  it('replays a group from Kafka when annotated: state rebuilt, consumers rolled, a bad request reported', async () => {
    const table = tableNameFor({ namespace, name: 'user-activity' });
    const user = `user_${namespace}`;
    await kubectlOk([
      'annotate',
      'featuregroup',
      'user-activity',
      '-n',
      namespace,
      'featurestore.dev/replay-from=earliest',
    ]);
    const replayed = await waitFor(
      'user-activity',
      'Replayed=True',
      (g) => condition(g, 'Replayed')?.status === 'True',
    );
    expect(condition(replayed, 'Replayed')?.message).toMatch(/from the earliest records \(request earliest\), epoch 1/);
    const deployment = await apps.readNamespacedDeployment({ name: 'user-activity-consumer', namespace });
    expect(deployment.spec?.template.metadata?.annotations?.['featurestore.dev/replay-epoch']).toBe('1');
    // The rolled consumer reads the topic again from its start and the entity is back.
    const row = await eventually(
      async () => {
        const found = await pool.query(`SELECT last_action FROM features."${table}" WHERE entity_id = $1`, [user]);
        return found.rows[0] as { last_action: string } | undefined;
      },
      'the replayed state',
      60_000,
    );
    expect(row).toEqual({ last_action: 'click' });

    await kubectlOk([
      'annotate',
      'featuregroup',
      'user-activity',
      '-n',
      namespace,
      'featurestore.dev/replay-from=yesterday',
      '--overwrite',
    ]);
    // A bad request is reported, and the group stays Ready (once its rolled consumer is available).
    const refused = await waitFor(
      'user-activity',
      'Replayed=False and Ready',
      (g) => condition(g, 'Replayed')?.status === 'False' && condition(g, 'Ready')?.status === 'True',
    );
    expect(condition(refused, 'Replayed')).toMatchObject({
      reason: 'InvalidReplayRequest',
      message: expect.stringContaining('must be "earliest" or an ISO-8601 time'),
    });
    await kubectlOk(['annotate', 'featuregroup', 'user-activity', '-n', namespace, 'featurestore.dev/replay-from-']);
  });

  it('adds a column online for a new feature, keeps rows, and rolls the consumer', async () => {
    const name = 'evolve';
    const table = tableNameFor({ namespace, name });
    await apply(name, baseSpec(`${namespace}-evolve`));
    await waitFor(name, 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await pool.query(
      `INSERT INTO features."${table}" (entity_id, last_action, last_action__ts, last_action__off) VALUES ('u1', 'click', now(), 1)`,
    );
    const before = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template
      .metadata?.annotations?.['featurestore.dev/spec-hash'];

    const spec = baseSpec(`${namespace}-evolve`);
    await apply(name, { ...spec, features: [...spec.features, { name: 'clicks', type: 'int64', from: 'clicks' }] });
    const fg = await waitFor(
      name,
      'generation 2 Ready',
      (g) => g.status?.observedGeneration === 2 && condition(g, 'Ready')?.status === 'True',
    );
    expect(fg.metadata.generation).toBe(2);
    expect((await columns(table)).get('clicks')).toBe('bigint');
    expect((await pool.query(`SELECT last_action FROM features."${table}" WHERE entity_id = 'u1'`)).rows).toEqual([
      { last_action: 'click' },
    ]);
    const after = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template.metadata
      ?.annotations?.['featurestore.dev/spec-hash'];
    expect(after).toBeDefined();
    expect(after).not.toBe(before);

    // The API server refuses a type change itself (a CEL transition rule), naming the feature.
    const typeChange = await kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: `${GROUP}/v1alpha1`,
        kind: 'FeatureGroup',
        metadata: { name, namespace },
        spec: {
          ...spec,
          features: [
            { name: 'last_action', type: 'int64', from: 'action' },
            { name: 'clicks', type: 'int64', from: 'clicks' },
          ],
        },
      }),
    );
    expect(typeChange.code).not.toBe(0);
    expect(typeChange.stderr).toMatch(
      /spec\.features\[0\]\.type: Forbidden: feature last_action: type cannot change from string to int64/,
    );
    expect((await get(name)).metadata.generation).toBe(2);

    // The operator's condition is the second line: a feature removed, then added back with another
    // type, passes the API server (no old feature of that name) and is refused against the column.
    await apply(name, { ...spec, features: [{ name: 'clicks', type: 'int64', from: 'clicks' }] });
    await waitFor(
      name,
      'generation 3 Ready',
      (g) => g.status?.observedGeneration === 3 && condition(g, 'Ready')?.status === 'True',
    );
    const beforeRefusal = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template
      .metadata?.annotations?.['featurestore.dev/spec-hash'];
    await apply(name, {
      ...spec,
      features: [
        { name: 'last_action', type: 'int64', from: 'action' },
        { name: 'clicks', type: 'int64', from: 'clicks' },
      ],
    });
    const refused = await waitFor(name, 'StoreReady=False', (g) => condition(g, 'StoreReady')?.status === 'False');
    expect(condition(refused, 'StoreReady')).toMatchObject({
      reason: 'TypeChangeRefused',
      message: expect.stringContaining('feature last_action is stored as text and cannot change to int64'),
    });
    expect(condition(refused, 'Ready')?.status).toBe('False');
    expect((await columns(table)).get('last_action')).toBe('text');
    const unchanged = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template
      .metadata?.annotations?.['featurestore.dev/spec-hash'];
    expect(unchanged).toBe(beforeRefusal);
  });

  it.each([
    [
      'an invalid feature name',
      { features: [{ name: 'Bad-Name', type: 'string', from: 'a' }] },
      /features\[0\]\.name|name/,
    ],
    [
      'a bad window',
      { features: [{ name: 'c', type: 'int64', aggregate: { fn: 'count', window: '1 hour' } }] },
      /window/,
    ],
    [
      'an aggregate window under a minute',
      { features: [{ name: 'c', type: 'int64', aggregate: { fn: 'count', window: '30s' } }] },
      /aggregate windows are at least 1m/,
    ],
    [
      'an aggregate type its function cannot yield',
      { features: [{ name: 'c', type: 'string', aggregate: { fn: 'sum', field: 'amount', window: '1h' } }] },
      /type does not match the aggregate/,
    ],
    ['an unknown type', { features: [{ name: 'c', type: 'decimal', from: 'a' }] }, /type/],
    [
      'both from and aggregate',
      { features: [{ name: 'c', type: 'int64', from: 'a', aggregate: { fn: 'count', window: '1h' } }] },
      /from|aggregate/,
    ],
  ])('the API server rejects %s with a clear message', async (_label, override, message) => {
    const error: unknown = await apply(uniqueName('bad'), { ...baseSpec('t'), ...override }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<unknown>).code).toBe(422);
    expect(String((error as ApiException<unknown>).body)).toMatch(message);
  });

  it('the API server rejects duplicate features, naming the duplicate', async () => {
    const manifest = JSON.stringify({
      apiVersion: `${GROUP}/v1alpha1`,
      kind: 'FeatureGroup',
      metadata: { name: uniqueName('dup'), namespace },
      spec: {
        ...baseSpec('t'),
        features: [
          { name: 'a', type: 'string', from: 'a' },
          { name: 'a', type: 'string', from: 'b' },
        ],
      },
    });
    // features is a list map keyed by name: the API server checks uniqueness itself.
    const clientSide = await kubectl(['apply', '-f', '-'], manifest);
    expect(clientSide.code).not.toBe(0);
    expect(clientSide.stderr).toMatch(/spec\.features\[1\]: Duplicate value: \{"name":"a"\}/);
    // Server-side apply refuses it before validation, with its own words.
    const serverSide = await kubectl(['apply', '--server-side', '-f', '-'], manifest);
    expect(serverSide.code).not.toBe(0);
    expect(serverSide.stderr).toMatch(/duplicate entries for key \[name="a"\]/);
  });

  it('keeps data with deletionPolicy Retain and drops it with Delete', async () => {
    await apply('keep', { ...baseSpec(`${namespace}-keep`), deletionPolicy: 'Retain' });
    await apply('drop', { ...baseSpec(`${namespace}-drop`), deletionPolicy: 'Delete' });
    await waitFor('keep', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await waitFor('drop', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    for (const name of ['keep', 'drop'])
      await custom.deleteNamespacedCustomObject({
        group: GROUP,
        version: 'v1alpha1',
        plural: 'featuregroups',
        namespace,
        name,
      });
    for (const name of ['keep', 'drop']) {
      await eventually(
        async () =>
          (await get(name).then(
            () => false,
            (e: unknown) => e instanceof ApiException && e.code === 404,
          )) || undefined,
        `${name} to be gone`,
      );
    }
    const exists = async (name: string) => (await columns(tableNameFor({ namespace, name }))).size > 0;
    const registered = async (name: string) =>
      (
        await pool.query('SELECT 1 FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2', [
          namespace,
          name,
        ])
      ).rowCount === 1;
    expect([await exists('keep'), await registered('keep')]).toEqual([true, true]);
    expect([await exists('drop'), await registered('drop')]).toEqual([false, false]);
    const gone = await apps.readNamespacedDeployment({ name: 'drop-consumer', namespace }).then(
      (d: V1Deployment) => d,
      (e: unknown) => e,
    );
    expect((gone as ApiException<unknown>).code).toBe(404);
  });

  it('grants least privilege: serving only reads, a consumer writes only its own group', async () => {
    await apply('alpha', baseSpec(`${namespace}-alpha`));
    await apply('beta', baseSpec(`${namespace}-beta`));
    await waitFor('alpha', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await waitFor('beta', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    const alpha = tableNameFor({ namespace, name: 'alpha' });
    const beta = tableNameFor({ namespace, name: 'beta' });
    const client = await pool.connect();
    const as = async (role: string, sql: string) => {
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL ROLE "${role}"`);
        await client.query(sql);
        return 'ok';
      } catch (error) {
        return (error as Error).message;
      } finally {
        await client.query('ROLLBACK');
      }
    };
    try {
      const insert = (table: string) => `INSERT INTO features."${table}" (entity_id) VALUES ('x')`;
      expect(await as(SERVING_ROLE, `SELECT * FROM features."${alpha}"`)).toBe('ok');
      expect(await as(SERVING_ROLE, insert(alpha))).toMatch(/permission denied/);
      expect(await as(writerRoleFor(alpha), insert(alpha))).toBe('ok');
      expect(await as(writerRoleFor(alpha), insert(beta))).toMatch(/permission denied/);
      expect(await as(writerRoleFor(alpha), `SELECT * FROM features."${beta}"`)).toMatch(/permission denied/);
      expect(await as(writerRoleFor(alpha), `DROP TABLE features."${alpha}"`)).toMatch(/must be owner/);
    } finally {
      client.release();
    }
  });

  it('converges after the API server restarts mid-way', async () => {
    if (process.env.FS_TEST_STARTED_SERVERS !== '1') {
      throw new Error(
        'this test restarts kube-apiserver: run it against the servers make test starts, not an external KUBECONFIG',
      );
    }
    await apply('before-restart', baseSpec(`${namespace}-before`));
    execFileSync('bash', [join(root, 'test/servers/kube.sh'), 'restart'], { stdio: 'inherit' });
    const restartedAt = Date.now();
    await apply('after-restart', baseSpec(`${namespace}-after-restart`));
    for (const name of ['before-restart', 'after-restart']) {
      const fg = await waitFor(
        name,
        'Ready after the API server restart',
        (g) => condition(g, 'Ready')?.status === 'True',
        90_000,
      );
      expect(fg.status?.observedGeneration).toBe(fg.metadata.generation);
    }
    recordSoak({
      kind: 'fault',
      fault: 'kube-apiserver restarted (2 groups Ready)',
      events_sent: 0,
      lost: null,
      duplicated: null,
      recovered_s: Number(((Date.now() - restartedAt) / 1000).toFixed(1)),
    });
    // An operator whose Lease could not be renewed exits, as controller-runtime's do; a Deployment
    // would restart it. The point is that whoever leads afterwards converged the state.
    if (!operator.running)
      operator = await startService('operator', operatorEnv('operator-a'), `${namespace}-operator-a2`);
    if (!standby.running)
      standby = await startService('operator', operatorEnv('operator-b'), `${namespace}-operator-b2`);
    await Promise.all([operator.waitReady(), standby.waitReady()]);
  });

  it('converges after the leading operator is killed mid-way', async () => {
    const leader = await eventually(async () => {
      for (const candidate of [operator, standby]) if (await leading(candidate).catch(() => false)) return candidate;
      return undefined;
    }, 'a leader');
    const follower = leader === operator ? standby : operator;
    await apply('after-crash', baseSpec(`${namespace}-after`));
    await leader.crash();
    const crashedAt = Date.now();
    await eventually(
      async () => ((await leading(follower)) ? true : undefined),
      'the follower to take over the Lease',
      60_000,
    );
    const fg = await waitFor(
      'after-crash',
      'Ready after failover',
      (g) => condition(g, 'Ready')?.status === 'True',
      90_000,
    );
    expect(fg.status?.table).toBe(tableNameFor({ namespace, name: 'after-crash' }));
    recordSoak({
      kind: 'fault',
      fault: 'leading operator killed -9 (group Ready)',
      events_sent: 0,
      lost: null,
      duplicated: null,
      recovered_s: Number(((Date.now() - crashedAt) / 1000).toFixed(1)),
    });
  });

  it('the local runner leaves no replica running when it stops, after all the rolls above', async () => {
    /** Processes whose environment names a group of this suite's namespace: the runner's replicas. */
    const replicas = (): number[] =>
      readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .filter((pid) => {
          try {
            return readFileSync(`/proc/${pid}/environ`, 'utf8')
              .split('\0')
              .some((v) => v.startsWith(`FEATURE_GROUP=${namespace}/`));
          } catch {
            return false; // gone meanwhile, or not ours to read
          }
        })
        .map(Number);
    expect(replicas().length).toBeGreaterThan(0);
    expect(await runner.stop()).toBe(0);
    expect(replicas()).toEqual([]);
  });
});
