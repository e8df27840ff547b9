/**
 * The operator against a real kube-apiserver, Postgres and Kafka: FeatureGroups applied as a user
 * would become tables, grants and consumer Deployments (run by the local runner), with status,
 * schema evolution, refusals, deletion policies and least privilege.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiException, AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { Pool } from 'pg';
import { parse } from 'yaml';
import { tableNameFor } from '../../core/storage/identifiers';
import { writerRoleFor, SERVING_ROLE } from '../../core/storage/roles';
import { testPool, uniqueName } from '../support/platform';
import { eventually, requireEnv, startService, type RunningService } from '../support/services';

const GROUP = 'featurestore.dev';
const root = join(__dirname, '..', '..');

interface FeatureGroupResource {
  metadata: { name: string; namespace: string; uid: string; generation: number };
  spec: Record<string, unknown>;
  status?: { observedGeneration?: number; table?: string; conditions?: { type: string; status: string; reason: string; message: string }[] };
}

function kubeConfig(): KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path) throw new Error('KUBECONFIG is not set: the operator tests need the real kube-apiserver (make test starts it)');
  const config = new KubeConfig();
  config.loadFromFile(path);
  return config;
}

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
    RESYNC_SECONDS: '10',
  });

  const get = async (name: string): Promise<FeatureGroupResource> =>
    (await custom.getNamespacedCustomObject({ group: GROUP, version: 'v1alpha1', plural: 'featuregroups', namespace, name })) as FeatureGroupResource;

  const condition = (fg: FeatureGroupResource, type: string) => fg.status?.conditions?.find((c) => c.type === type);

  const apply = (name: string, spec: Record<string, unknown>) =>
    objects.patch(
      { apiVersion: `${GROUP}/v1alpha1`, kind: 'FeatureGroup', metadata: { name, namespace }, spec } as KubernetesObject,
      undefined,
      undefined,
      'operator-test',
      true,
      PatchStrategy.ServerSideApply,
    );

  const waitFor = (name: string, what: string, predicate: (fg: FeatureGroupResource) => boolean, timeoutMs = 60_000) =>
    eventually(async () => {
      const fg = await get(name);
      return predicate(fg) ? fg : undefined;
    }, `${name}: ${what}`, timeoutMs);

  const columns = async (table: string) =>
    new Map((await pool.query<{ column_name: string; data_type: string }>('SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', ['features', table])).rows.map((r) => [r.column_name, r.data_type]));

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
    const crd = parse(readFileSync(join(root, 'crds/featuregroup.yaml'), 'utf8')) as KubernetesObject;
    await objects.patch(crd, undefined, undefined, 'operator-test', true, PatchStrategy.ServerSideApply);
    await eventually(async () => {
      const read = (await objects.read({ apiVersion: crd.apiVersion!, kind: crd.kind!, metadata: { name: crd.metadata!.name! } })) as KubernetesObject & {
        status?: { conditions?: { type: string; status: string }[] };
      };
      return read.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    }, 'the CRD to be established');
    await kube.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    operator = await startService('operator', operatorEnv('operator-a'), `${namespace}-operator-a`);
    standby = await startService('operator', operatorEnv('operator-b'), `${namespace}-operator-b`);
    await Promise.all([operator.waitReady(), standby.waitReady()]);
    runner = await startService('local-runner', { KUBECONFIG: process.env.KUBECONFIG!, RUNNER_BASE_PORT: String(20000 + Math.floor(Math.random() * 20000)) }, `${namespace}-runner`);
  });

  afterAll(async () => {
    await Promise.all([operator?.stop(), standby?.stop(), runner?.stop()]);
    await pool?.end();
  });

  it('exactly one of two operator replicas leads (Lease)', async () => {
    const leading = async (s: RunningService) => ((await (await fetch(`${s.url}/leader`)).json()) as { leading: boolean }).leading;
    await eventually(async () => ((await leading(operator)) !== (await leading(standby)) ? true : undefined), 'one leader');
    for (let i = 0; i < 10; i++) {
      expect([await leading(operator), await leading(standby)].filter(Boolean)).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('turns an applied FeatureGroup into a table, grants and an owned, available consumer Deployment', async () => {
    const example = parse(readFileSync(join(root, 'examples/user-activity.yaml'), 'utf8')) as { spec: Record<string, unknown> };
    await apply('user-activity', { ...example.spec, source: { topic: `${namespace}-events`, eventTimeField: 'timestamp' } });
    const fg = await waitFor('user-activity', 'Ready=True', (g) => condition(g, 'Ready')?.status === 'True');
    const table = tableNameFor({ namespace, name: 'user-activity' });
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
    expect(deployment.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'FeatureGroup', name: 'user-activity', uid: fg.metadata.uid, controller: true })]);
    expect(deployment.spec?.template.spec?.containers[0]?.env).toEqual(expect.arrayContaining([{ name: 'FEATURE_GROUP', value: `${namespace}/user-activity` }]));
  });

  it('adds a column online for a new feature, keeps rows, and rolls the consumer', async () => {
    const name = 'evolve';
    const table = tableNameFor({ namespace, name });
    await apply(name, baseSpec(`${namespace}-evolve`));
    await waitFor(name, 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await pool.query(`INSERT INTO features."${table}" (entity_id, last_action, last_action__ts, last_action__off) VALUES ('u1', 'click', now(), 1)`);
    const before = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template.metadata?.annotations?.['featurestore.dev/spec-hash'];

    const spec = baseSpec(`${namespace}-evolve`);
    await apply(name, { ...spec, features: [...spec.features, { name: 'clicks', type: 'int64', from: 'clicks' }] });
    const fg = await waitFor(name, 'generation 2 Ready', (g) => g.status?.observedGeneration === 2 && condition(g, 'Ready')?.status === 'True');
    expect(fg.metadata.generation).toBe(2);
    expect((await columns(table)).get('clicks')).toBe('bigint');
    expect((await pool.query(`SELECT last_action FROM features."${table}" WHERE entity_id = 'u1'`)).rows).toEqual([{ last_action: 'click' }]);
    const after = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template.metadata?.annotations?.['featurestore.dev/spec-hash'];
    expect(after).toBeDefined();
    expect(after).not.toBe(before);

    await apply(name, { ...spec, features: [{ name: 'last_action', type: 'int64', from: 'action' }, { name: 'clicks', type: 'int64', from: 'clicks' }] });
    const refused = await waitFor(name, 'StoreReady=False', (g) => condition(g, 'StoreReady')?.status === 'False');
    expect(condition(refused, 'StoreReady')).toMatchObject({ reason: 'TypeChangeRefused', message: expect.stringContaining('feature last_action is stored as text and cannot change to int64') });
    expect(condition(refused, 'Ready')?.status).toBe('False');
    expect((await columns(table)).get('last_action')).toBe('text');
    const unchanged = (await apps.readNamespacedDeployment({ name: `${name}-consumer`, namespace })).spec?.template.metadata?.annotations?.['featurestore.dev/spec-hash'];
    expect(unchanged).toBe(after);
  });

  it.each([
    ['an invalid feature name', { features: [{ name: 'Bad-Name', type: 'string', from: 'a' }] }, /features\[0\]\.name|name/],
    ['duplicate features', { features: [{ name: 'a', type: 'string', from: 'a' }, { name: 'a', type: 'string', from: 'b' }] }, /unique|duplicate/i],
    ['a bad window', { features: [{ name: 'c', type: 'int64', aggregate: { fn: 'count', window: '1 hour' } }] }, /window/],
    ['an unknown type', { features: [{ name: 'c', type: 'decimal', from: 'a' }] }, /type/],
    ['both from and aggregate', { features: [{ name: 'c', type: 'int64', from: 'a', aggregate: { fn: 'count', window: '1h' } }] }, /from|aggregate/],
  ])('the API server rejects %s with a clear message', async (_label, override, message) => {
    const error: unknown = await apply(uniqueName('bad'), { ...baseSpec('t'), ...override }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<unknown>).code).toBe(422);
    expect(String((error as ApiException<unknown>).body)).toMatch(message);
  });

  it('keeps data with deletionPolicy Retain and drops it with Delete', async () => {
    await apply('keep', { ...baseSpec(`${namespace}-keep`), deletionPolicy: 'Retain' });
    await apply('drop', { ...baseSpec(`${namespace}-drop`), deletionPolicy: 'Delete' });
    await waitFor('keep', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    await waitFor('drop', 'Ready', (g) => condition(g, 'Ready')?.status === 'True');
    for (const name of ['keep', 'drop']) await custom.deleteNamespacedCustomObject({ group: GROUP, version: 'v1alpha1', plural: 'featuregroups', namespace, name });
    for (const name of ['keep', 'drop']) {
      await eventually(async () => (await get(name).then(() => false, (e: unknown) => e instanceof ApiException && e.code === 404)) || undefined, `${name} to be gone`);
    }
    const exists = async (name: string) => (await columns(tableNameFor({ namespace, name }))).size > 0;
    const registered = async (name: string) => (await pool.query('SELECT 1 FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2', [namespace, name])).rowCount === 1;
    expect([await exists('keep'), await registered('keep')]).toEqual([true, true]);
    expect([await exists('drop'), await registered('drop')]).toEqual([false, false]);
    const gone = await apps.readNamespacedDeployment({ name: 'drop-consumer', namespace }).then((d: V1Deployment) => d, (e: unknown) => e);
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

  it('converges after the leading operator is killed mid-way', async () => {
    await operator.crash();
    await apply('after-crash', baseSpec(`${namespace}-after`));
    const fg = await waitFor('after-crash', 'Ready after failover', (g) => condition(g, 'Ready')?.status === 'True', 90_000);
    expect(fg.status?.table).toBe(tableNameFor({ namespace, name: 'after-crash' }));
  });
});
