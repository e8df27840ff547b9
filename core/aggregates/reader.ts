import type { Pool } from 'pg';
import type { JsonValue } from '../events/path';
import type { StoredEntity, StoredFeature } from '../storage/reader';
import { FEATURES_SCHEMA, qualified, statementName } from '../storage/identifiers';
import { formatTime } from '../time';
import { tilesTableFor } from './store';
import { windowBounds, type AggregateFeature } from './tiles';

/** The partial aggregates of one window, summed over its tiles (see TILE_SUMS). */
export interface WindowSums {
  count: string;
  sum: string | null;
  min: string | null;
  max: string | null;
  last_ts: string;
  last_values: [number, number, JsonValue][][] | null;
}

/** Select list that sums the tiles `t` of one window; GROUP BY the window's key. */
export const TILE_SUMS =
  `sum(t.count)::text AS count, sum(t.sum)::text AS sum, min(t.min)::text AS min, max(t.max)::text AS max,\n` +
  `  max(t.last_ts)::text AS last_ts, jsonb_agg(t.last_values) FILTER (WHERE t.last_values IS NOT NULL) AS last_values`;

/** Combines tile partials into the served value; null when nothing fell in the window. */
export function combine(feature: AggregateFeature, row: WindowSums): JsonValue {
  const count = Number(row.count);
  switch (feature.fn) {
    case 'count':
      return count;
    case 'sum':
      return row.sum === null ? null : Number(row.sum);
    case 'avg':
      return row.sum === null || count === 0 ? null : Number(row.sum) / count;
    case 'min':
    case 'max': {
      const text = feature.fn === 'min' ? row.min : row.max;
      if (text === null) return null;
      return feature.type === 'timestamp' ? formatTime(new Date(Number(text))) : Number(text);
    }
    case 'last_n': {
      const all = (row.last_values ?? []).flat();
      all.sort((a, b) => b[0] - a[0] || b[1] - a[1]);
      return all.slice(0, feature.limit).map((entry) => entry[2]);
    }
  }
}

/**
 * Reads window aggregates for one or many entities at a point in time: one statement that sums
 * the tiles inside each feature's window (see tiles.ts for the exact window).
 */
export class AggregateReader {
  private readonly text: string;
  private readonly name: string;

  constructor(table: string, readonly features: readonly AggregateFeature[]) {
    const tiles = qualified(FEATURES_SCHEMA, tilesTableFor(table));
    this.text =
      `SELECT t.entity_id, t.feature, ${TILE_SUMS}\n` +
      `FROM ${tiles} t JOIN unnest($2::text[], $3::bigint[], $4::bigint[]) AS w(feature, lo, hi)\n` +
      `  ON t.feature = w.feature AND t.tile_start >= w.lo AND t.tile_start < w.hi\n` +
      `WHERE t.entity_id = ANY($1::text[])\nGROUP BY t.entity_id, t.feature`;
    this.name = statementName('aggr', this.text);
  }

  async read(pool: Pool, entityIds: readonly string[], atMs: number): Promise<Map<string, StoredEntity>> {
    const bounds = this.features.map((f) => windowBounds(atMs, f.windowMs, f.tileMs));
    const result = await pool.query<WindowSums & { entity_id: string; feature: string }>({
      name: this.name,
      text: this.text,
      values: [entityIds, this.features.map((f) => f.name), bounds.map((b) => b.from), bounds.map((b) => b.to)],
    });
    const position = new Map(this.features.map((f, i) => [f.name, i]));
    const found = new Map<string, StoredEntity>();
    for (const row of result.rows) {
      const i = position.get(row.feature);
      if (i === undefined) continue;
      let entity = found.get(row.entity_id);
      if (!entity) {
        entity = { entityId: row.entity_id, features: new Array<StoredFeature | null>(this.features.length).fill(null) };
        found.set(row.entity_id, entity);
      }
      entity.features[i] = { value: combine(this.features[i]!, row), eventTime: new Date(Number(row.last_ts)) };
    }
    return found;
  }
}
