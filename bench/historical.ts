/**
 * Point-in-time retrieval: rows/s of POST /v1/historical-features for a training set of 100,000
 * (entity, timestamp) rows over 2 value features (from history) and 2 window aggregates (tiles),
 * through the real serving process, NDJSON in and out, response consumed as it streams.
 *   node dist/bench/historical.js [--rows 100000] [--entities 10000] [--events 300000]
 * The group's state is loaded by the real consumer first (not timed). Prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { featureGroupSpecSchema } from '../core/featuregroup/schema';
import { migrationsDir, projectRoot } from '../core/paths';
import { migrate } from '../core/storage/migrate';
import { applyStore, dropStore } from '../core/storage/store';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, entities: { type: 'string', default: '10000' }, events: { type: 'string', default: '300000' } } });
  const [rows, entities, events] = [values.rows, values.entities, values.events].map(Number) as [number, number, number];
  const { DATABASE_URL, KAFKA_BROKERS } = process.env;
  if (!DATABASE_URL || !KAFKA_BROKERS) throw new Error('DATABASE_URL and KAFKA_BROKERS must be set (bench/run.sh sets them)');

  const name = `bench-hist-${randomBytes(3).toString('hex')}`;
  const ref = { namespace: 'default', name };
  const topic = `${name}-events`;
  const pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
  await migrate(pool, migrationsDir());
  const spec = featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic, eventTimeField: 'timestamp' },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'last_amount', type: 'float64', from: 'amount' },
      { name: 'clicks_1h', type: 'int64', aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } } },
      { name: 'spend_1d', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '1d' } },
    ],
    history: { enabled: true },
    consumer: { batchSize: 10_000 },
  });
  await applyStore(pool, ref, spec, 1);

  // A week of events, then the real consumer loads them (history and tiles).
  const kafka = new Kafka({ clientId: 'bench', brokers: KAFKA_BROKERS.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const end = Date.now();
  const week = 7 * 86_400_000;
  for (let sent = 0; sent < events; sent += 10_000) {
    const messages = Array.from({ length: Math.min(10_000, events - sent) }, (_, i) => {
      const n = sent + i;
      const entity = `user_${n % entities}`;
      const action = n % 3 === 0 ? 'click' : 'view';
      return { key: entity, value: JSON.stringify({ entity_id: entity, action, amount: (n % 1000) / 10, timestamp: new Date(end - week + Math.floor((n / events) * week)).toISOString() }) };
    });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
  const consumer = spawn(process.execPath, [join(projectRoot(), 'dist/services/consumer/main.js')], {
    env: { ...process.env, FEATURE_GROUP: `default/${name}`, PORT: '0', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (;;) {
    const done = Number((await pool.query<{ t: string | null }>('SELECT sum(next_offset) AS t FROM featurestore.consumer_offsets WHERE consumer_group = $1', [`featurestore.default.${name}`])).rows[0]?.t ?? 0);
    if (done >= events) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  consumer.kill('SIGTERM');

  const port = await freePort();
  const profile = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const serving = spawn(process.execPath, [...profile, join(projectRoot(), 'dist/services/serving/main.js')], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', REGISTRY_REFRESH_MS: '500' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let ready = false; !ready; ) {
    ready = await fetch(`${url}/v1/feature-groups/default/${name}`).then((r) => r.ok, () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }

  const features = ['last_action', 'last_amount', 'clicks_1h', 'spend_1d'].map((f) => `${name}:${f}`);
  const lines = [JSON.stringify({ features })];
  for (let i = 0; i < rows; i++) lines.push(JSON.stringify({ user: `user_${(i * 7919) % entities}`, timestamp: end - Math.floor(((i * 104_729) % 1_000_000) / 1_000_000 * week) }));
  const body = `${lines.join('\n')}\n`;

  const start = performance.now();
  const response = await fetch(`${url}/v1/historical-features`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  if (!response.ok || !response.body) throw new Error(`historical-features answered ${response.status}: ${await response.text()}`);
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
  await dropStore(pool, ref, `featurestore.default.${name}`);
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
