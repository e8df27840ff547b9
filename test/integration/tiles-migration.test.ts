/**
 * A tiles table of the first layout (one row per entity, feature and tile) is moved to one row per
 * entity and tile by applyStore, in one transaction, with every partial of the features the spec
 * still has: the served aggregates are the same before and after.
 */
import type { Pool } from 'pg';
import { AggregateReader } from '../../core/aggregates/reader';
import { compileGroup } from '../../core/featuregroup/compiled';
import { featureGroupSpecSchema } from '../../core/featuregroup/schema';
import { applyStore } from '../../core/storage/store';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';

describe('tiles of the first layout', () => {
  const name = uniqueName('tmig');
  const ref = { namespace: 'default', name };
  const spec = featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'user' },
    source: { topic: `${name}-events` },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'clicks_1h', type: 'int64', aggregate: { fn: 'count', window: '1h' } },
      { name: 'spend_1h', type: 'float64', aggregate: { fn: 'sum', field: 'amount', window: '1h' } },
      { name: 'pages_1d', type: 'json', aggregate: { fn: 'last_n', field: 'page', window: '1d', limit: 2 } },
    ],
  });
  let pool: Pool;

  beforeAll(async () => {
    pool = testPool();
  });

  afterAll(async () => {
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('keeps every partial when it moves to one row per entity and tile', async () => {
    await registerGroup(pool, ref, spec);
    const group = compileGroup(ref, spec);
    const tiles = group.tables.tiles.sql;
    // Recreate the tiles table as the first layout had it, with partials of two entities.
    await pool.query(`DROP TABLE ${tiles}`);
    await pool.query(
      `CREATE TABLE ${tiles} (entity_id text NOT NULL, feature text NOT NULL, tile_start bigint NOT NULL, count bigint NOT NULL, sum numeric, min numeric, max numeric, last_ts bigint NOT NULL, last_values jsonb, keep integer NOT NULL DEFAULT 0, PRIMARY KEY (entity_id, feature, tile_start))`,
    );
    await pool.query(`CREATE INDEX "${group.tables.tiles.name.slice(0, 55)}_age" ON ${tiles} (tile_start)`);
    const now = Date.UTC(2026, 10, 26, 12, 0, 0);
    const minute = 60_000;
    const t1 = now - 10 * minute;
    const t2 = now - 5 * minute;
    await pool.query(
      `INSERT INTO ${tiles} (entity_id, feature, tile_start, count, sum, min, max, last_ts, last_values, keep) VALUES
        ('u1', 'clicks_1h', $1::bigint, 3, NULL, NULL, NULL, $1::bigint + 100, NULL, 0),
        ('u1', 'clicks_1h', $2, 2, NULL, NULL, NULL, $2::bigint + 100, NULL, 0),
        ('u1', 'spend_1h', $1, 2, 10.25, 4, 6.25, $1::bigint + 50, NULL, 0),
        ('u2', 'spend_1h', $2, 1, 0.1, 0.1, 0.1, $2::bigint + 10, NULL, 0),
        ('u1', 'pages_1d', $3, 2, NULL, NULL, NULL, $1::bigint + 100, '[[${t1 + 100}, 7, "/b"], [${t1 + 50}, 6, "/a"]]', 2),
        ('u1', 'gone_1h', $1, 9, NULL, NULL, NULL, $1, NULL, 0)`,
      [t1, t2, Math.floor(t1 / (1440 * minute)) * 1440 * minute],
    );

    const { statements } = await applyStore(pool, group, 2);
    expect(statements.some((s) => s.startsWith('ALTER TABLE') && s.includes('RENAME TO'))).toBe(true);

    const columns = await pool.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'features' AND table_name = $1`,
      [group.tables.tiles.name],
    );
    expect(columns.rows.map((r) => r.column_name)).not.toContain('feature');
    const reader = new AggregateReader(group.tables.tiles, group.aggregates);
    const read = await reader.read(pool, ['u1', 'u2'], now + minute);
    expect(read.get('u1')?.features.map((f) => f?.value)).toEqual([5, 10.25, ['/b', '/a']]);
    expect(read.get('u2')?.features.map((f) => f?.value ?? null)).toEqual([null, 0.1, null]);
    const leftovers = await pool.query(
      `SELECT 1 FROM pg_tables WHERE schemaname = 'features' AND tablename LIKE '%tiles_v1'`,
    );
    expect(leftovers.rowCount).toBe(0);

    // Applying the spec again changes nothing.
    expect((await applyStore(pool, group, 3)).statements).toEqual([]);
  });

  it('re-keys a tiles table keyed by (entity, start, size) to (entity, size, start), keeping its rows', async () => {
    const keyed = { namespace: 'default', name: `${name}-key` };
    await registerGroup(pool, keyed, spec);
    const group = compileGroup(keyed, spec);
    const tiles = group.tables.tiles.sql;
    const keyOf = async () =>
      (
        await pool.query<{ columns: string[] }>(
          `SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum WHERE c.contype = 'p' AND c.conrelid = $1::regclass`,
          [tiles],
        )
      ).rows[0]!.columns;
    expect(await keyOf()).toEqual(['entity_id', 'tile_ms', 'tile_start']);
    // The key as the tiles of the second layout had it.
    await pool.query(
      `ALTER TABLE ${tiles} DROP CONSTRAINT "${group.tables.tiles.name}_pkey", ADD PRIMARY KEY (entity_id, tile_start, tile_ms)`,
    );
    await pool.query(
      `INSERT INTO ${tiles} (entity_id, tile_start, tile_ms, clicks_1h__n, clicks_1h__ts) VALUES ('u1', 0, 60000, 4, 10), ('u1', 60000, 60000, 1, 60010)`,
    );
    const { statements } = await applyStore(pool, group, 2);
    expect(statements.filter((s) => s.includes('ADD PRIMARY KEY'))).toHaveLength(1);
    expect(await keyOf()).toEqual(['entity_id', 'tile_ms', 'tile_start']);
    expect((await pool.query(`SELECT sum(clicks_1h__n)::int AS n FROM ${tiles}`)).rows[0].n).toBe(5);
    expect((await applyStore(pool, group, 3)).statements).toEqual([]);
  });
});
