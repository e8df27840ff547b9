import type { Pool, PoolClient } from 'pg';
import { tilesDdl, tilesKeyMigration } from '../aggregates/store';
import { aggregateLogDdl } from '../aggregates/log';
import { narrowTilesMigration } from '../aggregates/migrate';
import { groupTables, type CompiledGroup } from '../featuregroup/compiled';
import { historyDdl } from '../history/store';
import type { GroupRef } from '../featuregroup/schema';
import { FEATURES_SCHEMA, PLATFORM_SCHEMA, qualified } from './identifiers';
import { planStore, type ObservedColumns } from './layout';
import { deleteGroup, upsertGroup } from './registry';
import { withTransaction } from './transaction';

/** A spec the store refuses, altering nothing: `reason` is what the group's condition says. */
export class StoreConflictError extends Error {
  readonly code = 'E_STORE_CONFLICT';
  constructor(
    readonly conflicts: string[],
    readonly reason: 'TypeChangeRefused' | 'TopicKeyConflict' | 'TableNameTaken' = 'TypeChangeRefused',
  ) {
    super(conflicts.join('; '));
  }
}

/**
 * Groups that read one topic must agree on its entity key: ingest keys each record by it, so one
 * entity's events stay on one partition. Checked under a lock per topic in the transaction that
 * registers the group, so two groups applied at once cannot both pass.
 */
async function refuseTopicKeyConflict(client: PoolClient, group: CompiledGroup): Promise<void> {
  const { topic } = group.spec.source;
  const keyField = group.spec.entity.keyField;
  await client.query('SELECT pg_advisory_xact_lock(727210003, hashtext($1))', [topic]);
  const other = await client.query<{ namespace: string; name: string; key_field: string }>(
    `SELECT namespace, name, spec->'entity'->>'keyField' AS key_field FROM ${qualified(PLATFORM_SCHEMA, 'feature_groups')}
     WHERE spec->'source'->>'topic' = $1 AND NOT (namespace = $2 AND name = $3) AND spec->'entity'->>'keyField' IS DISTINCT FROM $4
     ORDER BY namespace, name LIMIT 1`,
    [topic, group.ref.namespace, group.ref.name, keyField],
  );
  const row = other.rows[0];
  if (row) {
    throw new StoreConflictError(
      [
        `topic ${topic} is already read by ${row.namespace}/${row.name} with entity.keyField ${row.key_field}, and ingest keys each topic's records by one field; ` +
          `use entity.keyField ${row.key_field} or another topic (this group asks for ${keyField})`,
      ],
      'TopicKeyConflict',
    );
  }
}

/**
 * Table names come from `<namespace>_<name>` with `-` and `.` as `_` (see tableNameFor), so two
 * groups can map to one table: `team-a/clicks` and `team/a-clicks`. The group registered first
 * keeps it; the other is refused, under a lock per table name so two applied at once cannot both
 * pass. (The registry's unique table_name would refuse it too, with a database error.)
 */
async function refuseTableNameTaken(db: Pool | PoolClient, group: CompiledGroup, locked: boolean): Promise<void> {
  const table = group.tables.values.name;
  if (locked) await db.query('SELECT pg_advisory_xact_lock(727210004, hashtext($1))', [table]);
  const owner = await db.query<{ namespace: string; name: string }>(
    `SELECT namespace, name FROM ${qualified(PLATFORM_SCHEMA, 'feature_groups')} WHERE table_name = $1 AND NOT (namespace = $2 AND name = $3)`,
    [table, group.ref.namespace, group.ref.name],
  );
  const row = owner.rows[0];
  if (row) {
    throw new StoreConflictError(
      [
        `its table name ${table} is already taken by ${row.namespace}/${row.name} (names map to tables with '-' and '.' as '_'); ` +
          'rename this group or move it to another namespace',
      ],
      'TableNameTaken',
    );
  }
}

/** How long DDL waits for a table lock (a long query, a stuck migration) before failing and retrying. */
const DDL_LOCK_TIMEOUT = '5s';

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
export async function applyStore(
  pool: Pool,
  group: CompiledGroup,
  generation: number,
): Promise<{ table: string; statements: string[] }> {
  const { tables } = group;
  // Before looking at the table's columns: they may be another group's.
  await refuseTableNameTaken(pool, group, false);
  const plan = planStore(group, await observeColumns(pool, tables.values.name));
  if (plan.conflicts.length > 0) throw new StoreConflictError(plan.conflicts);
  // Window aggregates live in a tiles table with columns per aggregate feature.
  if (group.aggregates.length > 0) {
    const tiles = await observeColumns(pool, tables.tiles.name);
    if (tiles?.has('feature')) plan.statements.push(...narrowTilesMigration(group));
    else {
      plan.statements.push(...tilesDdl(group, tiles && new Set(tiles.keys())));
      if (tiles) plan.statements.push(...tilesKeyMigration(group, await primaryKeyOf(pool, tables.tiles.name)));
    }
  }
  if (group.history.enabled) plan.statements.push(...historyDdl(group));
  if (group.keepsAggregateLog) {
    const log = await observeColumns(pool, tables.aggregateLog.name);
    plan.statements.push(...aggregateLogDdl(group, log && new Set(log.keys())));
  }
  await withTransaction(pool, async (client) => {
    await client.query(`SET LOCAL lock_timeout = '${DDL_LOCK_TIMEOUT}'`);
    await refuseTableNameTaken(client, group, true);
    await refuseTopicKeyConflict(client, group);
    for (const statement of plan.statements) await client.query(statement);
    await upsertGroup(client, group.ref, group.spec, tables.values.name, generation);
  });
  return { table: tables.values.name, statements: plan.statements };
}

/** `deletionPolicy: Delete`: drops the group's table, its registry row and its stored offsets. */
export async function dropStore(pool: Pool, ref: GroupRef, consumerGroup: string): Promise<void> {
  // Every table the group may ever have had: a spec change may have dropped aggregates or history.
  const tables = groupTables(ref);
  await withTransaction(pool, async (client) => {
    for (const table of [tables.values, tables.tiles, tables.history, tables.aggregateLog])
      await client.query(`DROP TABLE IF EXISTS ${table.sql}`);
    await deleteGroup(client, ref);
    await client.query(`DELETE FROM ${qualified(PLATFORM_SCHEMA, 'consumer_offsets')} WHERE consumer_group = $1`, [
      consumerGroup,
    ]);
  });
}
