/**
 * Ingest's OpenAPI 3.1 document, served at `/openapi.json`. The topics it lists are the ones
 * accepted at the moment it is asked (the registered groups' and INGEST_TOPICS), so the document
 * is the API as it stands, not as it was at start-up.
 */
import { BODY_RESPONSES, COMMON_RESPONSES, ERROR_SCHEMA, errorResponse, opsPaths } from '../../core/http/openapi';

export const INGEST_ROUTES: Record<string, string[]> = {
  '/v1/events': ['post'],
  '/healthz': ['get'],
  '/readyz': ['get'],
  '/metrics': ['get'],
  '/openapi.json': ['get'],
};

export interface IngestDocumentInput {
  topics: readonly string[];
  defaultTopic: string;
  maxEvents: number;
  maxEventBytes: number;
}

export function ingestOpenApi({ topics, defaultTopic, maxEvents, maxEventBytes }: IngestDocumentInput): object {
  const event = { type: 'object', description: `a JSON event (at most ${maxEventBytes} bytes, 64 levels deep)` };
  return {
    openapi: '3.1.0',
    info: { title: 'Feature store ingest API', version: 'v1alpha1' },
    paths: {
      '/v1/events': {
        post: {
          summary: 'Hands events to Kafka, keyed by the entity key of the groups on the topic',
          description:
            'One JSON event or an array of them; application/x-ndjson (one event per line) is accepted too. ' +
            'Events that are not JSON objects are rejected one by one (listed in errors) while the rest are accepted.',
          parameters: [
            {
              name: 'topic',
              in: 'query',
              required: false,
              schema: { type: 'string', enum: [...topics], default: defaultTopic },
              description: 'a topic a registered FeatureGroup reads, or one of INGEST_TOPICS',
            },
          ],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { oneOf: [event, { type: 'array', items: event, minItems: 1, maxItems: maxEvents }] },
              },
            },
          },
          responses: {
            '202': {
              description: 'Accepted by Kafka (acks=all)',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['accepted', 'rejected', 'errors'],
                    properties: {
                      accepted: { type: 'integer' },
                      rejected: { type: 'integer' },
                      errors: {
                        type: 'array',
                        items: {
                          type: 'object',
                          properties: { index: { type: 'integer' }, reason: { type: 'string' } },
                        },
                      },
                    },
                  },
                },
              },
            },
            ...BODY_RESPONSES,
            '400': errorResponse('Invalid request (the error names the field), an unknown topic, or no valid event'),
            '415': errorResponse('Content-Type other than application/json or application/x-ndjson'),
          },
        },
      },
      ...opsPaths('Kafka connected and topics known'),
      '/openapi.json': {
        get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' }, ...COMMON_RESPONSES } },
      },
    },
    components: { schemas: { Error: ERROR_SCHEMA } },
  };
}
