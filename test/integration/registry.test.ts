/**
 * Serving learns the registry's every committed change, whatever order the transactions that made
 * them commit in, and a row it cannot read leaves every other group served.
 */
import type { Pool } from 'pg';
import { TEST_GROUP_SPEC } from '../support/oracle';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';

interface GroupDetail {
  features: { name: string }[];
}

describe('registry change detection', () => {
  const prefix = uniqueName('reg');
  const [a, b, c] = ['a', 'b', 'c'].map((n) => `${prefix}-${n}`) as [string, string, string];
  const corrupt = `${prefix}-corrupt`;
  let pool: Pool;
  let serving: RunningService;

  const featuresOf = async (name: string): Promise<string[] | undefined> => {
    const response = await fetch(`${serving.url}/v1/feature-groups/default/${name}`);
    return response.ok ? ((await response.json()) as GroupDetail).features.map((f) => f.name) : undefined;
  };
  const specWith = (extra: string) => ({
    ...TEST_GROUP_SPEC,
    source: { ...TEST_GROUP_SPEC.source, topic: `${prefix}-events` },
    features: [...TEST_GROUP_SPEC.features, { name: extra, type: 'string', from: extra }],
  });

  beforeAll(async () => {
    pool = testPool();
    for (const name of [a, b])
      await registerGroup(
        pool,
        { namespace: 'default', name },
        { ...TEST_GROUP_SPEC, source: { ...TEST_GROUP_SPEC.source, topic: `${prefix}-events` } },
      );
    serving = await startService('serving', { ...serverEnv(), REGISTRY_REFRESH_MS: '100' }, `${prefix}-serving`);
    await serving.waitReady();
    await eventually(
      async () => ((await featuresOf(a)) && (await featuresOf(b)) ? true : undefined),
      'both groups served',
    );
  });

  afterAll(async () => {
    await pool?.query('DELETE FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2', [
      'default',
      corrupt,
    ]);
    await serving?.stop();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('sees a change committed after a later-started one was already loaded', async () => {
    const [early, late] = [await pool.connect(), await pool.connect()];
    try {
      // The early transaction writes first (its now(), and its version, come first) but commits last.
      await early.query('BEGIN');
      await early.query(
        'UPDATE featurestore.feature_groups SET spec = $3, updated_at = now() WHERE namespace = $1 AND name = $2',
        ['default', a, JSON.stringify(specWith('from_early'))],
      );
      await late.query('BEGIN');
      await late.query(
        'UPDATE featurestore.feature_groups SET spec = $3, updated_at = now() WHERE namespace = $1 AND name = $2',
        ['default', b, JSON.stringify(specWith('from_late'))],
      );
      await late.query('COMMIT');
      await eventually(
        async () => ((await featuresOf(b))?.includes('from_late') ? true : undefined),
        'the late change served',
      );
      // Several refreshes pass with the late change loaded and the early one still uncommitted.
      await new Promise((r) => setTimeout(r, 500));
      expect(await featuresOf(a)).not.toContain('from_early');
      await early.query('COMMIT');
      await eventually(
        async () => ((await featuresOf(a))?.includes('from_early') ? true : undefined),
        'the early change served once committed',
        15_000,
      );
    } finally {
      early.release();
      late.release();
    }
  });

  it('skips a row it cannot read, counts it, and goes on serving and loading the others', async () => {
    await pool.query(
      'INSERT INTO featurestore.feature_groups (namespace, name, spec, table_name) VALUES ($1, $2, $3, $4)',
      ['default', corrupt, JSON.stringify({ entity: 'not an object' }), `fs_${corrupt.replace(/-/g, '_')}`],
    );
    await eventually(
      async () => ((await serving.metric('featurestore_registry_invalid_rows')) === 1 ? true : undefined),
      'the invalid row counted',
    );
    await registerGroup(
      pool,
      { namespace: 'default', name: c },
      { ...TEST_GROUP_SPEC, source: { ...TEST_GROUP_SPEC.source, topic: `${prefix}-events` } },
    );
    await eventually(
      async () => ((await featuresOf(c)) ? true : undefined),
      'a group registered after the corrupt row served',
    );
    expect(await featuresOf(a)).toBeDefined();
    expect((await fetch(`${serving.url}/v1/feature-groups/default/${corrupt}`)).status).toBe(404);
    expect(serving.output.some((line) => line.includes('registry row skipped') && line.includes(corrupt))).toBe(true);
  });
});
