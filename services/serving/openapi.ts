/**
 * The serving API's OpenAPI 3.1 document, served at `/openapi.json`. Request bodies are generated
 * from the zod schemas that validate them (openApiSchemaOf), so the two cannot drift; every status
 * an operation can answer is listed, with the one error schema.
 */
import { DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN } from '../../core/featuregroup/schema';
import {
  BODY_RESPONSES,
  COMMON_RESPONSES,
  ERROR_SCHEMA,
  errorResponse,
  openApiSchemaOf,
  opsPaths,
} from '../../core/http/openapi';
import { historicalRequestSchema } from './historical';
import { onlineRequestSchema } from './online';
import { pushSchema, writeToOnlineStoreSchema } from './writes';

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const unknownGroup = errorResponse('Unknown group or feature');

/** Paths and the methods each answers: any other method on them is a 405 with Allow. */
export const SERVING_ROUTES: Record<string, string[]> = {
  '/features/{entity_id}': ['get'],
  '/get-online-features': ['post'],
  '/write-to-online-store': ['post'],
  '/push': ['post'],
  '/v1/historical-features': ['post'],
  '/v1/feature-groups': ['get'],
  '/v1/feature-groups/{namespace}/{name}': ['get'],
  '/health': ['get'],
  '/healthz': ['get'],
  '/readyz': ['get'],
  '/metrics': ['get'],
  '/openapi.json': ['get'],
};

const writeResponses = {
  '200': { description: 'Every row acknowledged by Kafka', ...json(ref('WriteOutcome')) },
  '404': errorResponse('Unknown group'),
  ...BODY_RESPONSES,
  '503': errorResponse('Kafka unavailable or not configured, or overloaded: retry after Retry-After'),
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'Feature store serving API', version: 'v1alpha1' },
  paths: {
    '/features/{entity_id}': {
      get: {
        summary: 'Every feature with a value of one entity (the original contract)',
        parameters: [
          {
            name: 'entity_id',
            in: 'path',
            required: true,
            schema: { type: 'string', minLength: 1, maxLength: 1024, pattern: '^[^\\u0000]*$' },
            description: 'at most 1,024 UTF-8 bytes',
          },
        ],
        responses: {
          '200': { description: 'Features', ...json(ref('EntityFeatures')) },
          '400': errorResponse('Invalid entity id'),
          '404': {
            description: 'Unknown entity',
            ...json({ type: 'object', properties: { detail: { type: 'string' } } }),
          },
          ...COMMON_RESPONSES,
        },
      },
    },
    '/get-online-features': {
      post: {
        summary: "Many entities × many features, in the shape of Feast's feature server",
        requestBody: { required: true, ...json(openApiSchemaOf(onlineRequestSchema)) },
        responses: {
          '200': { description: 'Column-major results', ...json(ref('OnlineResponse')) },
          '404': unknownGroup,
          ...BODY_RESPONSES,
        },
      },
    },
    '/write-to-online-store': {
      post: {
        summary:
          "Feast's write (its SDK's push and write_to_online_store): rows of a group's value features, through Kafka",
        requestBody: { required: true, ...json(openApiSchemaOf(writeToOnlineStoreSchema)) },
        responses: writeResponses,
      },
    },
    '/push': {
      post: {
        summary: "Feast's feature-server push: as /write-to-online-store, by push source",
        requestBody: { required: true, ...json(openApiSchemaOf(pushSchema)) },
        responses: writeResponses,
      },
    },
    '/v1/historical-features': {
      post: {
        summary: 'Point-in-time correct feature values for (entity, timestamp) rows (training sets); streamed',
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: openApiSchemaOf(historicalRequestSchema) },
            'application/x-ndjson': {
              schema: { type: 'string', description: 'a {"features": [...]} line, then one entity row per line' },
            },
          },
        },
        responses: {
          '200': {
            description:
              'JSON {features, rows} or NDJSON (a {features} line, then one row per line); each row: the entity key, timestamp, values, statuses, event_timestamps aligned with features',
          },
          '404': unknownGroup,
          ...BODY_RESPONSES,
          '409': errorResponse('A feature of a group without history (spec.history.enabled)'),
        },
      },
    },
    '/v1/feature-groups': {
      get: {
        summary: 'Feature groups that can be served',
        responses: { '200': { description: 'Groups' }, ...COMMON_RESPONSES },
      },
    },
    '/v1/feature-groups/{namespace}/{name}': {
      get: {
        summary: 'One feature group, with its freshness',
        parameters: [
          {
            name: 'namespace',
            in: 'path',
            required: true,
            schema: { type: 'string', maxLength: 63, pattern: DNS_LABEL_PATTERN.source },
          },
          {
            name: 'name',
            in: 'path',
            required: true,
            schema: { type: 'string', maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN.source },
          },
        ],
        responses: {
          '200': { description: 'The group' },
          '400': errorResponse('Not a valid namespace or name'),
          '404': errorResponse('Unknown group'),
          ...COMMON_RESPONSES,
        },
      },
    },
    '/health': {
      get: {
        summary: 'The original health check: ok only when the database answers',
        responses: { '200': { description: 'ok' }, '503': { description: 'database unavailable' } },
      },
    },
    ...opsPaths('registry loaded and database answering'),
    '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
  },
  components: {
    schemas: {
      Error: ERROR_SCHEMA,
      EntityFeatures: {
        type: 'object',
        required: ['entity_id', 'features', 'last_updated'],
        properties: {
          entity_id: { type: 'string' },
          features: { type: 'object', additionalProperties: true },
          last_updated: { type: 'string', format: 'date-time' },
        },
      },
      WriteOutcome: {
        type: 'object',
        properties: { status: { const: 'success' }, written: { type: 'integer' } },
      },
      OnlineResponse: {
        type: 'object',
        properties: {
          metadata: {
            type: 'object',
            properties: {
              feature_names: { type: 'array', items: { type: 'string' } },
              feature_view_metadata: {
                type: 'array',
                items: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' } } },
              },
            },
          },
          results: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                values: { type: 'array', items: {} },
                statuses: { type: 'array', items: { enum: ['PRESENT', 'NOT_FOUND', 'OUTSIDE_MAX_AGE'] } },
                event_timestamps: { type: 'array', items: { type: 'string', format: 'date-time' } },
              },
            },
          },
        },
      },
    },
  },
};
