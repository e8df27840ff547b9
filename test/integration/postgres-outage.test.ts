/**
 * Postgres goes away for ~5 s mid-stream: the consumer retries with backoff, commits nothing for
 * the failed batches, stays up, and ends with the exact state.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { expectedState, generateStream, kafkaKeyOf, storedState, testGroupSpec } from '../support/oracle';
import { createTopic, dropRegisteredGroups, registerGroup, storedOffsetTotal, testKafka, testPool, uniqueName, idempotentProducer } from '../support/platform';
import { eventually, type RunningService, serverEnv, startService } from '../support/services';
import { recordSoak } from '../support/soak';

const postgresScript = join(__dirname, '..', 'servers', 'postgres.sh');

describe('Postgres outage', () => {
  const name = uniqueName('pgdown');
  const topic = `${name}-events`;
  const stream = generateStream({ count: 20_000, entities: 500, prefix: `${name}:` });
  let pool: Pool;
  let kafka: Kafka;
  let producer: Producer;
  let table: string;

  beforeAll(async () => {
    if (process.env.FS_TEST_STARTED_SERVERS !== '1') {
      throw new Error('this test stops and restarts Postgres: run it against the servers make test starts, not an external DATABASE_URL');
    }
    pool = testPool();
    kafka = testKafka();
    await createTopic(kafka, topic, 2);
    table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic, { batchSize: 500 }));
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    execFileSync('bash', [postgresScript, 'start'], { stdio: 'inherit' });
    await producer?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('retries through the outage and ends exact', async () => {
    const consumer = await startService(
      'consumer',
      { ...serverEnv(), FEATURE_GROUP: `default/${name}`, CONSUMER_MAX_BYTES_PER_PARTITION: '65536', CONSUMER_SESSION_TIMEOUT_MS: '6000' },
      `${name}-consumer`,
    );
    try {
      await consumer.waitReady();
      await streamThroughOutage(consumer);
    } finally {
      await consumer.stop();
    }
  });

  async function streamThroughOutage(consumer: RunningService): Promise<void> {
    const send = (lines: string[]) =>
      producer.send({ topic, acks: -1, messages: lines.map((value) => ({ key: kafkaKeyOf(value), value })) });

    await send(stream.lines.slice(0, 5_000));
    execFileSync('bash', [postgresScript, 'stop'], { stdio: 'inherit' });
    const downAt = Date.now();
    await send(stream.lines.slice(5_000, 15_000));
    await new Promise((r) => setTimeout(r, Math.max(0, 5_000 - (Date.now() - downAt))));
    const retriesDuringOutage = await consumer.metric('featurestore_consumer_retries_total');
    execFileSync('bash', [postgresScript, 'start'], { stdio: 'inherit' });
    const backAt = Date.now();
    await send(stream.lines.slice(15_000));

    await eventually(async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) === stream.lines.length ? true : undefined), 'all offsets after the outage');
    const caughtUpSeconds = (Date.now() - backAt) / 1000;
    expect(consumer.running).toBe(true);
    expect(retriesDuringOutage).toBeGreaterThan(0);
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(expectedState(stream.lines, stream.invalid));
    expect(await consumer.stop()).toBe(0);
    recordSoak({ kind: 'fault', fault: 'Postgres stopped and restarted', events_sent: stream.lines.length, lost: 0, duplicated: 0, recovered_s: Number(caughtUpSeconds.toFixed(1)) });
  }
});
