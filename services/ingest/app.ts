import express, { type Express } from 'express';
import { Counter, type Registry } from 'prom-client';
import { bearerAuth } from '../../core/http/auth';
import { shedLoad } from '../../core/http/overload';
import { errorHandler, HttpError } from '../../core/http/errors';
import { mountOps, requestMetrics } from '../../core/http/ops';
import type { TopicRouting } from '../../core/events/routes';
import type { Logger } from '../../core/logger';
import { rejectOtherMethods } from '../../core/http/openapi';
import { INGEST_ROUTES, ingestOpenApi } from './openapi';
import type { IngestConfig } from './config';
import { formatOf, parseEvents } from './events';
import type { Publisher } from '../../core/kafka-publisher';

/** The topics ingest accepts and how each is keyed, kept current from the registry. */
export interface Routes {
  current(): TopicRouting;
  /** Whether routes are known yet (readiness). */
  readonly loaded: boolean;
  /** Reads the registry again now; called before a topic is refused (see ROUTES_FRESH_MS). */
  refresh(): Promise<void>;
  readonly ageMs: number;
}

/**
 * How long a refusal trusts the routes it has: a group registered just now is found by the next
 * request, and a flood of unknown topics costs at most ten registry fingerprints a second.
 */
const ROUTES_FRESH_MS = 100;
/** Known topics named in a refusal. */
const LISTED_TOPICS = 50;

export interface IngestDeps {
  config: IngestConfig;
  publisher: Publisher;
  routes: Routes;
  registry: Registry;
  /** Accepted bearer-token digests; absent means the API is open (auth off). */
  authTokens?: () => readonly Buffer[];
  log: Logger;
}

export function createIngestApp({ config, publisher, routes, registry, log, authTokens }: IngestDeps): Express {
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
  const limits = { maxEventBytes: config.INGEST_MAX_EVENT_BYTES, maxEvents: config.INGEST_MAX_EVENTS };
  const routeOf = async (topic: string) => {
    const known = routes.current().routes.get(topic);
    if (known || routes.ageMs < ROUTES_FRESH_MS) return known;
    await routes.refresh().catch((error: unknown) => log.warn({ err: error }, 'registry refresh failed'));
    return routes.current().routes.get(topic);
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestMetrics(registry));
  app.use(
    shedLoad({ maxInFlight: config.HTTP_MAX_IN_FLIGHT, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS }, registry),
  );
  if (authTokens) app.use(bearerAuth(authTokens));
  mountOps(app, registry, () => Promise.resolve(publisher.ready() && routes.loaded));

  app.get('/openapi.json', (_req, res) => {
    res.json(
      ingestOpenApi({
        topics: [...routes.current().routes.keys()].sort(),
        defaultTopic: config.INGEST_DEFAULT_TOPIC,
        maxEvents: config.INGEST_MAX_EVENTS,
        maxEventBytes: config.INGEST_MAX_EVENT_BYTES,
      }),
    );
  });

  app.post('/v1/events', express.raw({ type: () => true, limit: config.INGEST_MAX_BODY_BYTES }), async (req, res) => {
    const topicParam = req.query.topic;
    if (topicParam !== undefined && typeof topicParam !== 'string')
      throw new HttpError(400, 'E_BAD_TOPIC', 'topic must be given once', 'topic');
    const topic = topicParam ?? config.INGEST_DEFAULT_TOPIC;
    const route = await routeOf(topic);
    if (!route) {
      const known = [...routes.current().routes.keys()].sort();
      const listed =
        known.slice(0, LISTED_TOPICS).join(', ') +
        (known.length > LISTED_TOPICS ? `, and ${known.length - LISTED_TOPICS} more` : '');
      throw new HttpError(
        400,
        'E_TOPIC_NOT_ALLOWED',
        `topic ${JSON.stringify(topic.slice(0, 256))} is read by no FeatureGroup and not in INGEST_TOPICS; known topics: ${listed || '(none)'}`,
        'topic',
      );
    }
    const format = formatOf(req.get('content-type'));
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const { events, rejected: refusals } = parseEvents(body, format, limits, route.key);
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

  rejectOtherMethods(app, INGEST_ROUTES);
  app.use((req, _res, next) => next(new HttpError(404, 'E_NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
