import type { Express } from 'express';
import { z } from 'zod';
import { HttpError } from './errors';

/**
 * A request schema as OpenAPI 3.1 (JSON Schema 2020-12) from the zod schema that validates it,
 * so the document and the validation cannot drift: definitions inlined (an OpenAPI document
 * resolves `#/...` from its own root), the input side (before defaults and transforms).
 */
export function openApiSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const generated = z.toJSONSchema(schema, { io: 'input', reused: 'inline', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  delete generated.$schema;
  // Recursive types (z.json()) come out as `#/$defs/...` references, which an OpenAPI document
  // would resolve from its own root: they stand for any JSON value, which `{}` says.
  delete generated.$defs;
  return anyForDefs(generated) as Record<string, unknown>;
}

function anyForDefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(anyForDefs);
  if (node === null || typeof node !== 'object') return node;
  const entries = Object.entries(node);
  if (entries.some(([k, v]) => k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/'))) return {};
  return Object.fromEntries(entries.map(([k, v]) => [k, anyForDefs(v)]));
}

/** The error body every API answers with, and the responses every operation can give. */
export const ERROR_SCHEMA = {
  type: 'object',
  required: ['detail', 'code'],
  properties: { detail: { type: 'string' }, code: { type: 'string' }, field: { type: 'string' } },
};

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

/** 401 with auth on; 503 when load is shed or a request times out (with Retry-After). */
export const COMMON_RESPONSES = {
  '401': errorResponse('Missing or wrong bearer token (when AUTH_TOKENS_FILE is set)'),
  '503': errorResponse('Overloaded, timed out or a backend unavailable: retry after Retry-After'),
};

/** Responses of an operation that takes a body. */
export const BODY_RESPONSES = {
  '400': errorResponse('Invalid request: the error names the field'),
  '413': errorResponse('Body too large'),
  ...COMMON_RESPONSES,
};

export { errorResponse };

/**
 * Answers a method a path does not have with 405 and `Allow` (instead of the catch-all 404), for
 * the paths of an OpenAPI document (`{param}` segments). Mount after the routes themselves.
 */
export function rejectOtherMethods(app: Express, routes: Record<string, string[]>): void {
  for (const [path, methods] of Object.entries(routes)) {
    const allowed = methods.map((m) => m.toUpperCase());
    if (allowed.includes('GET')) allowed.push('HEAD');
    app.all(path.replace(/\{([^}]+)\}/g, ':$1'), (req, _res, next) => {
      if (allowed.includes(req.method)) {
        next();
        return;
      }
      next(
        new HttpError(
          405,
          'E_METHOD_NOT_ALLOWED',
          `${req.method} is not allowed on ${path}: use ${allowed.join(', ')}`,
          undefined,
          { Allow: allowed.join(', ') },
        ),
      );
    });
  }
}

/** The paths mountOps serves (healthz, readyz, metrics), documented; `readiness` says what ready means. */
export function opsPaths(readiness: string): Record<string, object> {
  return {
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'ok' } } } },
    '/readyz': {
      get: {
        summary: `Readiness: ${readiness}`,
        responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } },
    },
  };
}
