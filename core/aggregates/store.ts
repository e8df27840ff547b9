import type { PoolClient } from 'pg';
import type { OffsetEvent } from '../storage/writer';
import { companionTableName, FEATURES_SCHEMA, qualified, quoteIdent, statementName } from '../storage/identifiers';
import { tileStart, type AggregateFeature } from './tiles';

/**
 * One row per (entity, aggregate feature, tile): the tile's partial aggregate. Keyed by the
 * entity first, like the value table, so a distributed Postgres can co-locate an entity's rows.
 *   count      events counted
 *   sum        exact decimal sum (numeric), for sum and avg
 *   min, max   numeric (timestamps as epoch ms)
 *   last_ts    newest event time in the tile (epoch ms): freshness for ttl
 *   last_values, keep   last_n: the `keep` newest [event ms, offset, value] of the tile, newest first
 */
export const tilesTableFor = (table: string): string => companionTableName(table, 'tiles');

export function tilesDdl(table: string): string[] {
  const tiles = qualified(FEATURES_SCHEMA, tilesTableFor(table));
  return [
    `CREATE TABLE IF NOT EXISTS ${tiles} (\n` +
      '  entity_id text NOT NULL,\n  feature text NOT NULL,\n  tile_start bigint NOT NULL,\n' +
      '  count bigint NOT NULL,\n  sum numeric,\n  min numeric,\n  max numeric,\n  last_ts bigint NOT NULL,\n' +
      '  last_values jsonb,\n  keep integer NOT NULL DEFAULT 0,\n' +
      '  PRIMARY KEY (entity_id, feature, tile_start)\n)',
    // Retention deletes by age across entities.
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${tilesTableFor(table).slice(0, 55)}_age`)} ON ${tiles} (tile_start)`,
  ];
}

/** Newest first by (event time, offset), then cut to `keep`: the rule last_n uses everywhere. */
const LAST_N_MERGE = (values: string, keep: string) =>
  `(SELECT jsonb_agg(e ORDER BY (e->>0)::bigint DESC, (e->>1)::bigint DESC) FROM ` +
  `(SELECT e FROM jsonb_array_elements(${values}) e ORDER BY (e->>0)::bigint DESC, (e->>1)::bigint DESC LIMIT ${keep}) s)`;

/**
 * One statement per batch: the contributions travel as column arrays, are folded into tile
 * partials by GROUP BY in the database (exact numeric sums), and merged into the stored tiles.
 * It runs in the transaction that stores the batch's offsets, so a replay never counts twice.
 */
export function buildTileUpsertSql(table: string): string {
  const tiles = qualified(FEATURES_SCHEMA, tilesTableFor(table));
  return (
    `INSERT INTO ${tiles} AS t (entity_id, feature, tile_start, count, sum, min, max, last_ts, last_values, keep)\n` +
    `SELECT c0, c1, c2, count(*), sum(c3::numeric), min(c3::numeric), max(c3::numeric), max(c4),\n` +
    `  CASE WHEN max(c7) > 0 THEN ${LAST_N_MERGE('jsonb_agg(jsonb_build_array(c4, c5, c6::jsonb))', 'max(c7)')} END, max(c7)\n` +
    `FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::int[]) AS u(c0, c1, c2, c3, c4, c5, c6, c7)\n` +
    `GROUP BY c0, c1, c2\n` +
    `ON CONFLICT (entity_id, feature, tile_start) DO UPDATE SET\n` +
    `  count = t.count + excluded.count,\n` +
    `  sum = CASE WHEN t.sum IS NULL THEN excluded.sum WHEN excluded.sum IS NULL THEN t.sum ELSE t.sum + excluded.sum END,\n` +
    `  min = LEAST(t.min, excluded.min),\n` +
    `  max = GREATEST(t.max, excluded.max),\n` +
    `  last_ts = GREATEST(t.last_ts, excluded.last_ts),\n` +
    `  last_values = CASE WHEN excluded.keep > 0 THEN ${LAST_N_MERGE("coalesce(t.last_values, '[]'::jsonb) || excluded.last_values", 'excluded.keep')} ELSE t.last_values END,\n` +
    `  keep = excluded.keep`
  );
}

/** Column-major parameters for buildTileUpsertSql, rows ordered by key (consistent lock order). */
export function tileParams(features: readonly AggregateFeature[], events: readonly OffsetEvent[]): unknown[][] | undefined {
  const rows: [string, string, number, string | null, number, number, string | null, number][] = [];
  for (const { offset, event } of events) {
    for (const feature of features) {
      const contribution = event.contributions[feature.index];
      if (contribution === undefined) continue;
      const numeric = feature.fn === 'count' || feature.fn === 'last_n' ? null : contribution;
      const json = feature.fn === 'last_n' ? contribution : null;
      rows.push([event.entityId, feature.name, tileStart(event.eventTimeMs, feature.tileMs), numeric, event.eventTimeMs, offset, json, feature.limit]);
    }
  }
  if (rows.length === 0) return undefined;
  rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[2] - b[2]));
  return Array.from({ length: 8 }, (_, column) => rows.map((row) => row[column]));
}

export class TileWriter {
  private readonly sql: string;
  private readonly name: string;

  constructor(table: string, private readonly features: readonly AggregateFeature[]) {
    this.sql = buildTileUpsertSql(table);
    this.name = statementName('tiles', this.sql);
  }

  get active(): boolean {
    return this.features.length > 0;
  }

  async write(client: PoolClient, events: readonly OffsetEvent[]): Promise<void> {
    const params = tileParams(this.features, events);
    if (params) await client.query({ name: this.name, text: this.sql, values: params });
  }
}
