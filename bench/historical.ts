/**
 * Point-in-time retrieval: rows/s of POST /v1/historical-features for a training set of 100,000
 * (entity, timestamp) rows over 2 value features (from history) and 2 window aggregates (tiles),
 * through the real serving process, NDJSON in and out, response consumed as it streams.
 *   node dist/bench/historical.js [--rows 100000] [--entities 10000] [--events 300000]
 * The group's state is loaded by the real consumer first (not timed). Prints one JSON line.
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { benchGroup, benchServers, preloadTopic, spawnComponent, storedOffsets } from './setup';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '100000' },
      entities: { type: 'string', default: '10000' },
      events: { type: 'string', default: '300000' },
    },
  });
  const [rows, entities, events] = [values.rows, values.entities, values.events].map(Number) as [
    number,
    number,
    number,
  ];
  const { databaseUrl, brokers } = benchServers();
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const group = await benchGroup(pool, 'bench-hist', {
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'last_amount', type: 'float64', from: 'amount' },
      {
        name: 'clicks_1h',
        type: 'int64',
        aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
      },
      { name: 'spend_1d', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '1d' } },
    ],
    history: { enabled: true },
    consumer: { batchSize: 10_000 },
  });
  const name = group.name;

  // A week of events, then the real consumer loads them (history and tiles).
  const end = Date.now();
  const week = 7 * 86_400_000;
  await preloadTopic(brokers, group.topic, 4, events, (n) => {
    const entity = `user_${n % entities}`;
    const action = n % 3 === 0 ? 'click' : 'view';
    return {
      key: entity,
      value: JSON.stringify({
        entity_id: entity,
        action,
        amount: (n % 1000) / 10,
        timestamp: new Date(end - week + Math.floor((n / events) * week)).toISOString(),
      }),
    };
  });
  const consumer = spawnComponent('dist/services/consumer/main.js', { FEATURE_GROUP: `default/${name}`, PORT: '0' });
  while ((await storedOffsets(pool, group.ref)) < events) await new Promise((r) => setTimeout(r, 200));
  consumer.kill('SIGTERM');

  const port = await freePort();
  const serving = spawnComponent(
    'dist/services/serving/main.js',
    { PORT: String(port), REGISTRY_REFRESH_MS: '500' },
    true,
  );
  const url = `http://127.0.0.1:${port}`;
  for (let ready = false; !ready;) {
    ready = await fetch(`${url}/v1/feature-groups/default/${name}`).then(
      (r) => r.ok,
      () => false,
    );
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }

  const features = ['last_action', 'last_amount', 'clicks_1h', 'spend_1d'].map((f) => `${name}:${f}`);
  const lines = [JSON.stringify({ features })];
  for (let i = 0; i < rows; i++)
    lines.push(
      JSON.stringify({
        user: `user_${(i * 7919) % entities}`,
        timestamp: end - Math.floor((((i * 104_729) % 1_000_000) / 1_000_000) * week),
      }),
    );
  const body = `${lines.join('\n')}\n`;

  const start = performance.now();
  const response = await fetch(`${url}/v1/historical-features`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  });
  if (!response.ok || !response.body)
    throw new Error(`historical-features answered ${response.status}: ${await response.text()}`);
  let received = 0;
  let firstByteMs = 0;
  let present = 0;
  let rest = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (firstByteMs === 0) firstByteMs = performance.now() - start;
    const text = rest + decoder.decode(chunk, { stream: true });
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) {
      if (!part) continue;
      received++;
      if (part.includes('"PRESENT"')) present++;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  serving.kill('SIGTERM');
  await new Promise((r) => serving.once('exit', r));
  await group.drop();
  await pool.end();
  if (received !== rows + 1) throw new Error(`expected ${rows} rows and a header, got ${received} lines`);
  console.log(
    JSON.stringify({
      benchmark: 'historical_retrieval',
      command: `node dist/bench/historical.js --rows ${rows} --entities ${entities} --events ${events}`,
      rows,
      features: features.length,
      history_events: events,
      rows_with_a_present_value: present,
      seconds: Number(seconds.toFixed(3)),
      rows_per_second: Math.round(rows / seconds),
      first_byte_ms: Math.round(firstByteMs),
      request_bytes: body.length,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
