import { z } from 'zod';
import { authTokensFile, baseEnv, databaseUrl, kafkaBrokers, loadConfig, port } from '../../core/config';
import { FIELD_PATH_PATTERN, TOPIC_PATTERN } from '../../core/featuregroup/schema';

const topicList = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
  )
  .refine(
    (list) => list.length > 0 && list.every((t) => TOPIC_PATTERN.test(t)),
    'must be a comma-separated list of topic names',
  );

export const ingestEnv = baseEnv.extend({
  PORT: port(8081),
  KAFKA_BROKERS: kafkaBrokers,
  /**
   * The registry (read-only: serving's role will do): every topic a registered FeatureGroup reads is
   * accepted, keyed by its groups' entity key, learned without a restart. Unset: INGEST_TOPICS only.
   */
  DATABASE_URL: databaseUrl.optional(),
  REGISTRY_REFRESH_MS: z.coerce.number().int().min(100).default(2_000),
  /** Topics accepted besides the registered groups' (for groups not applied yet), keyed by INGEST_KEY_FIELD. */
  INGEST_TOPICS: topicList.default(['raw-events']),
  INGEST_DEFAULT_TOPIC: z.string().regex(TOPIC_PATTERN).default('raw-events'),
  INGEST_KEY_FIELD: z.string().regex(FIELD_PATH_PATTERN).default('entity_id'),
  /** Requests handled at once; more are answered 503 + Retry-After (load shedding). */
  HTTP_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(256),
  /** A request unanswered after this is answered 503 + Retry-After. */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(15000),
  INGEST_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(5 * 1024 * 1024),
  INGEST_MAX_EVENT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  INGEST_MAX_EVENTS: z.coerce.number().int().positive().default(10_000),
  AUTH_TOKENS_FILE: authTokensFile,
});

export type IngestConfig = z.infer<typeof ingestEnv>;

export function loadIngestConfig(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  const config = loadConfig(ingestEnv, env);
  if (!config.INGEST_TOPICS.includes(config.INGEST_DEFAULT_TOPIC)) {
    throw new Error(`INGEST_DEFAULT_TOPIC ${config.INGEST_DEFAULT_TOPIC} must be one of INGEST_TOPICS`);
  }
  return config;
}
