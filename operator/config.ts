import { z } from 'zod';
import { baseEnv, databaseUrl, kafkaBrokers, loadConfig, port } from '../core/config';

export const operatorEnv = baseEnv.extend({
  PORT: port(8082),
  /** Admin connection: the operator is the only component that runs DDL. */
  DATABASE_URL: databaseUrl,
  /** Brokers handed to consumer Deployments. */
  KAFKA_BROKERS: kafkaBrokers,
  /** Postgres host:port as consumer pods reach it, when it differs from the operator's view. */
  CONSUMER_DATABASE_HOST: z
    .string()
    .regex(/^[^\s/@:]+(:\d{1,5})?$/)
    .optional(),
  CONSUMER_IMAGE: z.string().min(1).default('feature-store:dev'),
  CONSUMER_IMAGE_PULL_POLICY: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
  CONSUMER_LOG_LEVEL: z.string().default('info'),
  /** Comma-separated Secret names consumer pods pull their image with (private registries). */
  CONSUMER_IMAGE_PULL_SECRETS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  /** Comma-separated namespaces to watch; empty watches all. */
  WATCH_NAMESPACES: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  LEADER_ELECTION: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  LEASE_NAMESPACE: z.string().default(process.env.POD_NAMESPACE ?? 'default'),
  LEASE_NAME: z.string().default('featurestore-operator'),
  /** The ServiceAccount (in LEASE_NAMESPACE) the Lease is owned by, so it is deleted with it. */
  LEASE_OWNER_SERVICE_ACCOUNT: z.string().optional(),
  POD_NAME: z.string().default(process.env.HOSTNAME ?? `operator-${process.pid}`),
  RESYNC_SECONDS: z.coerce.number().int().min(5).default(60),
  RECONCILE_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(4),
  /** How often every group's lag is observed (Kafka watermarks against stored offsets). */
  PROGRESS_INTERVAL_SECONDS: z.coerce.number().min(0.2).default(10),
  /** A partition with lag whose stored offset has not moved for this long sets Stalled=True. */
  STALL_AFTER_SECONDS: z.coerce.number().min(1).default(120),
});

export type OperatorConfig = z.infer<typeof operatorEnv>;

export const loadOperatorConfig = (env: NodeJS.ProcessEnv = process.env): OperatorConfig =>
  loadConfig(operatorEnv, env);
