/**
 * A stalled group is visible: its consumer fails every batch for a reason that is not the records'
 * (here the database refuses every write to its table), so a partition has lag and does not move.
 * The operator sets Stalled=True with the error within STALL_AFTER_SECONDS, Ready turns False, the
 * lag shows in status, `kubectl get fg` and the operator's metrics, and serving reports the
 * partition's last error; once the database recovers, all of it clears and the data is exact.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { tableNameFor } from '../../core/storage/identifiers';
import { GROUP_GRANTS_LOCK } from '../../core/storage/roles';
import { expectedState, generateStream, kafkaKeyOf, storedState, TEST_GROUP_SPEC } from '../support/oracle';
import { createTopic, idempotentProducer, testKafka, testPool, uniqueName } from '../support/platform';
import { installFeatureGroupCrd, kubeConfig, kubectl, kubectlOk } from '../support/kube';
import { conditionOf, readFeatureGroup, type FeatureGroupResource } from '../support/featuregroups';
import { eventually, requireEnv, serverEnv, startService, type RunningService } from '../support/services';

const GROUP = 'featurestore.dev';
const STALL_AFTER_SECONDS = 3;

describe('stalled group', () => {
  const namespace = uniqueName('stall');
  const name = 'stalls';
  const topic = `${namespace}-events`;
  const table = tableNameFor({ namespace, name });
  let pool: Pool;
  let kafka: Kafka;
  let producer: Producer;
  let custom: CustomObjectsApi;
  let operator: RunningService;
  let runner: RunningService;
  let serving: RunningService;

  const get = () => readFeatureGroup(custom, namespace, name);
  const condition = conditionOf;
  const waitFor = (what: string, predicate: (fg: FeatureGroupResource) => boolean, timeoutMs = 60_000) =>
    eventually(
      async () => {
        const fg = await get();
        return predicate(fg) ? fg : undefined;
      },
      what,
      timeoutMs,
    );

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    producer = await idempotentProducer(kafka);
    await createTopic(kafka, topic, 2);
    const kube = kubeConfig();
    custom = kube.makeApiClient(CustomObjectsApi);
    await installFeatureGroupCrd();
    await kube.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
    operator = await startService(
      'operator',
      {
        KUBECONFIG: process.env.KUBECONFIG!,
        DATABASE_URL: requireEnv('DATABASE_URL'),
        KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
        LEADER_ELECTION: 'false',
        WATCH_NAMESPACES: namespace,
        PROGRESS_INTERVAL_SECONDS: '0.5',
        STALL_AFTER_SECONDS: String(STALL_AFTER_SECONDS),
      },
      `${namespace}-operator`,
    );
    runner = await startService('local-runner', { KUBECONFIG: process.env.KUBECONFIG! }, `${namespace}-runner`);
    serving = await startService('serving', { ...serverEnv(), REGISTRY_REFRESH_MS: '200' }, `${namespace}-serving`);
    await Promise.all([operator.waitReady(), serving.waitReady()]);
    const spec = { ...TEST_GROUP_SPEC, source: { ...TEST_GROUP_SPEC.source, topic }, deletionPolicy: 'Delete' };
    await KubernetesObjectApi.makeApiClient(kube).patch(
      {
        apiVersion: `${GROUP}/v1alpha1`,
        kind: 'FeatureGroup',
        metadata: { name, namespace },
        spec,
      } as KubernetesObject,
      undefined,
      undefined,
      'stall-test',
      true,
      PatchStrategy.ServerSideApply,
    );
    await waitFor('Ready', (fg) => condition(fg, 'Ready')?.status === 'True');
  });

  afterAll(async () => {
    await pool?.query(`DROP TRIGGER IF EXISTS refuse_all ON features."${table}"`).catch(() => undefined);
    if (operator?.running)
      await kubectl(['delete', 'featuregroups', '--all', '-n', namespace, '--wait=true', '--timeout=60s']);
    await Promise.all([operator?.stop(), runner?.stop(), serving?.stop()]);
    await producer?.disconnect();
    await pool?.end();
  });

  it('sets Stalled with the error while a partition cannot advance, and clears it when it can', async () => {
    await pool.query(
      `CREATE OR REPLACE FUNCTION features."${table}_refuse"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the disk is full' USING ERRCODE = '53100'; END $$`,
    );
    // The operator grants on this table whenever it applies the store. Postgres refuses two
    // concurrent updates of the table's catalog row ("tuple concurrently updated"), so take the
    // operator's grants lock for this group.
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [GROUP_GRANTS_LOCK, table]);
      await client.query(
        `CREATE TRIGGER refuse_all BEFORE INSERT OR UPDATE ON features."${table}" FOR EACH ROW EXECUTE FUNCTION features."${table}_refuse"()`,
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const stream = generateStream({ count: 2_000, entities: 100, prefix: `${namespace}:` });
    await producer.send({
      topic,
      acks: -1,
      messages: stream.lines.map((value) => ({ key: kafkaKeyOf(value), value })),
    });
    const stalledAt = Date.now();

    const stalled = await waitFor('Stalled=True', (fg) => condition(fg, 'Stalled')?.status === 'True');
    const seconds = (Date.now() - stalledAt) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(STALL_AFTER_SECONDS);
    expect(condition(stalled, 'Stalled')).toMatchObject({
      reason: 'PartitionStalled',
      message: expect.stringMatching(
        /partition \d: \d+ records behind, no progress for \d+s; last error: Postgres is out of a resource \(SQLSTATE 53100: disk, memory or connections\); the consumer retries with backoff/,
      ),
    });
    expect(condition(stalled, 'Ready')).toMatchObject({ status: 'False', reason: 'PartitionStalled' });
    expect(stalled.status?.lag).toBeGreaterThan(0);
    const listed = await kubectlOk(['get', 'fg', name, '-n', namespace]);
    const lagColumn = Number(/^stalls\s+False\s+(\d+)\s/m.exec(listed)?.[1]);
    expect(lagColumn).toBeGreaterThan(0);
    expect(await operator.metric('featurestore_feature_group_stalled', { namespace, name })).toBe(1);
    expect(await operator.metric('featurestore_feature_group_lag_records', { namespace, name })).toBeGreaterThan(0);
    const detail = (await (await fetch(`${serving.url}/v1/feature-groups/${namespace}/${name}`)).json()) as {
      freshness: { partitions: { lastError: string | null }[] };
    };
    // The database's own words are served here, not in the condition.
    expect(condition(stalled, 'Stalled')?.message).not.toMatch(/the disk is full/);
    expect(detail.freshness.partitions.some((p) => p.lastError === '53100: the disk is full')).toBe(true);
    // Warning, not Normal: a person should look. (Ready's own event, which mirrors the reason, is
    // Normal.) Recorded once the status it tells of was written, so it may follow that status by
    // a moment.
    const warned = await eventually(async () => {
      const events = JSON.parse(await kubectlOk(['get', 'events', '-n', namespace, '-o', 'json'])) as {
        items: { type: string; reason: string; message: string }[];
      };
      return events.items.find((e) => e.type === 'Warning' && e.reason === 'PartitionStalled');
    }, 'a PartitionStalled Warning event');
    expect(warned.message).toMatch(/^Stalled=True: partition \d/);

    await pool.query(`DROP TRIGGER refuse_all ON features."${table}"`);
    const recovered = await waitFor(
      'Stalled=False and Ready',
      (fg) =>
        condition(fg, 'Stalled')?.status === 'False' &&
        condition(fg, 'Ready')?.status === 'True' &&
        fg.status?.lag === 0,
    );
    expect(condition(recovered, 'Stalled')?.reason).toBe('CaughtUp');
    expect(await operator.metric('featurestore_feature_group_stalled', { namespace, name })).toBe(0);
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(expectedState(stream.lines, stream.invalid));
    const newest = Math.max(
      ...stream.lines
        .filter((l) => !stream.invalid.has(l))
        .map((l) => Date.parse((JSON.parse(l) as { timestamp: string }).timestamp)),
    );
    expect(Date.parse(recovered.status!.newestEventTime!)).toBe(newest);
    const after = (await (await fetch(`${serving.url}/v1/feature-groups/${namespace}/${name}`)).json()) as {
      freshness: { newestEventTime: string; partitions: { lastError: string | null }[] };
    };
    expect(Date.parse(after.freshness.newestEventTime)).toBe(newest);
    expect(after.freshness.partitions.every((p) => p.lastError === null)).toBe(true);
  });
});
