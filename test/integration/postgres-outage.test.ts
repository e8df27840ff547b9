/**
 * Postgres goes away for ~5 s mid-stream, or stops answering (SIGSTOP) for longer than the
 * statement timeout: the consumer retries with backoff, commits nothing for the failed batches,
 * stays up, and ends with the exact state.
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

describe('Postgres paused (SIGSTOP) past the statement timeout', () => {
  const name = uniqueName('pgstop');
  const topic = `${name}-events`;
  const stream = generateStream({ count: 20_000, entities: 500, prefix: `${name}:` });
  const postmaster = (): string => execFileSync('bash', [postgresScript, 'pid'], { encoding: 'utf8' }).trim();
  /** Every process of the cluster: the postmaster would not stop its backends for us. */
  const signalCluster = (signal: 'STOP' | 'CONT'): void => {
    const pid = postmaster();
    execFileSync('bash', ['-c', `kill -${signal} ${pid}; pkill -${signal} -P ${pid} || true`]);
  };
  let pool: Pool;
  let producer: Producer;
  let table: string;

  beforeAll(async () => {
    if (process.env.FS_TEST_STARTED_SERVERS !== '1') {
      throw new Error('this test pauses Postgres: run it against the servers make test starts, not an external DATABASE_URL');
    }
    pool = testPool();
    const kafka = testKafka();
    await createTopic(kafka, topic, 2);
    table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic, { batchSize: 500 }));
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    signalCluster('CONT');
    await producer?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('abandons the stuck batches, retries after the pause and ends exact', async () => {
    const consumer = await startService('consumer', { ...serverEnv(), FEATURE_GROUP: `default/${name}`, DB_STATEMENT_TIMEOUT_MS: '1000', CONSUMER_SESSION_TIMEOUT_MS: '30000' }, `${name}-consumer`);
    const send = (lines: string[]) => producer.send({ topic, acks: -1, messages: lines.map((value) => ({ key: kafkaKeyOf(value), value })) });
    try {
      await consumer.waitReady();
      await send(stream.lines.slice(0, 5_000));
      await eventually(async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) > 0 ? true : undefined), 'the first batches');
      // The database stops answering for 8 s while the rest streams in: the consumer's writes hang
      // until the client gives up on them (statement timeout 1 s + 5 s), then retry.
      signalCluster('STOP');
      let resumedAt = 0;
      try {
        await send(stream.lines.slice(5_000));
        await new Promise((r) => setTimeout(r, 8_000));
      } finally {
        signalCluster('CONT');
        resumedAt = Date.now();
      }
      const retries = await consumer.metric('featurestore_consumer_retries_total');
      await eventually(async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) === stream.lines.length ? true : undefined), 'all offsets after the pause');
      const caughtUpSeconds = (Date.now() - resumedAt) / 1000;
      expect(consumer.running).toBe(true);
      expect(retries).toBeGreaterThan(0);
      expect(await storedState((sql) => pool.query(sql), table)).toEqual(expectedState(stream.lines, stream.invalid));
      recordSoak({ kind: 'fault', fault: 'Postgres paused (SIGSTOP) 8 s, statement timeout 1 s', events_sent: stream.lines.length, lost: 0, duplicated: 0, recovered_s: Number(caughtUpSeconds.toFixed(1)) });
    } finally {
      await consumer.stop();
    }
  });
});
