/**
 * Partitions added to a live source topic are read: the consumer's view of the topic is refreshed
 * every CONSUMER_METADATA_MAX_AGE_MS, the group rebalances onto the new partitions, and records
 * written to them are served (kafkajs alone keeps its view for 5 minutes, and the records wait).
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { testGroupSpec } from '../support/oracle';
import {
  createTopic,
  dropRegisteredGroups,
  idempotentProducer,
  registerGroup,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, explainedBy, serverEnv, startService, type RunningService } from '../support/services';

describe('partitions added to a source topic', () => {
  const name = uniqueName('grow');
  const topic = `${name}-events`;
  let pool: Pool;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  const services: RunningService[] = [];

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    producer = await idempotentProducer(kafka);
    await createTopic(kafka, topic, 1);
    await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic));
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await producer?.disconnect();
    await admin?.disconnect();
    if (pool) {
      await dropRegisteredGroups(pool);
      await pool.end();
    }
  });

  const send = (partition: number, entity: string, action: string) =>
    producer.send({
      topic,
      messages: [
        {
          partition,
          key: entity,
          value: JSON.stringify({ entity_id: entity, action, timestamp: '2026-01-23T09:00:00Z' }),
        },
      ],
    });

  it('reads records written to the new partitions', async () => {
    const consumer = await startService(
      'consumer',
      { ...serverEnv(), FEATURE_GROUP: `default/${name}`, CONSUMER_METADATA_MAX_AGE_MS: '2000' },
      `${name}-consumer`,
    );
    const serving = await startService('serving', { ...serverEnv(), REGISTRY_REFRESH_MS: '200' }, `${name}-serving`);
    services.push(consumer, serving);
    await Promise.all([consumer.waitReady(), serving.waitReady()]);
    const served = (entity: string, action: string) =>
      explainedBy(
        eventually(
          async () => {
            const response = await fetch(`${serving.url}/features/${entity}`);
            const body = await response.text();
            if (
              response.ok &&
              (JSON.parse(body) as { features: { last_action?: string } }).features.last_action === action
            )
              return body;
            throw new Error(`serving answered ${response.status} ${body}`);
          },
          `${entity} served with last_action ${action}`,
          60_000,
        ),
        { consumer },
      );

    await send(0, 'on-p0', 'first');
    await served('on-p0', 'first');

    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    // A kafkajs producer drops, without an error, a record for a partition its metadata lacks: a new
    // one, started once the broker lists the partitions with their leaders, knows them.
    await eventually(
      async () => {
        const [described] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
        return described?.partitions.length === 3 && described.partitions.every((p) => p.leader >= 0)
          ? true
          : undefined;
      },
      `${topic} listed with 3 partitions, each with a leader`,
      60_000,
    );
    await producer.disconnect();
    producer = await idempotentProducer(kafka);
    await send(1, 'on-p1', 'second');
    await send(2, 'on-p2', 'third');
    const high = (await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.high]);
    expect(high.sort(([a], [b]) => Number(a) - Number(b))).toEqual([
      [0, '1'],
      [1, '1'],
      [2, '1'],
    ]);
    await served('on-p1', 'second');
    await served('on-p2', 'third');

    const assigned = consumer.logEntries<{ partitions: number[] }>('partitions assigned').at(-1)?.partitions;
    expect(assigned).toEqual([0, 1, 2]);
  });
});
