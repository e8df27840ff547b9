/**
 * Kafka → Postgres throughput of one consumer process: 3 value features, or with --aggregates
 * 4 value features and 4 window aggregates (count, sum, avg, max).
 *   node dist/bench/consumer-throughput.js [--events 500000] [--entities 100000] [--partitions 4] [--aggregates]
 * Pre-loads a fresh topic, starts the real consumer, and times it from its first stored offset
 * to the last (start-up excluded). Prints one JSON line of figures.
 */
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { BENCH_VALUE_FEATURES, benchGroup, benchServers, preloadTopic, spawnComponent, storedOffsets } from './setup';

const ACTIONS = ['click', 'view', 'purchase', 'search'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '500000' },
      entities: { type: 'string', default: '100000' },
      partitions: { type: 'string', default: '4' },
      aggregates: { type: 'boolean', default: false },
    },
  });
  const withAggregates = values.aggregates;
  const [events, entities, partitions] = [values.events, values.entities, values.partitions].map(Number) as [
    number,
    number,
    number,
  ];
  const { databaseUrl, brokers } = benchServers();
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const group = await benchGroup(pool, 'bench', {
    features: [
      ...BENCH_VALUE_FEATURES,
      ...(withAggregates
        ? [
            { name: 'last_seen', type: 'timestamp', from: 'timestamp' },
            {
              name: 'clicks_1h',
              type: 'int64',
              aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
            },
            { name: 'spend_1d', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '1d' } },
            { name: 'avg_spend_7d', type: 'float64', aggregate: { fn: 'avg', field: 'amount', window: '7d' } },
            { name: 'max_spend_1d', type: 'float64', aggregate: { fn: 'max', field: 'amount', window: '1d' } },
          ]
        : []),
    ],
    consumer: { batchSize: 10_000 },
  });

  const base = Date.parse('2026-01-01T00:00:00Z');
  const preloadRate = await preloadTopic(brokers, group.topic, partitions, events, (n) => {
    const entity = `user_${n % entities}`;
    return {
      key: entity,
      value: JSON.stringify({
        entity_id: entity,
        action: ACTIONS[n % 4],
        page: '/p',
        amount: n / 100,
        timestamp: new Date(base + n).toISOString(),
      }),
    };
  });

  const statements = await pool.query('SELECT pg_stat_statements_reset()').then(
    () => true,
    () => false,
  );
  const consumer = spawnComponent(
    'dist/services/consumer/main.js',
    { FEATURE_GROUP: `default/${group.name}`, PORT: '0' },
    true,
  );
  let first = 0;
  let firstAt = 0;
  for (;;) {
    const done = await storedOffsets(pool, group.ref);
    if (done > 0 && firstAt === 0) [first, firstAt] = [done, Date.now()];
    if (done >= events) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (Date.now() - firstAt) / 1000;
  consumer.kill('SIGTERM');
  const rows = Number((await pool.query(`SELECT count(*) AS n FROM features."${group.table}"`)).rows[0].n);
  const postgres = statements
    ? await postgresTimePerEvent(pool, group.table, events)
    : 'pg_stat_statements is not loaded';
  const updates = await hotUpdates(pool, group.table);
  await group.drop();
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
    preload_events_per_second: preloadRate,
    postgres_exec_us_per_event: postgres,
    hot_updates: updates,
  };
  console.log(JSON.stringify(result));
}

/**
 * Share of row updates per table that were HOT (no index entry written), from pg_stat_user_tables:
 * the value and tiles tables' fillfactor leaves room on each page for the next version of its rows.
 */
async function hotUpdates(pool: Pool, table: string): Promise<Record<string, { updates: number; hot_share: number }>> {
  // Statistics reach the view asynchronously: the ones of the last transactions may lag a moment.
  await new Promise((r) => setTimeout(r, 1_000));
  const result = await pool.query<{ relname: string; upd: string; hot: string }>(
    'SELECT relname, n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE schemaname = $1 AND relname LIKE $2',
    ['features', `${table}%`],
  );
  return Object.fromEntries(
    result.rows.map((r) => [
      r.relname === table ? 'values' : r.relname.slice(table.length + 2),
      { updates: Number(r.upd), hot_share: Number(r.upd) ? Number((Number(r.hot) / Number(r.upd)).toFixed(3)) : 0 },
    ]),
  );
}

/** Postgres execution time per event, by statement kind (from pg_stat_statements). */
async function postgresTimePerEvent(pool: Pool, table: string, events: number): Promise<Record<string, number>> {
  const result = await pool.query<{ query: string; ms: number }>(
    'SELECT query, total_exec_time AS ms FROM pg_stat_statements WHERE query LIKE $1 OR query LIKE $2',
    [`%${table}%`, '%consumer_offsets%'],
  );
  const kinds: Record<string, number> = {};
  for (const { query, ms } of result.rows) {
    const kind = query.includes('__tiles')
      ? 'tiles_upsert'
      : query.includes('__history')
        ? 'history'
        : query.includes('consumer_offsets')
          ? 'offsets'
          : query.startsWith('INSERT')
            ? 'values_upsert'
            : 'other';
    kinds[kind] = (kinds[kind] ?? 0) + ms;
  }
  return Object.fromEntries(
    Object.entries(kinds).map(([kind, ms]) => [kind, Number(((ms * 1000) / events).toFixed(2))]),
  );
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
