import express from 'express';
import { Partitioners } from 'kafkajs';
import type { Pool } from 'pg';
import { createPool } from '../../core/storage/pool';
import { parseGroupId, groupId, type GroupRef } from '../../core/featuregroup/schema';
import { mountOps } from '../../core/http/ops';
import { consumerGroupFor, createKafka } from '../../core/kafka';
import { createLogger, type Logger } from '../../core/logger';
import { createRegistry } from '../../core/metrics';
import { retryWithBackoff } from '../../core/retry';
import { onShutdown } from '../../core/shutdown';
import { getGroup, type RegisteredGroup } from '../../core/storage/registry';
import { loadConsumerConfig } from './config';
import { startRetention } from './retention';
import { ProgressReporter } from './progress';
import { GroupRunner } from './runner';
import { listenExpress } from '../../core/http/express-server';

/** The operator registers a group before it starts its consumer; wait for that rather than crash. */
async function awaitRegistration(pool: Pool, ref: GroupRef, log: Logger): Promise<RegisteredGroup> {
  const group = await retryWithBackoff(
    async () => {
      const found = await getGroup(pool, ref);
      if (!found) throw new Error(`feature group ${groupId(ref)} is not in the registry yet`);
      return found;
    },
    () => true,
    (error, attempt) => log.warn({ err: error, attempt }, 'waiting for the feature group'),
  );
  return group!;
}

async function main(): Promise<void> {
  const config = loadConsumerConfig();
  const ref = parseGroupId(config.FEATURE_GROUP);
  const log = createLogger('consumer', config.LOG_LEVEL).child({ group: groupId(ref) });
  const pool = createPool(
    {
      connectionString: config.DATABASE_URL,
      max: Math.max(config.DB_POOL_SIZE, config.CONSUMER_PARTITIONS_CONCURRENTLY + 1),
      application_name: `featurestore-consumer ${groupId(ref)}`,
      statement_timeout: config.DB_STATEMENT_TIMEOUT_MS,
      query_timeout: config.DB_STATEMENT_TIMEOUT_MS + 5_000,
      connectionTimeoutMillis: 10_000,
      options: `-c synchronous_commit=${config.CONSUMER_SYNCHRONOUS_COMMIT}`,
    },
    log,
  );
  const group = await awaitRegistration(pool, ref, log);

  const kafka = createKafka(config.KAFKA_BROKERS, `featurestore-consumer-${ref.namespace}-${ref.name}`, log);
  const consumer = kafka.consumer({
    groupId: consumerGroupFor(ref),
    // read_committed: records of aborted transactions are never delivered, so never stored.
    readUncommitted: false,
    maxWaitTimeInMs: config.CONSUMER_MAX_WAIT_MS,
    maxBytesPerPartition: config.CONSUMER_MAX_BYTES_PER_PARTITION,
    maxBytes: config.CONSUMER_MAX_BYTES_PER_PARTITION * 4,
    sessionTimeout: config.CONSUMER_SESSION_TIMEOUT_MS,
    heartbeatInterval: Math.min(3_000, config.CONSUMER_SESSION_TIMEOUT_MS / 3),
    metadataMaxAge: config.CONSUMER_METADATA_MAX_AGE_MS,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 10_000 },
  });
  // Dead letters must not be lost: the idempotent producer retries until Kafka takes them.
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 10_000 },
  });
  await producer.connect();

  const registry = createRegistry('consumer');
  const admin = kafka.admin();
  await admin.connect();
  const progress = new ProgressReporter(
    { admin, pool, consumerGroup: consumerGroupFor(ref), topic: group.spec.source.topic, log },
    registry,
  );
  const runner = new GroupRunner({
    group,
    consumer,
    producer,
    pool,
    registry,
    log,
    partitionsConcurrently: config.CONSUMER_PARTITIONS_CONCURRENTLY,
    progress,
    // A replay rebuilt the group's state under us: exit, and come back (the Deployment restarts
    // the container) to resume from the offsets the replay stored. Nothing was committed.
    onFenced: (error) => {
      log.warn({ reason: error.message }, 'fenced by a replay of the feature group; exiting to start over');
      process.exit(75);
    },
  });
  let consuming = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (consuming = true));
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    log.error({ err: payload.error, restart: payload.restart }, 'kafka consumer crashed');
    if (!payload.restart) process.exit(1);
  });

  const app = express();
  mountOps(app, registry, async () => consuming && (await pool.query('SELECT 1')).rowCount === 1);
  const server = listenExpress(app, config.PORT, () =>
    log.info({ port: config.PORT }, 'consumer health and metrics listening'),
  );

  await runner.start();
  const stopRetention = startRetention(pool, group.group, config.CONSUMER_RETENTION_INTERVAL_MS, log);
  progress.start(config.CONSUMER_PROGRESS_INTERVAL_MS);
  onShutdown(log, async () => {
    stopRetention();
    progress.stop();
    await runner.stop();
    await producer.disconnect();
    await admin.disconnect();
    server.close();
    await pool.end();
  });
}

main().catch((error: unknown) => {
  console.error(`consumer failed: ${(error as Error).message}`);
  process.exit(1);
});
