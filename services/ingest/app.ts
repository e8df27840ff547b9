import express, { type Express } from 'express';
import { Counter, type Registry } from 'prom-client';
import { bearerAuth } from '../../core/http/auth';
import { shedLoad } from '../../core/http/overload';
import { errorHandler, HttpError } from '../../core/http/errors';
import { mountOps, requestMetrics } from '../../core/http/ops';
import type { Logger } from '../../core/logger';
import type { IngestConfig } from './config';
import { formatOf, parseEvents } from './events';
import type { Publisher } from './publisher';

export interface IngestDeps {
  config: IngestConfig;
  publisher: Publisher;
  registry: Registry;
  /** Accepted bearer-token digests; absent means the API is open (auth off). */
  authTokens?: () => readonly Buffer[];
  log: Logger;
}

export function createIngestApp({ config, publisher, registry, log, authTokens }: IngestDeps): Express {
  const accepted = new Counter({
    name: 'featurestore_ingest_events_accepted_total',
    help: 'Events handed to Kafka',
    labelNames: ['topic'],
    registers: [registry],
  });
  const rejected = new Counter({
    name: 'featurestore_ingest_events_rejected_total',
    help: 'Events refused at the API',
    registers: [registry],
  });
  const allowedTopics = new Set(config.INGEST_TOPICS);
  const limits = {
    maxEventBytes: config.INGEST_MAX_EVENT_BYTES,
    maxEvents: config.INGEST_MAX_EVENTS,
    keyField: config.INGEST_KEY_FIELD,
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestMetrics(registry));
  app.use(
    shedLoad({ maxInFlight: config.HTTP_MAX_IN_FLIGHT, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS }, registry),
  );
  if (authTokens) app.use(bearerAuth(authTokens));
  mountOps(app, registry, () => Promise.resolve(publisher.ready()));

  app.post('/v1/events', express.raw({ type: () => true, limit: config.INGEST_MAX_BODY_BYTES }), async (req, res) => {
    const topicParam = req.query.topic;
    if (topicParam !== undefined && typeof topicParam !== 'string')
      throw new HttpError(400, 'E_BAD_TOPIC', 'topic must be given once', 'topic');
    const topic = topicParam ?? config.INGEST_DEFAULT_TOPIC;
    if (!allowedTopics.has(topic)) {
      throw new HttpError(
        400,
        'E_TOPIC_NOT_ALLOWED',
        `topic ${JSON.stringify(topic.slice(0, 256))} is not accepted here; allowed: ${config.INGEST_TOPICS.join(', ')}`,
        'topic',
      );
    }
    const format = formatOf(req.get('content-type'));
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const { events, rejected: refusals } = parseEvents(body, format, limits);
    rejected.inc(refusals.length);
    if (events.length === 0) {
      throw new HttpError(
        400,
        'E_NO_VALID_EVENTS',
        `no valid event in the request: ${refusals[0]?.reason ?? 'empty'}`,
        'body',
      );
    }
    try {
      await publisher.publish(topic, events);
    } catch (error) {
      log.warn({ err: error, topic, events: events.length }, 'kafka publish failed');
      throw new HttpError(
        503,
        'E_BROKER_UNAVAILABLE',
        'events could not be handed to Kafka; nothing was accepted, retry later',
        undefined,
        { 'Retry-After': '5' },
      );
    }
    accepted.inc({ topic }, events.length);
    res.status(202).json({ accepted: events.length, rejected: refusals.length, errors: refusals.slice(0, 100) });
  });

  app.use((req, _res, next) => next(new HttpError(404, 'E_NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
