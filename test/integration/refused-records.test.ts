/**
 * The second line of defence: a record that passes validation but that Postgres refuses (here a
 * CHECK constraint a DBA added) is isolated from its batch, dead-lettered with the SQLSTATE and
 * message, and every other record of the batch is stored exactly once with the offsets. An error
 * that is not the record's fault (the database refusing everything) dead-letters nothing.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { expectedState, generateStream, kafkaKeyOf, storedState, testGroupSpec } from '../support/oracle';
import {
  createTopic,
  dropRegisteredGroups,
  idempotentProducer,
  readToEnd,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';

describe('records Postgres refuses', () => {
  let pool: Pool;
  let kafka: Kafka;
  let producer: Producer;
  const consumers: RunningService[] = [];
  const startConsumer = async (name: string): Promise<RunningService> => {
    const consumer = await startService(
      'consumer',
      { ...serverEnv(), FEATURE_GROUP: `default/${name}` },
      `${name}-consumer`,
    );
    consumers.push(consumer);
    await consumer.waitReady();
    return consumer;
  };

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    // A failed assertion must not leave a consumer running.
    for (const c of consumers) await c.crash();
    await producer?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('dead-letters exactly the refused records, with the SQLSTATE, and stores the rest of their batches', async () => {
    const name = uniqueName('refused');
    const topic = `${name}-events`;
    await createTopic(kafka, topic, 2);
    const table = await registerGroup(
      pool,
      { namespace: 'default', name },
      { ...testGroupSpec(topic, { batchSize: 500 }), history: { enabled: true } },
    );
    // On the history, which every event writes a row to (a constraint on the value table would only
    // see the newest value of each entity in a batch).
    await pool.query(
      `ALTER TABLE features."${table}__history" ADD CONSTRAINT no_refuse_me CHECK (value <> 'refuse-me')`,
    );
    const stream = generateStream({
      count: 5_000,
      entities: 300,
      prefix: `${name}:`,
      invalidRate: 0,
      duplicateRate: 0,
    });
    // About one record in fifty carries the value the constraint refuses.
    const lines = stream.lines.map((line, i) =>
      i % 50 === 7 ? line.replace(/"action":"[a-z_]+"/, '"action":"refuse-me"') : line,
    );
    const refused = lines.filter((l) => l.includes('"refuse-me"'));
    await producer.send({ topic, acks: -1, messages: lines.map((value) => ({ key: kafkaKeyOf(value), value })) });

    const consumer = await startConsumer(name);
    await eventually(
      async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) === lines.length ? true : undefined),
      'every offset stored',
    );

    const letters = await readToEnd(kafka, `featurestore.dlq.default.${name}`);
    expect(letters.map((l) => l.value).sort()).toEqual([...refused].sort());
    for (const letter of letters) {
      expect(letter.headers['fs-error-sqlstate']).toBe('23514');
      expect(letter.headers['fs-error-reason']).toMatch(/violates check constraint "no_refuse_me"/);
    }
    const kept = lines.filter((l) => !l.includes('"refuse-me"'));
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(expectedState(kept, new Set()));
    expect(await consumer.metric('featurestore_consumer_events_total', { outcome: 'dead_lettered' })).toBe(
      refused.length,
    );
    expect(await consumer.stop()).toBe(0);
  });

  it('retries, and dead-letters nothing, while the database refuses every write', async () => {
    const name = uniqueName('unwell');
    const topic = `${name}-events`;
    await createTopic(kafka, topic, 1);
    const table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic));
    // Not the records' fault (SQLSTATE class 53, insufficient resources): it must hold, not dead-letter.
    await pool.query(
      `CREATE FUNCTION features."${table}_full"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk is full' USING ERRCODE = '53100'; END $$`,
    );
    await pool.query(
      `CREATE TRIGGER full_disk BEFORE INSERT OR UPDATE ON features."${table}" FOR EACH ROW EXECUTE FUNCTION features."${table}_full"()`,
    );
    const stream = generateStream({ count: 200, entities: 20, prefix: `${name}:`, invalidRate: 0 });
    await producer.send({
      topic,
      acks: -1,
      messages: stream.lines.map((value) => ({ key: kafkaKeyOf(value), value })),
    });
    const consumer = await startConsumer(name);
    await eventually(
      async () => ((await consumer.metric('featurestore_consumer_retries_total')) >= 3 ? true : undefined),
      'three failed attempts',
    );
    const { rows } = await pool.query<{ last_error: string | null }>(
      'SELECT last_error FROM featurestore.consumer_offsets WHERE consumer_group = $1',
      [`featurestore.default.${name}`],
    );
    expect(rows[0]?.last_error).toMatch(/disk is full/);
    expect(await storedOffsetTotal(pool, `featurestore.default.${name}`)).toBe(0);
    expect(await consumer.metric('featurestore_consumer_events_total', { outcome: 'dead_lettered' })).toBe(0);
    // The database recovers: everything is stored, and the last error is cleared.
    await pool.query(`DROP TRIGGER full_disk ON features."${table}"`);
    await eventually(
      async () =>
        (await storedOffsetTotal(pool, `featurestore.default.${name}`)) === stream.lines.length ? true : undefined,
      'every offset stored after recovery',
    );
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(expectedState(stream.lines, stream.invalid));
    const after = await pool.query<{ last_error: string | null }>(
      'SELECT last_error FROM featurestore.consumer_offsets WHERE consumer_group = $1',
      [`featurestore.default.${name}`],
    );
    expect(after.rows[0]?.last_error).toBeNull();
    expect(await consumer.stop()).toBe(0);
  });
});
