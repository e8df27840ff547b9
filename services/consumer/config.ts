import { z } from 'zod';
import { baseEnv, databaseUrl, kafkaBrokers, loadConfig, port } from '../../core/config';

export const consumerEnv = baseEnv.extend({
  /** Health and metrics; 0 picks a free port (several consumers on one machine). */
  PORT: port(8083),
  DATABASE_URL: databaseUrl,
  KAFKA_BROKERS: kafkaBrokers,
  FEATURE_GROUP: z.string({ error: 'is required (<namespace>/<name> of a registered FeatureGroup)' }),
  /** How long a fetch waits for data before returning what it has: bounds freshness under low load. */
  CONSUMER_MAX_WAIT_MS: z.coerce.number().int().min(0).max(10_000).default(100),
  CONSUMER_MAX_BYTES_PER_PARTITION: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /** How long the group waits for a silent member (e.g. a killed pod) before moving its partitions. */
  CONSUMER_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6_000).max(300_000).default(30_000),
  /**
   * How old the consumer's view of its topic may grow before it is read again: partitions added to
   * the source topic (kafka-topics --alter --partitions) are assigned and read within about this long.
   * kafkajs's own default is 5 minutes.
   */
  CONSUMER_METADATA_MAX_AGE_MS: z.coerce.number().int().min(1_000).max(300_000).default(30_000),
  /** Partitions processed at once, each in its own transaction: overlaps Postgres and Node work. */
  CONSUMER_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(4),
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(4),
  /**
   * Postgres's synchronous_commit for the consumer's sessions. `off` (the default) does not wait for
   * each batch's WAL flush: a Postgres crash may then lose the last fraction of a second of
   * batches, but it loses their offsets with them, atomically, and the consumer writes them again
   * from Kafka. Nothing is lost and nothing is applied twice; values may briefly step back.
   */
  CONSUMER_SYNCHRONOUS_COMMIT: z.enum(['on', 'off']).default('off'),
  /**
   * A statement running longer is cancelled by Postgres; one whose answer has not come 5 s after
   * that (a database that stopped answering) is abandoned by the client. Either way the batch is
   * rolled back and retried.
   */
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** How often lag and freshness gauges are sampled (Kafka high watermarks, stored offsets); 0 turns it off. */
  CONSUMER_PROGRESS_INTERVAL_MS: z.coerce.number().int().min(0).default(10_000),
  /** How often expired tiles and history are deleted; 0 turns it off. */
  CONSUMER_RETENTION_INTERVAL_MS: z.coerce.number().int().min(0).default(300_000),
});

export type ConsumerConfig = z.infer<typeof consumerEnv>;

export const loadConsumerConfig = (env: NodeJS.ProcessEnv = process.env): ConsumerConfig =>
  loadConfig(consumerEnv, env);
