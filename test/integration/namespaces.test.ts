/**
 * Same-named groups in two namespaces, both holding one entity, through ingest, consumers and
 * serving: both values are served under names that cannot collide (`group:feature` in the default
 * namespace, `namespace/group:feature` elsewhere; full names `group__feature` and
 * `namespace/group__feature`), and `GET /features/{id}` lists only features that have a value.
 * Also Feast's request as its SDK sends it: fields we do not use are ignored, the version metadata
 * is given when asked for, and `feature_service` gets a 400 that says it is not supported.
 */
import type { Pool } from 'pg';
import type { FeatureGroupSpecInput } from '../../core/featuregroup/schema';
import {
  createTopic,
  dropRegisteredGroups,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';

describe('same-named groups in two namespaces', () => {
  const name = uniqueName('twin');
  const topic = `${name}-events`;
  const spec = (source: string): FeatureGroupSpecInput => ({
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic, eventTimeField: 'timestamp', filter: { field: 'source', equals: source } },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'score', type: 'float64', from: 'score' },
    ],
  });
  const services: RunningService[] = [];
  let pool: Pool;
  let serving: RunningService;

  beforeAll(async () => {
    pool = testPool();
    await createTopic(testKafka(), topic, 2);
    await registerGroup(pool, { namespace: 'default', name }, spec('a'));
    await registerGroup(pool, { namespace: 'ml', name }, spec('b'));
    const env = serverEnv();
    const started = await Promise.all([
      startService('ingest', env, `${name}-ingest`),
      startService('consumer', { ...env, FEATURE_GROUP: `default/${name}` }, `${name}-consumer-default`),
      startService('consumer', { ...env, FEATURE_GROUP: `ml/${name}` }, `${name}-consumer-ml`),
      startService('serving', { ...env, REGISTRY_REFRESH_MS: '200' }, `${name}-serving`),
    ]);
    services.push(...started);
    await Promise.all(started.map((s) => s.waitReady()));
    const [ingest] = started;
    serving = started[3]!;
    const events = [
      { entity_id: 'u1', source: 'a', action: 'from-default', timestamp: '2026-01-01T00:00:01Z' },
      { entity_id: 'u1', source: 'b', action: 'from-ml', score: 0.5, timestamp: '2026-01-01T00:00:02Z' },
    ];
    const response = await fetch(`${ingest!.url}/v1/events?topic=${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(events),
    });
    expect(response.status).toBe(202);
    for (const namespace of ['default', 'ml']) {
      await eventually(
        async () => ((await storedOffsetTotal(pool, `featurestore.${namespace}.${name}`)) === 2 ? true : undefined),
        `the ${namespace} consumer to reach the end of the topic`,
      );
    }
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('GET /features/{id}: both groups by their reference, the newest under the plain name, nothing for a feature never set', async () => {
    const body = (await (await fetch(`${serving.url}/features/u1`)).json()) as { features: Record<string, unknown> };
    expect(body.features).toEqual({
      last_action: 'from-ml',
      [`${name}:last_action`]: 'from-default',
      [`ml/${name}:last_action`]: 'from-ml',
      score: 0.5,
    });
  });

  it.each([false, true])(
    'POST /get-online-features (full_feature_names %s): one column per group, distinct names',
    async (full) => {
      const response = await fetch(`${serving.url}/get-online-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          features: [`${name}:last_action`, `ml/${name}:last_action`, `${name}:score`],
          entities: { user: ['u1'] },
          full_feature_names: full,
        }),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        metadata: { feature_names: string[] };
        results: { values: unknown[]; statuses: string[] }[];
      };
      expect(body.metadata.feature_names).toEqual(
        full
          ? ['user', `${name}__last_action`, `ml/${name}__last_action`, `${name}__score`]
          : ['user', `${name}__last_action`, `ml/${name}__last_action`, 'score'],
      );
      expect(body.results.map((r) => r.values[0])).toEqual(['u1', 'from-default', 'from-ml', null]);
      expect(body.results[3]!.statuses).toEqual(['NOT_FOUND']);
    },
  );

  const online = (body: Record<string, unknown>) =>
    fetch(`${serving.url}/get-online-features`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it("reads Feast 0.67's request as its SDK sends it, and gives version metadata when asked", async () => {
    // The body from the issue: a key Feast added, which a strict schema refused with a 400.
    const response = await online({
      entities: { user: ['u1', 'u2'] },
      full_feature_names: false,
      include_feature_view_version_metadata: true,
      features: [`ml/${name}:last_action`],
      some_field_of_a_later_sdk: { anything: [1] },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      metadata: { feature_names: string[]; feature_view_metadata: { name: string; version: number }[] };
      results: { values: unknown[] }[];
    };
    expect(body.metadata.feature_names).toEqual(['user', 'last_action']);
    expect(body.metadata.feature_view_metadata).toEqual([{ name: `ml/${name}`, version: 1 }]);
    expect(body.results[1]!.values).toEqual(['from-ml', null]);
    const without = (await (
      await online({ entities: { user: ['u1'] }, features: [`${name}:last_action`] })
    ).json()) as {
      metadata: Record<string, unknown>;
    };
    expect(Object.keys(without.metadata)).toEqual(['feature_names']);
  });

  it('keeps the known fields strictly typed, and answers feature_service with a 400 that names it', async () => {
    const wrongType = await online({
      entities: { user: ['u1'] },
      features: [`${name}:last_action`],
      full_feature_names: 'yes',
    });
    expect(wrongType.status).toBe(400);
    expect(await wrongType.json()).toMatchObject({ code: 'E_BAD_REQUEST', field: 'full_feature_names' });
    const service = await online({ entities: { user: ['u1'] }, feature_service: 'model_v1' });
    expect(service.status).toBe(400);
    const body = (await service.json()) as { code: string; field: string; detail: string };
    expect(body).toMatchObject({ code: 'E_FEATURE_SERVICE_UNSUPPORTED', field: 'feature_service' });
    expect(body.detail).toContain('model_v1');
  });
});
