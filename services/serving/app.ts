import { ENTITY_ID_RULE, entityIdOf } from '../../core/events/extract';
import express, { type Express } from 'express';
import type { Pool } from 'pg';
import type { Registry } from 'prom-client';
import { parseGroupId } from '../../core/featuregroup/schema';
import { bearerAuth } from '../../core/http/auth';
import { shedLoad } from '../../core/http/overload';
import { errorHandler, HttpError } from '../../core/http/errors';
import { historicalFeatures } from './historical';
import { mountOps, requestMetrics } from '../../core/http/ops';
import type { Logger } from '../../core/logger';
import type { Catalog, ServedGroup } from './catalog';
import type { ServingConfig } from './config';
import { freshnessOf } from './freshness';
import { writeFrame } from './writes';
import type { Publisher } from '../../core/kafka-publisher';
import { getOnlineFeatures, parseOnlineRequest } from './online';
import { openApiDocument, SERVING_ROUTES } from './openapi';
import { rejectOtherMethods } from '../../core/http/openapi';

export interface ServingDeps {
  config: ServingConfig;
  pool: Pool;
  catalog: Catalog;
  /** Kafka, for Feast's writes; absent when serving runs without KAFKA_BROKERS. */
  publisher?: Publisher;
  registry: Registry;
  /** Accepted bearer-token digests; absent means the API is open (auth off). */
  authTokens?: () => readonly Buffer[];
  log: Logger;
}

function describeGroup(group: ServedGroup) {
  const { ref, spec, table } = group.registered;
  return {
    namespace: ref.namespace,
    name: ref.name,
    entity: spec.entity,
    source: spec.source,
    ttl: spec.ttl ?? null,
    table,
    features: spec.features.map((f) => ({
      name: f.name,
      type: f.type,
      kind: f.aggregate ? 'aggregate' : 'value',
      served: group.types.has(f.name),
      ref: `${group.group.refName}:${f.name}`,
    })),
  };
}

export function createServingApp({
  config,
  pool,
  catalog,
  publisher,
  registry,
  log,
  authTokens,
}: ServingDeps): Express {
  const limits = { maxEntities: config.SERVING_MAX_ENTITIES, maxFeatures: config.SERVING_MAX_FEATURES };
  const databaseAnswers = async (): Promise<boolean> => (await pool.query('SELECT 1')).rowCount === 1;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(requestMetrics(registry));
  app.use(
    shedLoad({ maxInFlight: config.HTTP_MAX_IN_FLIGHT, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS }, registry),
  );
  if (authTokens) app.use(bearerAuth(authTokens));
  mountOps(app, registry, async () => catalog.loaded && (await databaseAnswers()));

  app.get('/health', async (_req, res) => {
    const ok = await databaseAnswers().catch(() => false);
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable' });
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  app.get('/features/:entityId', async (req, res) => {
    const entityId = req.params.entityId;
    if (entityIdOf(entityId) === undefined) {
      throw new HttpError(400, 'E_BAD_ENTITY_ID', `an entity id is ${ENTITY_ID_RULE}`, 'entity_id');
    }
    const found = await catalog.entity.read(pool, entityId);
    if (!found) {
      res.status(404).json({ detail: `No features found for entity_id=${entityId}` });
      return;
    }
    res.json(found);
  });

  app.get('/v1/feature-groups', (_req, res) => {
    res.json({ groups: catalog.all().map(describeGroup) });
  });

  app.get(['/v1/feature-groups/:namespace/:name', '/v1/feature-groups/:name'], async (req, res) => {
    const { namespace = 'default', name } = req.params as { namespace?: string; name: string };
    let id: string;
    try {
      const ref = parseGroupId(`${namespace}/${name}`);
      id = `${ref.namespace}/${ref.name}`;
    } catch {
      throw new HttpError(400, 'E_BAD_GROUP', `"${namespace}/${name}" is not a valid feature group name`, 'name');
    }
    const group = catalog.get(id);
    if (!group) throw new HttpError(404, 'E_UNKNOWN_GROUP', `feature group ${id} does not exist`, 'name');
    res.json({ ...describeGroup(group), freshness: await freshnessOf(pool, group) });
  });

  app.post(
    '/get-online-features',
    express.json({ limit: config.SERVING_MAX_BODY_BYTES, type: () => true }),
    async (req, res) => {
      const request = parseOnlineRequest(req.body, catalog, limits);
      res.json(await getOnlineFeatures(pool, catalog, request));
    },
  );

  for (const [path, kind] of [
    ['/write-to-online-store', 'write'],
    ['/push', 'push'],
  ] as const) {
    app.post(path, express.json({ limit: config.SERVING_MAX_BODY_BYTES, type: () => true }), async (req, res) => {
      res.json(await writeFrame(publisher, catalog, req.body, kind));
    });
  }

  app.post(
    '/v1/historical-features',
    express.json({
      limit: config.SERVING_MAX_HISTORICAL_BODY_BYTES,
      type: (req) => !/ndjson/i.test(req.headers['content-type'] ?? ''),
    }),
    async (req, res) => {
      await historicalFeatures(req, res, pool, catalog, config.SERVING_MAX_HISTORICAL_ROWS);
    },
  );

  rejectOtherMethods(app, SERVING_ROUTES);
  app.use((req, _res, next) => next(new HttpError(404, 'E_NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
