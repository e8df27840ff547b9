import type { Pool } from 'pg';
import { tilesDdl, tilesKeyMigration, tilesTableFor } from '../aggregates/store';
import { aggregateLogDdl, aggregateLogTableFor } from '../aggregates/log';
import { narrowTilesMigration } from '../aggregates/migrate';
import { aggregateFeatures } from '../aggregates/tiles';
import { historyDdl, historyEnabled, historyTableFor } from '../history/store';
import type { FeatureGroupSpec, GroupRef } from '../featuregroup/schema';
import { FEATURES_SCHEMA, PLATFORM_SCHEMA, qualified, tableNameFor } from './identifiers';
import { layoutFor, planStore, type ObservedColumns } from './layout';
import { deleteGroup, upsertGroup } from './registry';
import { withTransaction } from './transaction';

export class StoreConflictError extends Error {
  readonly code = 'E_STORE_CONFLICT';
  constructor(readonly conflicts: string[]) {
    super(conflicts.join('; '));
  }
}

async function observeColumns(pool: Pool, table: string): Promise<ObservedColumns | undefined> {
  const result = await pool.query<{ column_name: string; data_type: string }>(
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
    [FEATURES_SCHEMA, table],
  );
  return result.rows.length === 0 ? undefined : new Map(result.rows.map((r) => [r.column_name, r.data_type]));
}

async function primaryKeyOf(pool: Pool, table: string): Promise<{ name: string; columns: string[] } | undefined> {
  const result = await pool.query<{ name: string; columns: string[] }>(
    `SELECT c.conname AS name, array_agg(a.attname::text ORDER BY k.ord) AS columns
     FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
     CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
     WHERE c.contype = 'p' AND n.nspname = $1 AND r.relname = $2 GROUP BY c.conname`,
    [FEATURES_SCHEMA, table],
  );
  return result.rows[0];
}

/**
 * Makes a group's storage match its spec and records it in the registry, idempotently: creates the
 * table or adds missing columns online. A type change throws StoreConflictError and alters nothing.
 */
export async function applyStore(pool: Pool, ref: GroupRef, spec: FeatureGroupSpec, generation: number): Promise<{ table: string; statements: string[] }> {
  const layout = layoutFor(ref, spec);
  const plan = planStore(layout, await observeColumns(pool, layout.table));
  if (plan.conflicts.length > 0) throw new StoreConflictError(plan.conflicts);
  // Window aggregates live in a tiles table with columns per aggregate feature.
  const aggregates = aggregateFeatures(spec);
  if (aggregates.length > 0) {
    const tiles = await observeColumns(pool, tilesTableFor(layout.table));
    if (tiles?.has('feature')) plan.statements.push(...narrowTilesMigration(layout.table, aggregates));
    else {
      plan.statements.push(...tilesDdl(layout.table, aggregates, tiles && new Set(tiles.keys())));
      if (tiles) plan.statements.push(...tilesKeyMigration(layout.table, await primaryKeyOf(pool, tilesTableFor(layout.table))));
    }
  }
  if (historyEnabled(spec)) {
    plan.statements.push(...historyDdl(layout.table));
    if (aggregates.length > 0) {
      const log = await observeColumns(pool, aggregateLogTableFor(layout.table));
      plan.statements.push(...aggregateLogDdl(layout.table, aggregates, log && new Set(log.keys())));
    }
  }
  await withTransaction(pool, async (client) => {
    for (const statement of plan.statements) await client.query(statement);
    await upsertGroup(client, ref, spec, layout.table, generation);
  });
  return { table: layout.table, statements: plan.statements };
}

/** `deletionPolicy: Delete`: drops the group's table, its registry row and its stored offsets. */
export async function dropStore(pool: Pool, ref: GroupRef, consumerGroup: string): Promise<void> {
  const table = tableNameFor(ref);
  await withTransaction(pool, async (client) => {
    await client.query(`DROP TABLE IF EXISTS ${qualified(FEATURES_SCHEMA, table)}`);
    await client.query(`DROP TABLE IF EXISTS ${qualified(FEATURES_SCHEMA, tilesTableFor(table))}`);
    await client.query(`DROP TABLE IF EXISTS ${qualified(FEATURES_SCHEMA, historyTableFor(table))}`);
    await client.query(`DROP TABLE IF EXISTS ${qualified(FEATURES_SCHEMA, aggregateLogTableFor(table))}`);
    await deleteGroup(client, ref);
    await client.query(`DELETE FROM ${qualified(PLATFORM_SCHEMA, 'consumer_offsets')} WHERE consumer_group = $1`, [consumerGroup]);
  });
}
