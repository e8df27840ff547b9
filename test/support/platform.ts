import { randomBytes } from 'node:crypto';
import { compileGroup } from '../../core/featuregroup/compiled';
import { Kafka, logLevel, Partitioners, type IHeaders, type KafkaMessage, type Producer } from 'kafkajs';
import { Pool } from 'pg';
import { featureGroupSpecSchema, type FeatureGroupSpecInput, type GroupRef } from '../../core/featuregroup/schema';
import { migrationsDir } from '../../core/paths';
import { migrate } from '../../core/storage/migrate';
import { consumerGroupFor } from '../../core/kafka';
import { applyStore, dropStore } from '../../core/storage/store';
import { requireEnv } from './services';

export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

export function testPool(): Pool {
  const pool = new Pool({ connectionString: requireEnv('DATABASE_URL'), max: 4 });
  // Idle connections die when a test restarts Postgres; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

export function testKafka(): Kafka {
  return new Kafka({
    clientId: 'featurestore-tests',
    brokers: requireEnv('KAFKA_BROKERS').split(','),
    logLevel: logLevel.NOTHING,
  });
}

/** A connected producer as ingest configures its own: idempotent, one request in flight, keyed partitioning. */
export async function idempotentProducer(kafka: Kafka): Promise<Producer> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return producer;
}

export async function createTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

const registered: GroupRef[] = [];

/** Provisions a group's store as the operator would; dropRegisteredGroups removes it again. */
export async function registerGroup(pool: Pool, ref: GroupRef, spec: FeatureGroupSpecInput): Promise<string> {
  await migrate(pool, migrationsDir());
  const { table } = await applyStore(pool, compileGroup(ref, featureGroupSpecSchema.parse(spec)), 1);
  registered.push(ref);
  return table;
}

/**
 * Drops the tables, registry rows and offsets of the groups this suite registered, so that
 * serving in later runs or `make up` on the same servers does not answer from test data.
 * FS_KEEP_TEST_DATA=1 keeps them for debugging.
 */
export async function dropRegisteredGroups(pool: Pool): Promise<void> {
  if (process.env.FS_KEEP_TEST_DATA === '1') return;
  for (const ref of registered.splice(0)) await dropStore(pool, ref, consumerGroupFor(ref));
}

export interface ReadRecord {
  partition: number;
  offset: bigint;
  key: string | null;
  value: string;
  headers: Record<string, string>;
}

function headersOf(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  return out;
}

function recordOf(partition: number, m: KafkaMessage): ReadRecord {
  return {
    partition,
    offset: BigInt(m.offset),
    key: m.key?.toString() ?? null,
    value: m.value?.toString() ?? '',
    headers: headersOf(m.headers),
  };
}

/** Reads a topic from the beginning until `count` records arrived (or the timeout says how many did). */
export async function readTopic(kafka: Kafka, topic: string, count: number, timeoutMs = 60_000): Promise<ReadRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 });
  const records: ReadRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${records.length}/${count} records of ${topic} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      if (count === 0) {
        clearTimeout(timer);
        resolve();
      }
      void consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) records.push(recordOf(batch.partition, m));
          if (records.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

/**
 * Reads a topic from the beginning to its high watermarks, however many records lie below them
 * (compaction, deleted records and transaction markers leave fewer records than offsets).
 */
export async function readToEnd(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<ReadRecord[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map(
    (await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect()))
      .filter((o) => Number(o.high) > Number(o.low))
      .map((o) => [o.partition, BigInt(o.high)]),
  );
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 });
  const records: ReadRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`read ${topic} to partitions ${[...ends.keys()].join(', ')} in ${timeoutMs} ms: not all ended`),
          ),
        timeoutMs,
      );
      const finishIfDone = (): boolean => {
        if (ends.size > 0) return false;
        clearTimeout(timer);
        resolve();
        return true;
      };
      if (finishIfDone()) return;
      void consumer.run({
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) records.push(recordOf(batch.partition, m));
          const end = ends.get(batch.partition);
          if (end !== undefined && BigInt(batch.lastOffset()) + 1n >= end) ends.delete(batch.partition);
          finishIfDone();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

export async function storedOffsetTotal(pool: Pool, consumerGroup: string): Promise<number> {
  const result = await pool.query<{ total: string | null }>(
    'SELECT sum(next_offset) AS total FROM featurestore.consumer_offsets WHERE consumer_group = $1',
    [consumerGroup],
  );
  return Number(result.rows[0]?.total ?? 0);
}
