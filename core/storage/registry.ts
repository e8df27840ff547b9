import type { Pool, PoolClient } from 'pg';
import { featureGroupSpecSchema, type FeatureGroupSpec, type GroupRef } from '../featuregroup/schema';
import { PLATFORM_SCHEMA } from './identifiers';

export interface RegisteredGroup {
  ref: GroupRef;
  spec: FeatureGroupSpec;
  table: string;
  generation: number;
  updatedAt: Date;
  /** Bumped by each replay: consumers loaded before it are fenced off. */
  replayEpoch: number;
  /** The replay request last carried out (annotation value), if any. */
  replayToken: string | null;
}

const GROUPS = `${PLATFORM_SCHEMA}.feature_groups`;
const SELECT = `SELECT namespace, name, spec, table_name, generation, updated_at, replay_epoch, replay_token FROM ${GROUPS}`;

interface GroupRow {
  namespace: string;
  name: string;
  spec: unknown;
  table_name: string;
  generation: string;
  updated_at: Date;
  replay_epoch: string;
  replay_token: string | null;
}

function fromRow(row: GroupRow): RegisteredGroup {
  const spec = featureGroupSpecSchema.safeParse(row.spec);
  if (!spec.success) throw new Error(`registry row ${row.namespace}/${row.name} holds an invalid spec: ${spec.error.message}`);
  return {
    ref: { namespace: row.namespace, name: row.name },
    spec: spec.data,
    table: row.table_name,
    generation: Number(row.generation),
    updatedAt: row.updated_at,
    replayEpoch: Number(row.replay_epoch),
    replayToken: row.replay_token,
  };
}

export async function listGroups(db: Pool | PoolClient): Promise<RegisteredGroup[]> {
  const result = await db.query<GroupRow>(`${SELECT} ORDER BY namespace, name`);
  return result.rows.map(fromRow);
}

export async function getGroup(db: Pool | PoolClient, ref: GroupRef): Promise<RegisteredGroup | undefined> {
  const result = await db.query<GroupRow>(`${SELECT} WHERE namespace = $1 AND name = $2`, [ref.namespace, ref.name]);
  return result.rows[0] && fromRow(result.rows[0]);
}

export async function upsertGroup(db: Pool | PoolClient, ref: GroupRef, spec: FeatureGroupSpec, table: string, generation: number): Promise<void> {
  await db.query(
    `INSERT INTO ${GROUPS} (namespace, name, spec, table_name, generation) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (namespace, name) DO UPDATE SET spec = excluded.spec, table_name = excluded.table_name,
       generation = excluded.generation, updated_at = now()
     WHERE ${GROUPS}.spec IS DISTINCT FROM excluded.spec OR ${GROUPS}.generation IS DISTINCT FROM excluded.generation`,
    [ref.namespace, ref.name, JSON.stringify(spec), table, generation],
  );
}

export async function deleteGroup(db: Pool | PoolClient, ref: GroupRef): Promise<void> {
  await db.query(`DELETE FROM ${GROUPS} WHERE namespace = $1 AND name = $2`, [ref.namespace, ref.name]);
}

/** A cheap fingerprint of the registry, so readers reload only when something changed. */
export async function registryVersion(db: Pool | PoolClient): Promise<string> {
  const result = await db.query<{ v: string }>(`SELECT count(*) || ':' || coalesce(max(updated_at)::text, '') AS v FROM ${GROUPS}`);
  return result.rows[0]!.v;
}
