import type { PoolClient } from 'pg';
import type { OffsetEvent } from '../events/extract';
import { isNumericAggregate, type AggregateFeature, type CompiledGroup } from '../featuregroup/compiled';
import { quoteIdent, statementName } from '../storage/identifiers';
import { int4Array, int8Array, textArray } from '../storage/binary-arrays';
import { AggregateLogWriter } from './log';
import { tileStart } from './tiles';

/**
 * One row per (entity, tile start, tile size) holding the partial aggregates of every aggregate
 * feature with that tile size, in the feature's own columns (as the value table has one column
 * set per value feature). An event therefore costs one tile row per distinct tile size, not one
 * per aggregate: the consumer's Postgres work grows with tile sizes, not with features.
 *   <f>__n      events counted (0 where the feature had none in the tile)
 *   <f>__ts     newest event time counted (epoch ms): freshness for ttl
 *   <f>__sum, __min, __max   numeric aggregates (sum/avg/min/max; timestamps as epoch ms): exact
 *                decimals, all three kept so that changing fn among them needs no rebuild
 *   <f>__last   last_n: the `limit` newest [event ms, offset, value] of the tile, newest first
 * Keyed by the entity first, like the value table, so a distributed Postgres can co-locate rows.
 */

export interface TileColumns {
  count: string;
  lastTs: string;
  sum?: string;
  min?: string;
  max?: string;
  last?: string;
}

export function tileColumns(feature: AggregateFeature): TileColumns {
  const n = feature.name;
  const columns: TileColumns = { count: `${n}__n`, lastTs: `${n}__ts` };
  if (isNumericAggregate(feature)) Object.assign(columns, { sum: `${n}__sum`, min: `${n}__min`, max: `${n}__max` });
  if (feature.fn === 'last_n') columns.last = `${n}__last`;
  return columns;
}

/** Every tile column of the features with its DDL type. */
export function tileColumnTypes(features: readonly AggregateFeature[]): [string, string][] {
  return features.flatMap((f) => {
    const c = tileColumns(f);
    const typed: [string, string][] = [
      [c.count, 'bigint NOT NULL DEFAULT 0'],
      [c.lastTs, 'bigint'],
    ];
    for (const numeric of [c.sum, c.min, c.max]) if (numeric) typed.push([numeric, 'numeric']);
    if (c.last) typed.push([c.last, 'jsonb']);
    return typed;
  });
}

