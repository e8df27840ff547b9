import { Partitioners } from 'kafkajs';
import { createPool } from '../../core/storage/pool';
import { createKafka } from '../../core/kafka';
import { kafkaPublisher } from '../../core/kafka-publisher';
import { TokenFile } from '../../core/http/auth';
import { createLogger } from '../../core/logger';
import { createRegistry } from '../../core/metrics';
import { registerPoolMetrics } from '../../core/storage/pool-metrics';
import { gracefulClose } from '../../core/http/graceful-close';
import { onShutdown } from '../../core/shutdown';
import { createServingApp } from './app';
import { Catalog } from './catalog';
import { loadServingConfig } from './config';
import { listenExpress } from '../../core/http/express-server';

async function main(): Promise<void> {
  const config = loadServingConfig();
  const log = createLogger('serving', config.LOG_LEVEL);
  const pool = createPool(
    {
      connectionString: config.DATABASE_READ_URL ?? config.DATABASE_URL,
      max: config.DB_POOL_SIZE,
      application_name: 'featurestore-serving',
      // A read that cannot finish quickly is failed rather than queued behind a stuck database.
      statement_timeout: 5_000,
      connectionTimeoutMillis: 5_000,
    },
    log,
  );
  const registry = createRegistry('serving');
  registerPoolMetrics(pool, registry);
  const catalog = new Catalog(pool, log, registry);
  await catalog.refresh().catch((error: unknown) => log.warn({ err: error }, 'registry not readable yet; will retry'));
  catalog.start(config.REGISTRY_REFRESH_MS);

  // Feast's writes take the path of every event: Kafka, the group's topic, its consumer.
  const producer = config.KAFKA_BROKERS
    ? createKafka(config.KAFKA_BROKERS, 'featurestore-serving', log).producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      })
    : undefined;
  const publisher = producer && kafkaPublisher(producer);
  if (!producer) log.warn('KAFKA_BROKERS is not set: /push and /write-to-online-store answer 503');
  const tokens = config.AUTH_TOKENS_FILE ? new TokenFile(config.AUTH_TOKENS_FILE, log) : undefined;
  if (!tokens) log.warn('AUTH_TOKENS_FILE is not set: the API accepts requests without a token');
  const app = createServingApp({
    config,
    pool,
    catalog,
    ...(publisher ? { publisher } : {}),
    registry,
    log,
    ...(tokens ? { authTokens: () => tokens.current() } : {}),
  });
  const server = listenExpress(app, config.PORT, () => log.info({ port: config.PORT }, 'serving listening'));
  server.keepAliveTimeout = 65_000;
  // Slow clients cannot hold sockets open: headers within 10 s, the whole request within 2 min.
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;
  const closer = gracefulClose(server);
  onShutdown(log, async () => {
    catalog.stop();
    await closer.close();
    await producer?.disconnect();
    await pool.end();
  });
}

main().catch((error: unknown) => {
  console.error(`serving failed to start: ${(error as Error).message}`);
  process.exit(1);
});
