import { Partitioners } from 'kafkajs';
import { createPool } from '../../core/storage/pool';
import { createKafka } from '../../core/kafka';
import { TokenFile } from '../../core/http/auth';
import { createLogger } from '../../core/logger';
import { createRegistry } from '../../core/metrics';
import { gracefulClose } from '../../core/http/graceful-close';
import { onShutdown } from '../../core/shutdown';
import { createIngestApp } from './app';
import { loadIngestConfig } from './config';
import { kafkaPublisher } from '../../core/kafka-publisher';
import { registryRoutes, staticRoutes } from './routes';
import { listenExpress } from '../../core/http/express-server';

async function main(): Promise<void> {
  const config = loadIngestConfig();
  const log = createLogger('ingest', config.LOG_LEVEL);
  const kafka = createKafka(config.KAFKA_BROKERS, 'featurestore-ingest', log);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const publisher = kafkaPublisher(producer);
  await producer.connect();
  const registry = createRegistry('ingest');
  const pool = config.DATABASE_URL
    ? createPool(
        {
          connectionString: config.DATABASE_URL,
          max: 2,
          application_name: 'featurestore-ingest',
          statement_timeout: 5_000,
          connectionTimeoutMillis: 5_000,
        },
        log,
      )
    : undefined;
  const watched = pool && registryRoutes(pool, config, log, registry);
  if (watched) {
    await watched
      .refresh()
      .catch((error: unknown) => log.warn({ err: error }, 'registry not readable yet; will retry'));
    watched.start();
  } else {
    log.warn('DATABASE_URL is not set: only INGEST_TOPICS are accepted, keyed by INGEST_KEY_FIELD');
  }
  const tokens = config.AUTH_TOKENS_FILE ? new TokenFile(config.AUTH_TOKENS_FILE, log) : undefined;
  if (!tokens) log.warn('AUTH_TOKENS_FILE is not set: the API accepts requests without a token');
  const app = createIngestApp({
    config,
    publisher,
    routes: watched ?? staticRoutes(config),
    registry,
    log,
    ...(tokens ? { authTokens: () => tokens.current() } : {}),
  });
  const server = listenExpress(app, config.PORT, () =>
    log.info({ port: config.PORT, allowlist: config.INGEST_TOPICS }, 'ingest listening'),
  );
  server.keepAliveTimeout = 65_000;
  // Slow clients cannot hold sockets open: headers within 10 s, the whole request within 2 min.
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;
  const closer = gracefulClose(server);
  onShutdown(log, async () => {
    watched?.stop();
    await closer.close();
    await producer.disconnect();
    await pool?.end();
  });
}

main().catch((error: unknown) => {
  console.error(`ingest failed to start: ${(error as Error).message}`);
  process.exit(1);
});
