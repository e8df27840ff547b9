/**
 * Reading window aggregates: POST /get-online-features for 100 entities × 4 value features and 5
 * aggregates (1h count, 1d sum, 7d avg, 1d max, 1h last_n 5), over a week of 300,000 events that
 * the real consumer stored, open loop at 200 rps and closed loop. Prints one JSON line each.
 *   node dist/bench/aggregate-read.js [--events 300000] [--entities 20000] [--seconds 10]
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { closedLoop, openLoop } from './load';
import { BENCH_VALUE_FEATURES, benchGroup, benchServers, preloadTopic, spawnComponent, storedOffsets } from './setup';

const DAY = 86_400_000;

async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '300000' },
      entities: { type: 'string', default: '20000' },
      seconds: { type: 'string', default: '10' },
    },
  });
  const [events, entities, seconds] = [values.events, values.entities, values.seconds].map(Number) as [
    number,
    number,
    number,
  ];
  const { databaseUrl, brokers } = benchServers();
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const aggregates = ['clicks_1h', 'spend_1d', 'avg_spend_7d', 'max_spend_1d', 'recent_pages_1h'];
  const group = await benchGroup(pool, 'bench-aggread', {
    features: [
      ...BENCH_VALUE_FEATURES,
      { name: 'last_seen', type: 'timestamp', from: 'timestamp' },
      {
        name: 'clicks_1h',
        type: 'int64',
        aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
      },
      { name: 'spend_1d', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '1d' } },
      { name: 'avg_spend_7d', type: 'float64', aggregate: { fn: 'avg', field: 'amount', window: '7d' } },
      { name: 'max_spend_1d', type: 'float64', aggregate: { fn: 'max', field: 'amount', window: '1d' } },
      { name: 'recent_pages_1h', type: 'json', aggregate: { fn: 'last_n', field: 'page', window: '1h', limit: 5 } },
    ],
    consumer: { batchSize: 10_000 },
  });
  const children: ChildProcess[] = [];
  try {
    // A week up to now, a third of it in the last hour so the short windows hold plenty.
    const now = Date.now();
    await preloadTopic(brokers, group.topic, 4, events, (n) => {
      const entity = `user_${n % entities}`;
      const ago = n % 3 === 0 ? (n * 7919) % 3_600_000 : (n * 104_729) % (7 * DAY);
      return {
        key: entity,
        value: JSON.stringify({
          entity_id: entity,
          action: ['click', 'view', 'buy'][n % 3],
          page: `/p/${n % 50}`,
          amount: (n % 1000) / 10,
          timestamp: new Date(now - ago).toISOString(),
        }),
      };
    });
    const consumer = spawnComponent('dist/services/consumer/main.js', {
      FEATURE_GROUP: `default/${group.name}`,
      PORT: '0',
    });
    children.push(consumer);
    await waitFor(
      async () => (await storedOffsets(pool, group.ref)) >= events,
      'the consumer to store the events',
      300_000,
    );
    consumer.kill('SIGTERM');

    const port = 19_080 + Math.floor(Math.random() * 1000);
    const serving = spawnComponent('dist/services/serving/main.js', { PORT: String(port), DB_POOL_SIZE: '8' });
    children.push(serving);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () =>
        (await fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        )) &&
        (await fetch(`${url}/v1/feature-groups/default/${group.name}`).then(
          (r) => r.ok,
          () => false,
        )),
      'serving',
      60_000,
    );
    const refs = [...BENCH_VALUE_FEATURES.map((f) => f.name), 'last_seen', ...aggregates].map(
      (f) => `${group.name}:${f}`,
    );
    const target = {
      url,
      method: 'POST' as const,
      path: () => '/get-online-features',
      body: (i: number) =>
        JSON.stringify({
          features: refs,
          entities: { user: Array.from({ length: 100 }, (_, k) => `user_${(i * 100 + k * 7919) % entities}`) },
        }),
    };
    await closedLoop(target, 2, 8); // warm-up: prepared statements, connections
    const command = `node dist/bench/aggregate-read.js --events ${events} --entities ${entities} --seconds ${seconds}`;
    console.log(
      JSON.stringify({
        benchmark: 'aggregate_read_open_loop',
        command,
        entities_per_request: 100,
        features: refs.length,
        rate_rps: 200,
        ...(await openLoop(target, 200, seconds, 32)),
      }),
    );
    console.log(
      JSON.stringify({
        benchmark: 'aggregate_read_closed_loop',
        command,
        entities_per_request: 100,
        features: refs.length,
        connections: 8,
        ...(await closedLoop(target, seconds, 8)),
      }),
    );
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await group.drop();
    await pool.end();
  }
}

main().catch((error: unknown) => {
  console.error(`aggregate-read failed: ${(error as Error).message}`);
  process.exit(1);
});
