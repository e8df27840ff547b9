/**
 * Exactly once under crashes: kill -9 the consumer again and again while 50,000 events stream in
 * (FAULT_EVENTS; `make soak` streams 100,000).
 * After every kill the stored state must equal the oracle over exactly the events below the stored
 * offsets (no offset ran ahead of its data, no data ahead of its offset); at the end, all of them.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import {
  divergence,
  expectedState,
  generateStream,
  kafkaKeyOf,
  storedState,
  testGroupSpec,
  type Expected,
} from '../support/oracle';
import {
  createTopic,
  readTopic,
  dropRegisteredGroups,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
  idempotentProducer,
} from '../support/platform';
import { eventually, requireEnv, startService, type RunningService } from '../support/services';
import { recordSoak } from '../support/soak';

interface Snapshot {
  offsets: Map<number, bigint>;
  state: Map<string, Expected>;
}

const TOTAL = Number(process.env.FAULT_EVENTS ?? 50_000);

async function snapshot(pool: Pool, table: string, consumerGroup: string): Promise<Snapshot> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const offsets = await client.query<{ partition: number; next_offset: string }>(
      'SELECT partition, next_offset FROM featurestore.consumer_offsets WHERE consumer_group = $1',
      [consumerGroup],
    );
    const state = await storedState((sql) => client.query(sql), table);
    await client.query('COMMIT');
    return { offsets: new Map(offsets.rows.map((r) => [r.partition, BigInt(r.next_offset)])), state };
  } finally {
    client.release();
  }
}

describe('exactly once across kill -9', () => {
  const name = uniqueName('eo');
  const topic = `${name}-events`;
  const consumerGroup = `featurestore.default.${name}`;
  const stream = generateStream({ count: TOTAL, entities: 2_000, prefix: `${name}:` });
  let pool: Pool;
  let kafka: Kafka;
  let producer: Producer;
  let table: string;
  const env = (): Record<string, string> => ({
    DATABASE_URL: requireEnv('DATABASE_URL'),
    KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
    FEATURE_GROUP: `default/${name}`,
    CONSUMER_MAX_BYTES_PER_PARTITION: '65536',
    CONSUMER_SESSION_TIMEOUT_MS: '6000',
  });

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    await createTopic(kafka, topic, 4);
    // Small transactions so that kills land between and inside many of them.
    table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic, { batchSize: 200 }));
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    await producer?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('stores each event exactly once, whatever moment the consumer dies', async () => {
    // Stream the events in while the consumer is being killed. The stream waits for the kills (chunk
    // i goes once i*6/chunks kills happened), so however fast the consumer is, it cannot be done
    // before most of them: kills land at every stage of the stream, not only at its end.
    let kills = 0;
    const chunks = Math.ceil(stream.lines.length / 2_500);
    const producing = (async () => {
      for (let i = 0; i < chunks; i++) {
        while (kills < Math.floor((i * 6) / chunks)) await new Promise((r) => setTimeout(r, 50));
        const chunk = stream.lines.slice(i * 2_500, (i + 1) * 2_500);
        await producer.send({ topic, acks: -1, messages: chunk.map((value) => ({ key: kafkaKeyOf(value), value })) });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    const snapshots: Snapshot[] = [];
    let consumer: RunningService = await startService('consumer', env(), `${name}-consumer`);
    await consumer.waitReady();
    while (kills < 6) {
      const progress = await storedOffsetTotal(pool, consumerGroup);
      if (progress >= TOTAL) break;
      await new Promise((r) => setTimeout(r, 400 + Math.random() * 900));
      await consumer.crash();
      kills++;
      snapshots.push(await snapshot(pool, table, consumerGroup));
      consumer = await startService('consumer', env(), `${name}-consumer`);
      await consumer.waitReady();
    }
    await producing;
    const lastRestart = Date.now();
    await eventually(
      async () => ((await storedOffsetTotal(pool, consumerGroup)) === TOTAL ? true : undefined),
      `the consumer to store all ${TOTAL} offsets`,
      300_000,
    );
    const caughtUpSeconds = (Date.now() - lastRestart) / 1000;
    const finalSnapshot = await snapshot(pool, table, consumerGroup);
    expect(await consumer.stop()).toBe(0);

    expect(kills).toBeGreaterThanOrEqual(3);
    // Where every record landed, read back from Kafka: the truth the offsets refer to.
    const records = await readTopic(kafka, topic, TOTAL);
    const prefixOf = (offsets: Map<number, bigint>): string[] =>
      records.filter((r) => r.offset < (offsets.get(r.partition) ?? 0n)).map((r) => r.value);

    const partial = snapshots.filter((s) => [...s.offsets.values()].reduce((a, b) => a + b, 0n) < BigInt(TOTAL));
    expect(partial.length).toBeGreaterThanOrEqual(1);
    for (const s of snapshots) expect(s.state).toEqual(expectedState(prefixOf(s.offsets), stream.invalid));
    const expected = expectedState(stream.lines, stream.invalid);
    recordSoak({
      kind: 'fault',
      fault: `consumer killed with -9 ×${kills}`,
      events_sent: TOTAL,
      ...divergence(finalSnapshot.state, expected),
      recovered_s: Number(caughtUpSeconds.toFixed(1)),
    });
    // Equal to the oracle at every kill and at the end: nothing lost, nothing applied twice.
    expect(finalSnapshot.state).toEqual(expected);
  });
});
