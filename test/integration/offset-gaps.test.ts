/**
 * Offsets Kafka leaves out are normal: topics written by a transactional producer (commit markers
 * take offsets, aborted records must never be served), compacted topics, and records removed from
 * the start of a partition (as retention does). The consumer goes on through all of them, exactly,
 * and its stored offsets reach the high watermarks (lag 0).
 */
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { expectedState, generateStream, kafkaKeyOf, storedState, testGroupSpec } from '../support/oracle';
import {
  createTopic,
  dropRegisteredGroups,
  idempotentProducer,
  readToEnd,
  registerGroup,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';

const consumerEnv = (name: string): Record<string, string> => ({
  ...serverEnv(),
  FEATURE_GROUP: `default/${name}`,
  CONSUMER_MAX_BYTES_PER_PARTITION: '16384',
  CONSUMER_SESSION_TIMEOUT_MS: '6000',
  CONSUMER_PROGRESS_INTERVAL_MS: '500',
});

async function highWatermarks(admin: Admin, topic: string): Promise<Map<number, number>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
}

async function storedOffsets(pool: Pool, name: string): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ partition: number; next_offset: string }>(
    'SELECT partition, next_offset FROM featurestore.consumer_offsets WHERE consumer_group = $1',
    [`featurestore.default.${name}`],
  );
  return new Map(rows.map((r) => [r.partition, Number(r.next_offset)]));
}

