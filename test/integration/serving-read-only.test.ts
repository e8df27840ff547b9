/** Serving needs nothing but SELECT: it runs here as a role that can do nothing else. */
import { Pool } from 'pg';
import { testGroupSpec } from '../support/oracle';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { requireEnv, startService, type RunningService } from '../support/services';

describe('serving with a read-only role', () => {
  const name = uniqueName('ro');
  let pool: Pool;
  let serving: RunningService | undefined;

  beforeAll(async () => {
    pool = testPool();
    const table = await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(`${name}-events`));
    await pool.query(
      `INSERT INTO features."${table}" (entity_id, last_action, last_action__ts, last_action__off) VALUES ('u1', 'view', now(), 0)`,
    );
    await pool.query(`DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fs_test_reader') THEN CREATE ROLE fs_test_reader LOGIN PASSWORD 'reader'; END IF;
      END $$`);
    await pool.query('GRANT USAGE ON SCHEMA featurestore, features TO fs_test_reader');
    await pool.query('GRANT SELECT ON ALL TABLES IN SCHEMA featurestore, features TO fs_test_reader');
  });

  afterAll(async () => {
    await serving?.stop();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('serves, and the role really cannot write', async () => {
    const url = new URL(requireEnv('DATABASE_URL'));
    url.username = 'fs_test_reader';
    url.password = 'reader';
    serving = await startService('serving', { DATABASE_URL: url.toString() }, `${name}-serving`);
    await serving.waitReady();
    const response = await fetch(`${serving.url}/get-online-features`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: [`${name}:last_action`], entities: { user: ['u1'] } }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { results: { values: unknown[] }[] }).results[1]!.values).toEqual(['view']);

    const reader = new Pool({ connectionString: url.toString(), max: 1 });
    await expect(reader.query('DELETE FROM featurestore.feature_groups')).rejects.toThrow(/permission denied/);
    await reader.end();
  });
});
