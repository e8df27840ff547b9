/**
 * Hostile and malformed HTTP input against the real services: always a 4xx with a JSON error that
 * names the problem, never a 5xx.
 */
import type { Pool } from 'pg';
import { testGroupSpec } from '../support/oracle';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { type RunningService, startIngestAndServing } from '../support/services';

interface Case {
  label: string;
  path: string;
  method?: string;
  contentType?: string;
  body?: string | Buffer;
  status: number;
  code?: string;
  field?: string;
}

describe('bad HTTP input', () => {
  const name = uniqueName('http');
  let pool: Pool;
  let ingest: RunningService;
  let serving: RunningService;

  beforeAll(async () => {
    pool = testPool();
    await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(`${name}-events`));
    [ingest, serving] = await startIngestAndServing(name, {}, { REGISTRY_REFRESH_MS: '200' });
  });

  afterAll(async () => {
    await Promise.all([ingest?.stop(), serving?.stop()]);
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  const ingestCases: Case[] = [
    {
      label: 'non-JSON',
      path: '/v1/events',
      contentType: 'application/json',
      body: 'hello',
      status: 400,
      code: 'E_INVALID_JSON',
      field: 'body',
    },
    {
      label: 'a JSON scalar',
      path: '/v1/events',
      contentType: 'application/json',
      body: '42',
      status: 400,
      code: 'E_NO_VALID_EVENTS',
    },
    {
      label: 'an empty body',
      path: '/v1/events',
      contentType: 'application/json',
      body: '',
      status: 400,
      code: 'E_EMPTY_BODY',
    },
    {
      label: 'a 10 MB body',
      path: '/v1/events',
      contentType: 'application/json',
      body: Buffer.alloc(10 * 1024 * 1024, 0x20),
      status: 413,
      code: 'E_PAYLOAD_TOO_LARGE',
    },
    {
      label: 'form data',
      path: '/v1/events',
      contentType: 'application/x-www-form-urlencoded',
      body: 'a=1',
      status: 415,
      field: 'content-type',
    },
    {
      label: 'an unknown topic',
      path: '/v1/events?topic=secrets',
      contentType: 'application/json',
      body: '{}',
      status: 400,
      code: 'E_TOPIC_NOT_ALLOWED',
      field: 'topic',
    },
    {
      label: 'a repeated topic',
      path: '/v1/events?topic=a&topic=b',
      contentType: 'application/json',
      body: '{}',
      status: 400,
      field: 'topic',
    },
    {
      label: 'invalid UTF-8',
      path: '/v1/events',
      contentType: 'application/json',
      body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      status: 400,
      code: 'E_INVALID_JSON',
    },
    {
      label: 'a wrong method',
      path: '/v1/events',
      method: 'PUT',
      contentType: 'application/json',
      body: '{}',
      status: 405,
      code: 'E_METHOD_NOT_ALLOWED',
    },
  ];

  const servingCases: Case[] = [
    {
      label: 'non-JSON',
      path: '/get-online-features',
      contentType: 'application/json',
      body: '{nope',
      status: 400,
      field: 'body',
    },
    {
      label: 'features of the wrong type',
      path: '/get-online-features',
      contentType: 'application/json',
      body: '{"features":"x","entities":{"user":["a"]}}',
      status: 400,
      field: 'features',
    },
    {
      label: 'entities of the wrong type',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({ features: [`${name}:last_action`], entities: { user: [{ a: 1 }] } }),
      status: 400,
      field: 'entities.user.0',
    },
    {
      label: 'two entity keys',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({ features: [`${name}:last_action`], entities: { user: ['a'], item: ['b'] } }),
      status: 400,
      field: 'entities',
    },
    {
      label: 'the wrong entity key',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({ features: [`${name}:last_action`], entities: { item: ['a'] } }),
      // The request is well formed; no entity "item" has these features (as an unknown group is a 404).
      status: 404,
      code: 'E_ENTITY_MISMATCH',
    },
    {
      label: 'a malformed feature ref',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({ features: ['no-colon'], entities: { user: ['a'] } }),
      status: 400,
      field: 'features.0',
    },
    {
      label: 'an SQL-looking group',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({ features: ['x; drop table y:z'], entities: { user: ['a'] } }),
      status: 400,
      code: 'E_BAD_FEATURE_REF',
    },
    {
      label: 'an unknown feature',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({ features: [`${name}:nope`], entities: { user: ['a'] } }),
      status: 404,
      code: 'E_UNKNOWN_FEATURE',
    },
    {
      label: 'too many entities',
      path: '/get-online-features',
      contentType: 'application/json',
      body: JSON.stringify({
        features: [`${name}:last_action`],
        entities: { user: Array.from({ length: 1001 }, (_, i) => `u${i}`) },
      }),
      status: 400,
      code: 'E_TOO_MANY_ENTITIES',
    },
    {
      label: 'an SQL-looking entity id',
      path: `/features/${encodeURIComponent("x' OR '1'='1")}`,
      method: 'GET',
      status: 404,
    },
    { label: 'a unicode entity id', path: `/features/${encodeURIComponent('用户😀')}`, method: 'GET', status: 404 },
    {
      label: 'an invalid group name',
      path: '/v1/feature-groups/BAD_NS/x',
      method: 'GET',
      status: 400,
      code: 'E_BAD_GROUP',
    },
    {
      label: 'an unknown group',
      path: '/v1/feature-groups/default/nope',
      method: 'GET',
      status: 404,
      code: 'E_UNKNOWN_GROUP',
    },
  ];

  const run = async (base: () => string, c: Case) => {
    const response = await fetch(`${base()}${c.path}`, {
      method: c.method ?? 'POST',
      headers: c.contentType ? { 'content-type': c.contentType } : {},
      ...(c.body !== undefined ? { body: c.body } : {}),
    });
    expect(response.status).toBe(c.status);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await response.json()) as { detail?: string; code?: string; field?: string };
    expect(typeof body.detail).toBe('string');
    if (c.code) expect(body.code).toBe(c.code);
    if (c.field) expect(body.field).toBe(c.field);
  };

  it.each(ingestCases)('ingest answers $status for $label', (c) => run(() => ingest.url, c));
  it.each(servingCases)('serving answers $status for $label', (c) => run(() => serving.url, c));

  it('describes its groups and its API', async () => {
    const groups = (await (await fetch(`${serving.url}/v1/feature-groups`)).json()) as { groups: { name: string }[] };
    expect(groups.groups.map((g) => g.name)).toContain(name);
    const group = (await (await fetch(`${serving.url}/v1/feature-groups/default/${name}`)).json()) as {
      table: string;
      features: { ref: string }[];
    };
    expect(group.features.map((f) => f.ref)).toEqual([`${name}:last_action`, `${name}:last_amount`]);
    const openapi = (await (await fetch(`${serving.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/features/{entity_id}', '/get-online-features']),
    );
    expect(await (await fetch(`${serving.url}/health`)).json()).toEqual({ status: 'ok' });
  });
});