/** Waits until every partition's stored offset is its high watermark: nothing left, markers included. */
async function caughtUp(pool: Pool, admin: Admin, name: string, topic: string): Promise<void> {
  let seen = '';
  await eventually(
    async () => {
      const [high, stored] = await Promise.all([highWatermarks(admin, topic), storedOffsets(pool, name)]);
      seen = [...high].map(([p, h]) => `partition ${p}: stored ${stored.get(p) ?? 'none'} of ${h}`).join(', ');
      return [...high].every(([p, h]) => (stored.get(p) ?? 0) === h) ? true : undefined;
    },
    `the consumer of ${topic} to store every partition up to its high watermark`,
    120_000,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message} (last seen: ${seen})`);
  });
}

describe('offset gaps', () => {
  let pool: Pool;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  const consumers: RunningService[] = [];
  const start = async (name: string): Promise<RunningService> => {
    const consumer = await startService('consumer', consumerEnv(name), `${name}-consumer`);
    consumers.push(consumer);
    await consumer.waitReady();
    return consumer;
  };

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    for (const c of consumers) await c.crash();
    await producer?.disconnect();
    await admin?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('serves every committed transaction and no aborted one, across kill -9', async () => {
    const name = uniqueName('txn');
    const topic = `${name}-events`;
    await createTopic(kafka, topic, 4);
    const table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic, { batchSize: 50 }));
    const committed = generateStream({ count: 10_000, entities: 500, prefix: `${name}:c:`, invalidRate: 0 });
    const aborted = generateStream({ count: 2_000, entities: 100, prefix: `${name}:aborted:`, invalidRate: 0 });
    const abortedLast = generateStream({ count: 300, entities: 30, prefix: `${name}:aborted-last:`, invalidRate: 0 });
    const transactional = kafka.producer({ transactionalId: `${name}-tx`, idempotent: true, maxInFlightRequests: 1 });
    await transactional.connect();
    // Five committed transactions with an aborted one in the middle, each spread over every partition.
    const slices = [0, 2_000, 4_000, 6_000, 8_000, 10_000].map((from, i, all) =>
      committed.lines.slice(from, all[i + 1]),
    );
    const plan: { lines: string[]; commit: boolean }[] = [
      { lines: slices[0]!, commit: true },
      { lines: slices[1]!, commit: true },
      { lines: aborted.lines, commit: false },
      { lines: slices[2]!, commit: true },
      { lines: slices[3]!, commit: true },
      { lines: slices[4]!, commit: true },
      // Also one at the very end: the partitions then end in records nobody may see.
      { lines: abortedLast.lines, commit: false },
    ];
    for (const { lines, commit } of plan) {
      const tx = await transactional.transaction();
      for (let i = 0; i < lines.length; i += 500) {
        await tx.send({ topic, messages: lines.slice(i, i + 500).map((value) => ({ key: kafkaKeyOf(value), value })) });
      }
      await (commit ? tx.commit() : tx.abort());
    }
    await transactional.disconnect();

    const abortedIds = [
      ...new Set(
        [...aborted.lines, ...abortedLast.lines].map((l) => (JSON.parse(l) as { entity_id: string }).entity_id),
      ),
    ];
    const servedAborted = async (): Promise<number> =>
      Number(
        (
          await pool.query<{ n: string }>(`SELECT count(*) AS n FROM features."${table}" WHERE entity_id = ANY($1)`, [
            abortedIds,
          ])
        ).rows[0]!.n,
      );

    let consumer = await start(name);
    // Killed once it has stored part of the topic, and started again.
    await eventually(
      async () =>
        [...(await storedOffsets(pool, name)).values()].reduce((a, b) => a + b, 0) > 1_000 ? true : undefined,
      'part of the topic stored',
    );
    await consumer.crash();
    expect(await servedAborted()).toBe(0);
    consumer = await start(name);
    await caughtUp(pool, admin, name, topic);

    expect(await servedAborted()).toBe(0);
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(
      expectedState(committed.lines, committed.invalid),
    );
    // Lag is 0 on the consumer's own gauge once it sampled after catching up.
    await eventually(
      async () => ((await consumer.metric('featurestore_consumer_lag_records')) === 0 ? true : undefined),
      'the lag gauge to read 0',
      30_000,
    );
    expect(await consumer.stop()).toBe(0);
  });

  it('goes on through a compacted topic', async () => {
    const name = uniqueName('compact');
    const topic = `${name}-events`;
    await admin.createTopics({
      topics: [
        {
          topic,
          numPartitions: 2,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'segment.ms', value: '200' },
            { name: 'min.cleanable.dirty.ratio', value: '0.01' },
            { name: 'min.compaction.lag.ms', value: '0' },
            { name: 'delete.retention.ms', value: '0' },
          ],
        },
      ],
      waitForLeaders: true,
    });
    const table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic, { batchSize: 50 }));
    // Few keys written many times, in rounds far enough apart for segments to roll. Each key's
    // events are in time order and carry every feature, so what compaction keeps (the last record
    // of each key) holds each key's newest values: the result does not depend on how far the
    // cleaner got, which goes on while the consumer reads.
    const keys = Array.from({ length: 20 }, (_, k) => `${name}:k${k}`);
    const lines = Array.from({ length: 3_000 }, (_, i) =>
      JSON.stringify({
        entity_id: keys[i % keys.length],
        action: ['click', 'view', 'buy'][i % 3],
        amount: i / 100,
        timestamp: new Date(Date.parse('2026-01-23T09:00:00Z') + i * 1000).toISOString(),
      }),
    );
    for (let i = 0; i < lines.length; i += 300) {
      await producer.send({
        topic,
        acks: -1,
        messages: lines.slice(i, i + 300).map((value) => ({ key: kafkaKeyOf(value), value })),
      });
      await new Promise((r) => setTimeout(r, 300));
    }
    const remaining = await eventually(
      async () => {
        // A record after the wait rolls the last full segment, so the cleaner may take it too.
        await producer.send({
          topic,
          acks: -1,
          messages: [
            { key: 'roll', value: JSON.stringify({ entity_id: `${name}:roll`, timestamp: '2026-01-23T09:00:00Z' }) },
          ],
        });
        const high = [...(await highWatermarks(admin, topic)).values()].reduce((a, b) => a + b, 0);
        const records = await readToEnd(kafka, topic);
        return records.length < high * 0.5 ? records : undefined;
      },
      'the log cleaner to compact the topic',
      120_000,
    );
    await start(name);
    await caughtUp(pool, admin, name, topic);
    expect(remaining.length).toBeLessThan(lines.length);
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(expectedState(lines, new Set()));
  });

  it('goes on after the records at its stored offsets were deleted from Kafka', async () => {
    const name = uniqueName('deleted');
    const topic = `${name}-events`;
    await createTopic(kafka, topic, 2);
    const table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic, { batchSize: 50 }));
    const [first, gone, last] = [0, 1, 2].map((k) =>
      generateStream({ count: 500, entities: 50, prefix: `${name}:${k}:`, invalidRate: 0 }),
    );
    const send = async (lines: string[]) =>
      producer.send({ topic, acks: -1, messages: lines.map((value) => ({ key: kafkaKeyOf(value), value })) });
    await send(first!.lines);
    const consumer = await start(name);
    await caughtUp(pool, admin, name, topic);
    expect(await consumer.stop()).toBe(0);
    await send(gone!.lines);
    // What retention does to old segments: the partition's start moves past records never consumed.
    const high = await highWatermarks(admin, topic);
    await admin.deleteTopicRecords({
      topic,
      partitions: [...high].map(([partition, offset]) => ({ partition, offset: String(offset) })),
    });
    await send(last!.lines);
    await start(name);
    await caughtUp(pool, admin, name, topic);
    expect(await storedState((sql) => pool.query(sql), table)).toEqual(
      expectedState([...first!.lines, ...last!.lines], new Set()),
    );
  });
});
