/**
 * Kafka → Postgres throughput of one consumer process: 3 value features, or with --aggregates
 * 4 value features and 4 window aggregates (count, sum, avg, max).
 *   node dist/bench/consumer-throughput.js [--events 500000] [--entities 100000] [--partitions 4] [--aggregates]
 * Pre-loads a fresh topic, starts the real consumer, and times it from its first stored offset
 * to the last (start-up excluded). Prints one JSON line of figures.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { featureGroupSpecSchema } from '../core/featuregroup/schema';
import { migrationsDir, projectRoot } from '../core/paths';
import { migrate } from '../core/storage/migrate';
import { applyStore, dropStore } from '../core/storage/store';

const ACTIONS = ['click', 'view', 'purchase', 'search'];


async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { events: { type: 'string', default: '500000' }, entities: { type: 'string', default: '100000' }, partitions: { type: 'string', default: '4' }, aggregates: { type: 'boolean', default: false } },
  });
  const withAggregates = values.aggregates === true;
  const [events, entities, partitions] = [values.events, values.entities, values.partitions].map(Number) as [number, number, number];
  const { DATABASE_URL, KAFKA_BROKERS } = process.env;
  if (!DATABASE_URL || !KAFKA_BROKERS) throw new Error('DATABASE_URL and KAFKA_BROKERS must be set (bench/run.sh sets them)');

  const name = `bench-${randomBytes(3).toString('hex')}`;
  const topic = `${name}-events`;
  const pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
  await migrate(pool, migrationsDir());
  const spec = featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic, eventTimeField: 'timestamp' },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'last_page', type: 'string', from: 'page' },
      { name: 'last_amount', type: 'float64', from: 'amount' },
      ...(withAggregates
        ? [
            { name: 'last_seen', type: 'timestamp', from: 'timestamp' },
            { name: 'clicks_1h', type: 'int64', aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } } },
            { name: 'spend_1d', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '1d' } },
            { name: 'avg_spend_7d', type: 'float64', aggregate: { fn: 'avg', field: 'amount', window: '7d' } },
            { name: 'max_spend_1d', type: 'float64', aggregate: { fn: 'max', field: 'amount', window: '1d' } },
          ]
        : []),
    ],
    consumer: { batchSize: 10_000 },
  });
  const { table } = await applyStore(pool, { namespace: 'default', name }, spec, 1);

  const kafka = new Kafka({ clientId: 'bench', brokers: KAFKA_BROKERS.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const base = Date.parse('2026-01-01T00:00:00Z');
  const loadStart = Date.now();
  for (let sent = 0; sent < events; sent += 10_000) {
    const messages = Array.from({ length: Math.min(10_000, events - sent) }, (_, i) => {
      const entity = `user_${(sent + i) % entities}`;
      return {
        key: entity,
        value: JSON.stringify({ entity_id: entity, action: ACTIONS[(sent + i) % 4], page: '/p', amount: (sent + i) / 100, timestamp: new Date(base + sent + i).toISOString() }),
      };
    });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
  const loadSeconds = (Date.now() - loadStart) / 1000;

  const profile = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const consumer = spawn(process.execPath, [...profile, join(projectRoot(), 'dist/services/consumer/main.js')], {
    env: { ...process.env, FEATURE_GROUP: `default/${name}`, PORT: '0', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const offsets = async (): Promise<number> =>
    Number((await pool.query<{ t: string | null }>('SELECT sum(next_offset) AS t FROM featurestore.consumer_offsets WHERE consumer_group = $1', [`featurestore.default.${name}`])).rows[0]?.t ?? 0);
  let first = 0;
  let firstAt = 0;
  for (;;) {
    const done = await offsets();
    if (done > 0 && firstAt === 0) [first, firstAt] = [done, Date.now()];
    if (done >= events) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (Date.now() - firstAt) / 1000;
  consumer.kill('SIGTERM');
  const rows = Number((await pool.query(`SELECT count(*) AS n FROM features."${table}"`)).rows[0].n);
  // Leaves the database as it was: benchmark groups must not show up in served features.
  await dropStore(pool, { namespace: 'default', name }, `featurestore.default.${name}`);
  await pool.end();
  const result = {
    benchmark: withAggregates ? 'consumer_throughput_4_values_4_aggregates' : 'consumer_throughput_value_features',
    command: `node dist/bench/consumer-throughput.js --events ${events} --entities ${entities} --partitions ${partitions}${withAggregates ? ' --aggregates' : ''}`,
    events,
    entities: rows,
    partitions,
    timed_events: events - first,
    seconds: Number(seconds.toFixed(3)),
    events_per_second: Math.round((events - first) / seconds),
    preload_events_per_second: Math.round(events / loadSeconds),
  };
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
