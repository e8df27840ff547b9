import { Partitioners } from 'kafkajs';
import { createKafka } from '../../core/kafka';
import { TokenFile } from '../../core/http/auth';
import { createLogger } from '../../core/logger';
import { createRegistry } from '../../core/metrics';
import { onShutdown } from '../../core/shutdown';
import { createIngestApp } from './app';
import { loadIngestConfig } from './config';
import { kafkaPublisher } from './publisher';

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
  const tokens = config.AUTH_TOKENS_FILE ? new TokenFile(config.AUTH_TOKENS_FILE, log) : undefined;
  if (!tokens) log.warn('AUTH_TOKENS_FILE is not set: the API accepts requests without a token');
  const app = createIngestApp({
    config,
    publisher,
    registry: createRegistry('ingest'),
    log,
    ...(tokens ? { authTokens: () => tokens.current() } : {}),
  });
  const server = app.listen(config.PORT, () =>
    log.info({ port: config.PORT, topics: config.INGEST_TOPICS }, 'ingest listening'),
  );
  server.keepAliveTimeout = 65_000;
  // Slow clients cannot hold sockets open: headers within 10 s, the whole request within 2 min.
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;
  onShutdown(log, async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await producer.disconnect();
  });
}

main().catch((error: unknown) => {
  console.error(`ingest failed to start: ${(error as Error).message}`);
  process.exit(1);
});