/** The tiles table's DDL given the columns it has now (undefined: no table yet). */
export function tilesDdl(group: CompiledGroup, observed: ReadonlySet<string> | undefined): string[] {
  const tiles = group.tables.tiles.sql;
  const columns = tileColumnTypes(group.aggregates);
  if (observed === undefined) {
    return [
      `CREATE TABLE IF NOT EXISTS ${tiles} (\n  entity_id text NOT NULL,\n  tile_start bigint NOT NULL,\n  tile_ms integer NOT NULL,\n` +
        columns.map(([name, type]) => `  ${quoteIdent(name)} ${type},\n`).join('') +
        // Size before start: a window's tiles of one size are one contiguous index range. The
        // fillfactor leaves room for HOT updates, as in the value table.
        '  PRIMARY KEY (entity_id, tile_ms, tile_start)\n) WITH (fillfactor = 70)',
      // Retention deletes by age across entities. Tiles arrive roughly in time order, so a BRIN
      // index finds old ones at almost no cost per write (a btree here cost an index insert per row).
      `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${group.tables.tiles.name.slice(0, 55)}_age`)} ON ${tiles} USING brin (tile_start)`,
    ];
  }
  const additions = columns
    .filter(([name]) => !observed.has(name))
    .map(([name, type]) => `ADD COLUMN IF NOT EXISTS ${quoteIdent(name)} ${type}`);
  return additions.length ? [`ALTER TABLE ${tiles} ${additions.join(', ')}`] : [];
}

/**
 * Tiles tables made before the key led with the tile size: re-key them (one rewrite of the index,
 * under the table's lock, inside applyStore's transaction). `primaryKey` is the key's columns in order.
 */
export function tilesKeyMigration(
  group: CompiledGroup,
  primaryKey: { name: string; columns: string[] } | undefined,
): string[] {
  if (!primaryKey || primaryKey.columns.join(',') !== 'entity_id,tile_start,tile_ms') return [];
  return [
    `ALTER TABLE ${group.tables.tiles.sql} DROP CONSTRAINT ${quoteIdent(primaryKey.name)}, ADD PRIMARY KEY (entity_id, tile_ms, tile_start)`,
  ];
}

/**
 * Newest first by (event time, offset), then cut to `keep`: the rule last_n uses everywhere. The
 * element alias `e` must not be a column name of the statement it is spliced into.
 */
export const lastNMerge = (values: string, keep: number): string =>
  `(SELECT jsonb_agg(e ORDER BY (e->>0)::bigint DESC, (e->>1)::bigint DESC) FROM ` +
  `(SELECT e FROM jsonb_array_elements(${values}) e ORDER BY (e->>0)::bigint DESC, (e->>1)::bigint DESC LIMIT ${Math.trunc(keep)}) s)`;

/**
 * One statement per batch: the contributions travel as column arrays (one per feature, NULL where
 * an event does not count) and are merged into the stored tiles. It runs in the transaction that
 * stores the batch's offsets, so a replay never counts twice. Where a key occurs more than once in
 * the batch, `grouped` folds the rows into tile partials by GROUP BY in the database first (exact
 * numeric sums); where every key is unique, that fold is skipped (a quarter of the statement's
 * cost). Column names are validated feature names.
 */
export function buildTileUpsertSql(group: CompiledGroup, grouped = true): string {
  const tiles = group.tables.tiles.sql;
  const features = group.aggregates;
  const insert: string[] = ['entity_id', 'tile_start', 'tile_ms'];
  const select: string[] = ['ent', 'start_ms', 'size_ms'];
  const update: string[] = [];
  const inputs: string[] = ['$1::text[]', '$2::bigint[]', '$3::int[]', '$4::bigint[]', '$5::bigint[]'];
  const q = quoteIdent;
  features.forEach((f, k) => {
    const v = `v${k}`;
    const c = tileColumns(f);
    inputs.push(`$${6 + k}::text[]${isNumericAggregate(f) ? '::numeric[]' : f.fn === 'last_n' ? '::jsonb[]' : ''}`);
    insert.push(c.count, c.lastTs);
    select.push(
      grouped ? `count(${v})` : `(${v} IS NOT NULL)::int`,
      grouped ? `max(ts) FILTER (WHERE ${v} IS NOT NULL)` : `CASE WHEN ${v} IS NOT NULL THEN ts END`,
    );
    update.push(
      `${q(c.count)} = t.${q(c.count)} + excluded.${q(c.count)}`,
      `${q(c.lastTs)} = GREATEST(t.${q(c.lastTs)}, excluded.${q(c.lastTs)})`,
    );
    if (c.sum && c.min && c.max) {
      insert.push(c.sum, c.min, c.max);
      select.push(...(grouped ? [`sum(${v})`, `min(${v})`, `max(${v})`] : [v, v, v]));
      update.push(
        `${q(c.sum)} = coalesce(t.${q(c.sum)} + excluded.${q(c.sum)}, t.${q(c.sum)}, excluded.${q(c.sum)})`,
        `${q(c.min)} = LEAST(t.${q(c.min)}, excluded.${q(c.min)})`,
        `${q(c.max)} = GREATEST(t.${q(c.max)}, excluded.${q(c.max)})`,
      );
    }
    if (c.last) {
      insert.push(c.last);
      select.push(
        grouped
          ? lastNMerge(`jsonb_agg(jsonb_build_array(ts, off, ${v})) FILTER (WHERE ${v} IS NOT NULL)`, f.limit)
          : `CASE WHEN ${v} IS NOT NULL THEN jsonb_build_array(jsonb_build_array(ts, off, ${v})) END`,
      );
      update.push(
        `${q(c.last)} = CASE WHEN excluded.${q(c.last)} IS NULL THEN t.${q(c.last)} ` +
          `ELSE ${lastNMerge(`coalesce(t.${q(c.last)}, '[]'::jsonb) || excluded.${q(c.last)}`, f.limit)} END`,
      );
    }
  });
  const names = ['ent', 'start_ms', 'size_ms', 'ts', 'off', ...features.map((_, k) => `v${k}`)];
  return (
    `INSERT INTO ${tiles} AS t (${insert.map(quoteIdent).join(', ')})\n` +
    `SELECT ${select.join(', ')}\n` +
    `FROM unnest(${inputs.join(', ')}) AS u(${names.join(', ')})\n` +
    (grouped ? `GROUP BY ent, start_ms, size_ms\n` : '') +
    `ON CONFLICT (entity_id, tile_start, tile_ms) DO UPDATE SET\n  ${update.join(',\n  ')}`
  );
}

/**
 * Column-major parameters for buildTileUpsertSql: one row per (event, tile size) that any feature
 * counts, ordered by key (a consistent lock order across concurrent batches).
 */
export function tileParams(
  features: readonly AggregateFeature[],
  events: readonly OffsetEvent[],
): { params: Buffer[]; unique: boolean } | undefined {
  const sizes = [...new Set(features.map((f) => f.tileMs))];
  const rows: { entity: string; start: number; size: number; ts: number; offset: number; values: (string | null)[] }[] =
    [];
  for (const { offset, event } of events) {
    for (const size of sizes) {
      let counted = false;
      const values = features.map((f) => {
        if (f.tileMs !== size) return null;
        const contribution = event.contributions[f.index];
        if (contribution === undefined) return null;
        counted = true;
        return f.fn === 'count' ? '1' : contribution;
      });
      if (counted)
        rows.push({
          entity: event.entityId,
          start: tileStart(event.eventTimeMs, size),
          size,
          ts: event.eventTimeMs,
          offset,
          values,
        });
    }
  }
  if (rows.length === 0) return undefined;
  rows.sort((a, b) => (a.entity < b.entity ? -1 : a.entity > b.entity ? 1 : a.start - b.start || a.size - b.size));
  const unique = rows.every(
    (r, i) =>
      i === 0 || r.entity !== rows[i - 1]!.entity || r.start !== rows[i - 1]!.start || r.size !== rows[i - 1]!.size,
  );
  const params = [
    textArray(rows.map((r) => r.entity)),
    int8Array(rows.map((r) => r.start)),
    int4Array(rows.map((r) => r.size)),
    int8Array(rows.map((r) => r.ts)),
    int8Array(rows.map((r) => r.offset)),
    ...features.map((_, k) => textArray(rows.map((r) => r.values[k]!))),
  ];
  return { params, unique };
}

/** Writes a batch's tiles and, where point-in-time reads need it, its aggregate log rows. */
export class TileWriter {
  /** [grouped, unique-keys] statements. */
  private readonly statements: { name: string; text: string }[];
  private readonly log: AggregateLogWriter | undefined;

  /** Groups with history keep the aggregate log: their windows' heads at a past T are answered from it. */
  private readonly features: readonly AggregateFeature[];

  constructor(group: CompiledGroup) {
    this.features = group.aggregates;
    this.statements = [true, false].map((grouped) => {
      const text = group.aggregates.length ? buildTileUpsertSql(group, grouped) : '';
      return { name: statementName('tiles', text), text };
    });
    this.log = group.keepsAggregateLog ? new AggregateLogWriter(group) : undefined;
  }

  get active(): boolean {
    return this.features.length > 0;
  }

  async write(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void> {
    const batch = tileParams(this.features, events);
    if (batch) await client.query({ ...this.statements[batch.unique ? 1 : 0]!, values: batch.params });
    await this.log?.write(client, partition, events);
  }
}
