import { z } from 'zod';
import { authTokensFile, baseEnv, databaseUrl, kafkaBrokers, loadConfig, port } from '../../core/config';

export const servingEnv = baseEnv.extend({
  PORT: port(8080),
  DATABASE_URL: databaseUrl,
  /** Optional read replica: serving reads go there when set. */
  DATABASE_READ_URL: databaseUrl.optional(),
  /** Feast's writes (`/push`, `/write-to-online-store`) go to Kafka; unset, they are answered 503. */
  KAFKA_BROKERS: kafkaBrokers.optional(),
  /** Requests handled at once; more are answered 503 + Retry-After (load shedding). */
  HTTP_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(512),
  /** A request unanswered after this is answered 503 + Retry-After. */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(10000),
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  REGISTRY_REFRESH_MS: z.coerce.number().int().min(100).default(2_000),
  SERVING_MAX_ENTITIES: z.coerce.number().int().positive().default(1_000),
  SERVING_MAX_FEATURES: z.coerce.number().int().positive().default(500),
  SERVING_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** POST /v1/historical-features: rows per request, and the JSON body size (NDJSON streams). */
  SERVING_MAX_HISTORICAL_ROWS: z.coerce.number().int().positive().default(1_000_000),
  SERVING_MAX_HISTORICAL_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  AUTH_TOKENS_FILE: authTokensFile,
});

export type ServingConfig = z.infer<typeof servingEnv>;

export const loadServingConfig = (env: NodeJS.ProcessEnv = process.env): ServingConfig => loadConfig(servingEnv, env);
