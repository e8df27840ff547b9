/** The serving API's OpenAPI 3.1 document, served at `/openapi.json`. */
const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'Feature store serving API', version: 'v1alpha1' },
  paths: {
    '/features/{entity_id}': {
      get: {
        summary: 'Every stored feature of one entity (the original contract)',
        parameters: [{ name: 'entity_id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'Features', ...json({ $ref: '#/components/schemas/EntityFeatures' }) },
          '404': {
            description: 'Unknown entity',
            ...json({ type: 'object', properties: { detail: { type: 'string' } } }),
          },
        },
      },
    },
    '/get-online-features': {
      post: {
        summary: 'Many entities × many features, in the shape of Feast’s feature server',
        requestBody: { required: true, ...json({ $ref: '#/components/schemas/OnlineRequest' }) },
        responses: {
          '200': { description: 'Column-major results', ...json({ $ref: '#/components/schemas/OnlineResponse' }) },
          '400': { description: 'Invalid request', ...json(error) },
          '404': { description: 'Unknown group or feature', ...json(error) },
        },
      },
    },
    '/write-to-online-store': {
      post: {
        summary:
          "Feast's write (its SDK's push and write_to_online_store): rows of a group's value features, through Kafka",
        requestBody: {
          required: true,
          ...json({
            type: 'object',
            required: ['feature_view_name', 'df'],
            properties: {
              feature_view_name: { type: 'string', description: 'the group: "group" or "namespace/group"' },
              df: {
                type: 'object',
                additionalProperties: { type: 'array', items: {} },
                description: 'column-major rows',
              },
              allow_registry_cache: { type: 'boolean' },
              transform_on_write: { type: 'boolean' },
            },
          }),
        },
        responses: {
          '200': {
            description: 'Every row acknowledged by Kafka',
            ...json({ $ref: '#/components/schemas/WriteOutcome' }),
          },
          '400': { description: 'Invalid request or row (nothing written)', ...json(error) },
          '404': { description: 'Unknown group', ...json(error) },
          '503': { description: 'Kafka unavailable or not configured', ...json(error) },
        },
      },
    },
    '/push': {
      post: {
        summary: "Feast's feature-server push: as /write-to-online-store, by push source",
        requestBody: {
          required: true,
          ...json({
            type: 'object',
            required: ['push_source_name', 'df'],
            properties: {
              push_source_name: { type: 'string', description: 'the group: "group" or "namespace/group"' },
              df: { type: 'object', additionalProperties: { type: 'array', items: {} } },
              to: {
                enum: ['online', 'online_and_offline', 'offline'],
                description: 'offline: 400, there is no separate offline store',
              },
              allow_registry_cache: { type: 'boolean' },
              transform_on_write: { type: 'boolean' },
            },
          }),
        },
        responses: {
          '200': {
            description: 'Every row acknowledged by Kafka',
            ...json({ $ref: '#/components/schemas/WriteOutcome' }),
          },
          '400': { description: 'Invalid request or row (nothing written)', ...json(error) },
          '404': { description: 'Unknown group', ...json(error) },
          '503': { description: 'Kafka unavailable or not configured', ...json(error) },
        },
      },
    },
    '/v1/historical-features': {
      post: {
        summary: 'Point-in-time correct feature values for (entity, timestamp) rows (training sets); streamed',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['features', 'entities'],
                properties: {
                  features: {
                    type: 'array',
                    items: { type: 'string' },
                    description: 'group:feature or namespace/group:feature',
                  },
                  entities: {
                    type: 'array',
                    items: { type: 'object', description: '{<entity key>: id, timestamp: ISO-8601 or epoch ms}' },
                  },
                },
              },
            },
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
          '400': { description: 'Invalid request, or a value feature of a group without history', ...json(error) },
          '404': { description: 'Unknown group or feature', ...json(error) },
        },
      },
    },
    '/v1/feature-groups': {
      get: { summary: 'Feature groups that can be served', responses: { '200': { description: 'Groups' } } },
    },
    '/v1/feature-groups/{namespace}/{name}': {
      get: {
        summary: 'One feature group',
        parameters: [
          { name: 'namespace', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'The group' }, '404': { description: 'Unknown group', ...json(error) } },
      },
    },
    '/health': {
      get: {
        summary: 'ok when the database answers',
        responses: { '200': { description: 'ok' }, '503': { description: 'database unavailable' } },
      },
    },
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'ok' } } } },
    '/readyz': {
      get: {
        summary: 'Readiness: catalog loaded and database answers',
        responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } },
    },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        required: ['detail', 'code'],
        properties: { detail: { type: 'string' }, code: { type: 'string' }, field: { type: 'string' } },
      },
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
      OnlineRequest: {
        type: 'object',
        description:
          "Feast's GetOnlineFeaturesRequest; other top-level fields are ignored, as Feast's server ignores them",
        required: ['features', 'entities'],
        properties: {
          features: {
            type: 'array',
            items: { type: 'string', examples: ['user-activity:last_action', 'ml/user-activity:last_action'] },
          },
          entities: { type: 'object', additionalProperties: { type: 'array', items: { type: ['string', 'integer'] } } },
          full_feature_names: { type: 'boolean' },
          include_feature_view_version_metadata: {
            type: 'boolean',
            description: 'adds metadata.feature_view_metadata: each group read, with its generation as version',
          },
          feature_service: {
            type: 'string',
            description: 'not supported yet: answered 400 E_FEATURE_SERVICE_UNSUPPORTED',
          },
        },
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
} as const;
