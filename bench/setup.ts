import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus as cpuList } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { compileGroup } from '../core/featuregroup/compiled';
import { featureGroupSpecSchema, type FeatureGroupSpec, type GroupRef } from '../core/featuregroup/schema';
import { consumerGroupFor } from '../core/kafka';
import { migrationsDir, projectRoot } from '../core/paths';
import { migrate } from '../core/storage/migrate';
import { applyStore, dropStore } from '../core/storage/store';

/** What every benchmark needs from bench/run.sh: the servers' addresses. */
export function benchServers(): { databaseUrl: string; brokers: string[] } {
  const { DATABASE_URL, KAFKA_BROKERS } = process.env;
  if (!DATABASE_URL || !KAFKA_BROKERS)
    throw new Error('DATABASE_URL and KAFKA_BROKERS must be set (bench/run.sh sets them)');
  return { databaseUrl: DATABASE_URL, brokers: KAFKA_BROKERS.split(',') };
}

export const BENCH_VALUE_FEATURES = [
  { name: 'last_action', type: 'string', from: 'action' },
  { name: 'last_page', type: 'string', from: 'page' },
  { name: 'last_amount', type: 'float64', from: 'amount' },
] as const;

export interface BenchGroup {
  ref: GroupRef;
  name: string;
  topic: string;
  spec: FeatureGroupSpec;
  table: string;
  /** Drops the group's tables, registry row and offsets: benchmark groups must not be served later. */
  drop(): Promise<void>;
}

/** A fresh group in `default`, keyed by entity_id with event time `timestamp`, provisioned as the operator would. */
export async function benchGroup(pool: Pool, prefix: string, spec: Record<string, unknown>): Promise<BenchGroup> {
  await migrate(pool, migrationsDir());
  // A benchmark killed before its clean-up left its group registered; serving would read it too.
  const stale = await pool.query<{ name: string }>(
    "SELECT name FROM featurestore.feature_groups WHERE namespace = 'default' AND name ~ $1",
    [`^${prefix}-[0-9a-f]{6}$`],
  );
  for (const { name: old } of stale.rows)
    await dropStore(pool, { namespace: 'default', name: old }, consumerGroupFor({ namespace: 'default', name: old }));
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const ref = { namespace: 'default', name };
  const topic = `${name}-events`;
  const parsed = featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic, eventTimeField: 'timestamp' },
    ...spec,
  });
  const { table } = await applyStore(pool, compileGroup(ref, parsed), 1);
  return { ref, name, topic, spec: parsed, table, drop: () => dropStore(pool, ref, consumerGroupFor(ref)) };
}

/** Creates `topic` and sends `events` records in batches of 10,000; returns the records/s it took. */
export async function preloadTopic(
  brokers: string[],
  topic: string,
  partitions: number,
  events: number,
  record: (n: number) => { key: string; value: string },
): Promise<number> {
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const start = performance.now();
  for (let sent = 0; sent < events; sent += 10_000) {
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: Math.min(10_000, events - sent) }, (_, i) => record(sent + i)),
    });
  }
  await producer.disconnect();
  return Math.round(events / ((performance.now() - start) / 1000));
}

const cpuCount = (): number => cpuList().length;

/**
 * A built component as its own process, quiet, with BENCH_CPU_PROF_DIR honoured when `profile`;
 * pinned to the CPU list `cpus` (taskset) when given.
 */
export function spawnComponent(
  entry: string,
  env: Record<string, string>,
  profile = false,
  cpus?: string,
): ChildProcess {
  const prof =
    profile && process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const command = [process.execPath, ...prof, join(projectRoot(), entry)];
  // A pinned run (bench/run.sh) pins this process to the load generator's core, and children inherit
  // that: a component not pinned on purpose gets every core back.
  const list = cpus ?? (process.env.BENCH_SERVER_CPUS !== undefined ? `0-${cpuCount() - 1}` : undefined);
  const [file, ...args] = list === undefined ? command : ['taskset', '-c', list, ...command];
  return spawn(file!, args, {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Starts a component on `port` and waits until `probe` answers 200. */
export async function startComponent(
  entry: string,
  env: Record<string, string>,
  port: number,
  options: { probe?: string; profile?: boolean; cpus?: string } = {},
): Promise<ChildProcess> {
  const child = spawnComponent(entry, { ...env, PORT: String(port) }, options.profile, options.cpus);
  const deadline = performance.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${entry} exited during start-up`);
    if (performance.now() > deadline) throw new Error(`${entry} did not answer ${options.probe ?? '/readyz'} in 120 s`);
    const ok = await fetch(`http://127.0.0.1:${port}${options.probe ?? '/readyz'}`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** SIGTERM and wait for the exit; a process already gone is left alone. */
export async function stopComponent(child: ChildProcess): Promise<void> {
  // Already gone (by exit or by signal): its 'exit' has fired and would never fire again.
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/** Offsets the group's consumers have stored in Postgres, summed over partitions. */
export async function storedOffsets(pool: Pool, ref: GroupRef): Promise<number> {
  const result = await pool.query<{ t: string | null }>(
    'SELECT sum(next_offset) AS t FROM featurestore.consumer_offsets WHERE consumer_group = $1',
    [consumerGroupFor(ref)],
  );
  return Number(result.rows[0]?.t ?? 0);
}
