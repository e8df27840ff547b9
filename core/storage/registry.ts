import type { Pool, PoolClient } from 'pg';
import { describeIssues, featureGroupSpecSchema, type FeatureGroupSpec, type GroupRef } from '../featuregroup/schema';
import { compileGroup, type CompiledGroup } from '../featuregroup/compiled';
import { PLATFORM_SCHEMA } from './identifiers';

export interface RegisteredGroup {
  ref: GroupRef;
  spec: FeatureGroupSpec;
  /** The spec compiled once: what consumers and serving read it through. */
  group: CompiledGroup;
  table: string;
  generation: number;
  updatedAt: Date;
  /** Changes with every write of the row (sql/004): what tells a reader the row is not what it loaded. */
  version: string;
  /** Bumped by each replay: consumers loaded before it are fenced off. */
  replayEpoch: number;
  /** The replay request last carried out (annotation value), if any. */
  replayToken: string | null;
}

const GROUPS = `${PLATFORM_SCHEMA}.feature_groups`;
const SELECT = `SELECT namespace, name, spec, table_name, generation, updated_at, version, replay_epoch, replay_token FROM ${GROUPS}`;

interface GroupRow {
  namespace: string;
  name: string;
  spec: unknown;
  table_name: string;
  generation: string;
  updated_at: Date;
  version: string;
  replay_epoch: string;
  replay_token: string | null;
}

/** A registry row whose spec this version cannot read (written by hand, or by another version). */
export interface InvalidRegistryRow {
  ref: GroupRef;
  error: string;
}

export class InvalidRegistryRowError extends Error {
  readonly code = 'E_INVALID_REGISTRY_ROW';
}

function parseRow(row: GroupRow): RegisteredGroup | InvalidRegistryRow {
  const ref = { namespace: row.namespace, name: row.name };
  const spec = featureGroupSpecSchema.safeParse(row.spec);
  if (!spec.success)
    return { ref, error: `the registry row holds a spec this version cannot read: ${describeIssues(spec.error)}` };
  return {
    ref,
    spec: spec.data,
    group: compileGroup(ref, spec.data),
    table: row.table_name,
    generation: Number(row.generation),
    updatedAt: row.updated_at,
    version: row.version,
    replayEpoch: Number(row.replay_epoch),
    replayToken: row.replay_token,
  };
}

const isInvalid = (parsed: RegisteredGroup | InvalidRegistryRow): parsed is InvalidRegistryRow => 'error' in parsed;

/** Every registered group; a row that cannot be read is returned apart, and never hides the others. */
export async function listGroups(
  db: Pool | PoolClient,
): Promise<{ groups: RegisteredGroup[]; invalid: InvalidRegistryRow[] }> {
  const result = await db.query<GroupRow>(`${SELECT} ORDER BY namespace, name`);
  const groups: RegisteredGroup[] = [];
  const invalid: InvalidRegistryRow[] = [];
  for (const row of result.rows) {
    const parsed = parseRow(row);
    if (isInvalid(parsed)) invalid.push(parsed);
    else groups.push(parsed);
  }
  return { groups, invalid };
}

/** One group; throws InvalidRegistryRowError when its row cannot be read. */
export async function getGroup(db: Pool | PoolClient, ref: GroupRef): Promise<RegisteredGroup | undefined> {
  const result = await db.query<GroupRow>(`${SELECT} WHERE namespace = $1 AND name = $2`, [ref.namespace, ref.name]);
  if (!result.rows[0]) return undefined;
  const parsed = parseRow(result.rows[0]);
  if (isInvalid(parsed)) throw new InvalidRegistryRowError(`${ref.namespace}/${ref.name}: ${parsed.error}`);
  return parsed;
}

export async function upsertGroup(
  db: Pool | PoolClient,
  ref: GroupRef,
  spec: FeatureGroupSpec,
  table: string,
  generation: number,
): Promise<void> {
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

/**
 * A fingerprint of the registry, so readers reload only when something changed: a digest of every
 * row's version (sql/004), which changes with any committed insert, update or delete whatever order
 * concurrent transactions commit in. The table holds one small row per group.
 */
export async function registryVersion(db: Pool | PoolClient): Promise<string> {
  const result = await db.query<{ v: string }>({
    name: 'fs_registry_version',
    text: `SELECT count(*) || ':' || coalesce(md5(string_agg(namespace || '/' || name || '@' || version, ',' ORDER BY namespace, name)), '') AS v FROM ${GROUPS}`,
  });
  return result.rows[0]!.v;
}
