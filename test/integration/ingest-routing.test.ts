/**
 * Ingest learns topics and keys from the registry: a group registered after ingest started, with
 * its own topic and a nested key (`device.id`), is accepted at once, and every record of one device
 * lands on one partition keyed by the device id (read back from Kafka). A second group on that
 * topic with another key is refused before anything is altered, with the condition the operator
 * shows, and the first keeps working. An unknown topic is a 400 naming the known ones.
 */
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { compileGroup } from '../../core/featuregroup/compiled';
import { featureGroupSpecSchema, type FeatureGroupSpecInput } from '../../core/featuregroup/schema';
import { reconcileStore } from '../../operator/reconcile/store';
import {
  createTopic,
  dropRegisteredGroups,
  readTopic,
  registerGroup,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';

const PARTITIONS = 8;
const DEVICES = 40;
const PER_DEVICE = 5;

describe('ingest routes by the registry', () => {
  const name = uniqueName('route');
  const topic = `${name}-telemetry`;
  const spec = (keyField: string): FeatureGroupSpecInput => ({
    entity: { name: 'device', keyField },
    source: { topic, eventTimeField: 'at' },
    features: [
      { name: 'temperature', type: 'float64', from: 'reading.celsius' },
      { name: 'firmware', type: 'string', from: 'device.firmware' },
    ],
  });
  let pool: Pool;
  let kafka: Kafka;
  let ingest: RunningService | undefined;

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    await createTopic(kafka, topic, PARTITIONS);
    ingest = await startService('ingest', serverEnv(), `${name}-ingest`);
    await ingest.waitReady();
  });

  afterAll(async () => {
    await ingest?.stop();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  const post = (path: string, body: unknown) =>
    fetch(`${ingest!.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('refuses a topic no group reads, naming the known ones', async () => {
    const response = await post(`/v1/events?topic=${encodeURIComponent(topic)}`, { device: { id: 'd' } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; field: string; detail: string };
    expect(body).toMatchObject({ code: 'E_TOPIC_NOT_ALLOWED', field: 'topic' });
    const known = body.detail.slice(body.detail.indexOf('known topics:'));
    expect(known).toContain('raw-events');
    expect(known).not.toContain(topic);
  });

  it('accepts a group registered after it started, keyed by the nested key: one device, one partition', async () => {
    await registerGroup(pool, { namespace: 'default', name }, spec('device.id'));
    const events = Array.from({ length: DEVICES * PER_DEVICE }, (_, i) => ({
      device: { id: `dev-${i % DEVICES}`, firmware: `v${i}` },
      reading: { celsius: i / 10 },
      at: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    }));
    // A refused request publishes nothing, so asking again until the registry is seen is safe.
    const response = await eventually(
      async () => {
        const answer = await post(`/v1/events?topic=${encodeURIComponent(topic)}`, events);
        return answer.status === 400 ? undefined : answer;
      },
      "ingest to accept the new group's topic",
      30_000,
    );
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ accepted: events.length, rejected: 0 });

    const records = await readTopic(kafka, topic, events.length);
    const partitionsOf = new Map<string, Set<number>>();
    for (const record of records) {
      const device = (JSON.parse(record.value) as { device: { id: string } }).device.id;
      expect(record.key).toBe(device);
      partitionsOf.set(device, (partitionsOf.get(device) ?? new Set()).add(record.partition));
    }
    expect(partitionsOf.size).toBe(DEVICES);
    expect([...partitionsOf.values()].filter((p) => p.size !== 1)).toEqual([]);
    // Forty keys over eight partitions: keyed records spread, unkeyed ones would not all agree per device.
    expect(new Set(records.map((r) => r.partition)).size).toBeGreaterThan(1);
  });

  it('refuses a second group on the topic with another key, alters nothing, and the first keeps working', async () => {
    const second = { namespace: 'default', name: `${name}-b` };
    const compiled = compileGroup(second, featureGroupSpecSchema.parse(spec('entity_id')));
    const outcome = await reconcileStore(pool, compiled, 1, 'unused-password');
    expect(outcome.applied).toBe(false);
    expect(outcome.condition).toMatchObject({ type: 'StoreReady', status: 'False', reason: 'TopicKeyConflict' });
    expect(outcome.condition.message).toContain(`default/${name}`);
    expect(outcome.condition.message).toContain('device.id');
    const tables = await pool.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [
      'features',
      compiled.tables.values.name,
    ]);
    expect(tables.rowCount).toBe(0);
    const registered = await pool.query(
      'SELECT 1 FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2',
      [second.namespace, second.name],
    );
    expect(registered.rowCount).toBe(0);

    const response = await post(`/v1/events?topic=${encodeURIComponent(topic)}`, {
      device: { id: 'dev-late' },
      reading: { celsius: 1 },
    });
    expect(response.status).toBe(202);
    const records = await readTopic(kafka, topic, DEVICES * PER_DEVICE + 1);
    expect(records.find((r) => r.value.includes('dev-late'))?.key).toBe('dev-late');
  });
});
