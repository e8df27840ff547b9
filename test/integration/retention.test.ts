/**
 * Retention on real Postgres: expired tiles and history rows go, in batches; what point-in-time
 * reads within the retention still need stays (the newest history row before the cutoff, tiles a
 * window inside the retention still covers).
 */
import type { Pool } from 'pg';
import { compileGroup } from '../../core/featuregroup/compiled';
import { featureGroupSpecSchema } from '../../core/featuregroup/schema';
import { applyRetention, retentionCutoffs } from '../../core/history/retention';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';

const DAY = 86_400_000;

describe('retention of tiles, history and the aggregate log', () => {
  const name = uniqueName('ret');
  const spec = featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'user' },
    source: { topic: `${name}-events` },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'clicks_1d', type: 'int64', aggregate: { fn: 'count', window: '1d' } },
    ],
    history: { enabled: true, retention: '7d' },
  });
  const group = compileGroup({ namespace: 'default', name }, spec);
  let pool: Pool;

  beforeAll(async () => {
    pool = testPool();
    await registerGroup(pool, { namespace: 'default', name }, spec);
  });

  afterAll(async () => {
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('removes what no read within the retention can reach, and nothing else', async () => {
    const now = Date.UTC(2026, 10, 26);
    const cutoffs = retentionCutoffs(group, now);
    expect(cutoffs.historyMs).toBe(now - 7 * DAY);
    expect(cutoffs.tiles).toEqual([{ tileMs: 900_000, beforeMs: now - 7 * DAY - DAY - 900_000 }]);
    // The aggregate log answers heads (at most one tile) of windows ending within the retention.
    expect(cutoffs.aggregateLogMs).toBe(now - 7 * DAY - 900_000);

    const tiles = group.tables.tiles.sql;
    const history = group.tables.history.sql;
    // 20,000 tiles a minute apart ending now, and history: for u1 rows on days 20..1 ago; for u2 one row 30 days ago.
    await pool.query(
      `INSERT INTO ${tiles} (entity_id, tile_start, tile_ms, clicks_1d__n, clicks_1d__ts) SELECT 'u1', $1::bigint - g * 60000, 900000, 1, $1::bigint - g * 60000 FROM generate_series(1, 20000) g`,
      [now],
    );
    await pool.query(
      `INSERT INTO ${history} (entity_id, feature, event_ms, kafka_partition, kafka_offset, value) SELECT 'u1', 'last_action', $1::bigint - g * $2::bigint, 0, 100 - g, 'a' || g FROM generate_series(1, 20) g`,
      [now, DAY],
    );
    await pool.query(
      `INSERT INTO ${history} (entity_id, feature, event_ms, kafka_partition, kafka_offset, value) VALUES ('u2', 'last_action', $1, 0, 1, 'old')`,
      [now - 30 * DAY],
    );

    // Aggregate log rows, one an hour over 10 days.
    const log = group.tables.aggregateLog.sql;
    await pool.query(
      `INSERT INTO ${log} (entity_id, event_ms, kafka_partition, kafka_offset, clicks_1d__v) SELECT 'u1', $1::bigint - g * 3600000, 0, g, 1 FROM generate_series(0, 239) g`,
      [now],
    );
    const removed = await applyRetention(pool, group, cutoffs);
    const keptLog = await pool.query<{ n: string; oldest: string }>(
      `SELECT count(*) AS n, min(event_ms) AS oldest FROM ${log}`,
    );
    expect(Number(keptLog.rows[0]!.oldest)).toBeGreaterThanOrEqual(cutoffs.aggregateLogMs!);
    // Hours 0..168 are within 7 days and 15 minutes of now; the rest go.
    expect([Number(keptLog.rows[0]!.n), removed.aggregateLog]).toEqual([169, 240 - 169]);
    const keptTiles = await pool.query<{ n: string; oldest: string }>(
      `SELECT count(*) AS n, min(tile_start) AS oldest FROM ${tiles}`,
    );
    expect(Number(keptTiles.rows[0]!.oldest)).toBeGreaterThanOrEqual(cutoffs.tiles[0]!.beforeMs);
    expect(removed.tiles + Number(keptTiles.rows[0]!.n)).toBe(20_000);
    expect(removed.tiles).toBeGreaterThan(DELETE_AT_LEAST);

    const kept = await pool.query<{ entity_id: string; value: string }>(
      `SELECT entity_id, value FROM ${history} ORDER BY entity_id, event_ms DESC`,
    );
    // u1: days 1..6 are inside the retention, day 7 is exactly on the cutoff (kept), and the newest
    // row before the cutoff (day 8) stays as the value "as of" the cutoff. u2's only row stays.
    expect(kept.rows.map((r) => `${r.entity_id}:${r.value}`)).toEqual([
      'u1:a1',
      'u1:a2',
      'u1:a3',
      'u1:a4',
      'u1:a5',
      'u1:a6',
      'u1:a7',
      'u1:a8',
      'u2:old',
    ]);
    expect(removed.history).toBe(12);

    expect(await applyRetention(pool, group, cutoffs)).toEqual({ tiles: 0, history: 0, aggregateLog: 0 });
  });
});

/** More than one delete batch (5,000) must have run. */
const DELETE_AT_LEAST = 5_000;
