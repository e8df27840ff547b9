import type { Pool } from 'pg';
import type { JsonValue } from '../events/path';
import type { StoredEntity, StoredFeature } from '../storage/reader';
import type { AggregateFeature, TableName } from '../featuregroup/compiled';
import { quoteIdent, statementName } from '../storage/identifiers';
import { formatTime } from '../time';
import { lastNMerge, tileColumns } from './store';
import { windowTiles } from './tiles';

/** The partial aggregates of one window, summed over its tiles (see windowSums). */
export interface WindowSums {
  count: string | null;
  sum: string | null;
  min: string | null;
  max: string | null;
  last_ts: string | null;
  /** last_n: the window's newest entries [event ms, offset, value], newest first, already cut to the limit. */
  last_values: [number, number, JsonValue][] | null;
}

/** Output columns per feature in a windowSums select list. */
export const WINDOW_SUM_COLUMNS = 6;

/**
 * Expressions of one feature's six partials (WindowSums order) over the tiles `t` of its own tile
 * size whose start lies in [lo, hi). Untyped: callers cast or combine them.
 */
export function tilePartials(f: AggregateFeature, lo: string, hi: string): string[] {
  const c = tileColumns(f);
  const inWindow = `t.tile_ms = ${Math.trunc(f.tileMs)} AND t.tile_start >= ${lo} AND t.tile_start < ${hi}`;
  const col = (name: string | undefined, agg: string) =>
    name ? `${agg}(t.${quoteIdent(name)}) FILTER (WHERE ${inWindow})` : 'NULL::numeric';
  return [
    col(c.count, 'sum'),
    col(c.sum, 'sum'),
    col(c.min, 'min'),
    col(c.max, 'max'),
    col(c.lastTs, 'max'),
    c.last
      ? `jsonb_agg(t.${quoteIdent(c.last)}) FILTER (WHERE ${inWindow} AND t.${quoteIdent(c.last)} IS NOT NULL)`
      : 'NULL::jsonb',
  ];
}

/**
 * last_n in SQL: the newest `limit` entries of several lists of entries (one list per tile), merged
 * by the rule every last_n follows (newest by event time, then offset), so only they leave Postgres.
 */
export function lastNOfLists(lists: string, limit: number): string {
  return lastNMerge(
    `(SELECT jsonb_agg(e) FROM jsonb_array_elements(${lists}) l(list), jsonb_array_elements(l.list) e)`,
    limit,
  );
}

/**
 * Select list that sums the tiles `t` inside each feature's window, WINDOW_SUM_COLUMNS columns
 * per feature in WindowSums order; `bounds(k)` gives the SQL for feature k's [lo, hi) tile starts.
 */
export function windowSums(features: readonly AggregateFeature[], bounds: (k: number) => [string, string]): string {
  return features
    .map((f, k) => {
      const [count, sum, min, max, lastTs, last] = tilePartials(f, ...bounds(k));
      return [
        `${count}::text`,
        `${sum}::text`,
        `${min}::text`,
        `${max}::text`,
        `${lastTs}::text`,
        f.fn === 'last_n' ? lastNOfLists(last!, f.limit) : last,
      ].join(', ');
    })
    .join(',\n  ');
}

/** Feature k's sums from a row of a windowSums select whose feature columns start at `first`. */
export function sumsAt(row: readonly unknown[], first: number, k: number): WindowSums {
  const at = first + k * WINDOW_SUM_COLUMNS;
  return {
    count: row[at] as string | null,
    sum: row[at + 1] as string | null,
    min: row[at + 2] as string | null,
    max: row[at + 3] as string | null,
    last_ts: row[at + 4] as string | null,
    last_values: row[at + 5] as [number, number, JsonValue][] | null,
  };
}

/** The served value and its freshness; undefined when nothing fell in the window. */
export function windowValue(
  feature: AggregateFeature,
  sums: WindowSums,
): { value: JsonValue; eventMs: number } | undefined {
  if (sums.count === null || sums.count === '0' || sums.last_ts === null) return undefined;
  return { value: combine(feature, sums), eventMs: Number(sums.last_ts) };
}

/** Combines tile partials into the served value. */
function combine(feature: AggregateFeature, row: WindowSums): JsonValue {
  const count = Number(row.count ?? 0);
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
    case 'last_n':
      return (row.last_values ?? []).map((entry) => entry[2]);
  }
}

/**
 * Reads window aggregates for one or many entities online: one statement, one row per entity, that
 * sums each feature's tiles from its tail to its open head tile (the window rule of tiles.ts),
 * reading only tiles of the sizes asked for.
 */
export class AggregateReader {
  private readonly text: string;
  private readonly name: string;
  private readonly sizes: number[];

  constructor(
    private readonly tilesTable: TableName,
    readonly features: readonly AggregateFeature[],
  ) {
    this.sizes = [...new Set(features.map((f) => f.tileMs))];
    this.text = this.render('= ANY($1::text[])', 2);
    this.name = statementName('aggr', this.text);
  }

  /**
   * The statement with its entity filter `entities` (e.g. `= $1`) and the parameters of `params`
   * numbered from `$first`, so other statements can embed it beside their own parameters.
   */
  render(entities: string, first: number): string {
    const p = (k: number) => `$${first + k}`;
    // One index range per entity and tile size (sizes, then the range each size's features need).
    return (
      `SELECT t.entity_id,\n  ${windowSums(this.features, (k) => [p(3 + k * 2), p(4 + k * 2)])}\n` +
      `FROM unnest(${p(0)}::int[], ${p(1)}::bigint[], ${p(2)}::bigint[]) AS r(size, lo, hi)\n` +
      `JOIN ${this.tilesTable.sql} t ON t.tile_ms = r.size AND t.tile_start >= r.lo AND t.tile_start < r.hi\n` +
      `WHERE t.entity_id ${entities}\n` +
      `GROUP BY t.entity_id`
    );
  }

  /** How many values `params` gives. */
  get paramCount(): number {
    return 3 + this.features.length * 2;
  }

  /** Columns of a row of the statement: the entity id, then WINDOW_SUM_COLUMNS per feature. */
  get width(): number {
    return 1 + this.features.length * WINDOW_SUM_COLUMNS;
  }

  /** The statement's text: `$1` the entity ids, then the window bounds of `params`. */
  get sql(): string {
    return this.text;
  }

  /** Parameters of the statement at `atMs`, after the entity ids. */
  params(atMs: number): unknown[] {
    // The head tile is read too: [tail, head + tile) holds it.
    const bounds = this.features.map((f) => {
      const { tail, head } = windowTiles(atMs, f.windowMs, f.tileMs);
      return { from: tail, to: head + f.tileMs };
    });
    const ranges = this.sizes.map((size) => {
      const own = bounds.filter((_, k) => this.features[k]!.tileMs === size);
      return [Math.min(...own.map((b) => b.from)), Math.max(...own.map((b) => b.to))] as const;
    });
    return [this.sizes, ranges.map((r) => r[0]), ranges.map((r) => r[1]), ...bounds.flatMap((b) => [b.from, b.to])];
  }

  /** The aggregates of a row whose window columns start at `first`; undefined when none has a value. */
  decodeFeatures(row: readonly unknown[], first: number): (StoredFeature | null)[] | undefined {
    const features = this.features.map((f, k): StoredFeature | null => {
      const window = windowValue(f, sumsAt(row, first, k));
      return window ? { value: window.value, eventMs: window.eventMs } : null;
    });
    return features.some((f) => f !== null) ? features : undefined;
  }

  async read(pool: Pool, entityIds: readonly string[], atMs: number): Promise<Map<string, StoredEntity>> {
    const result = await pool.query({
      name: this.name,
      text: this.text,
      values: [entityIds, ...this.params(atMs)],
      rowMode: 'array',
    });
    const found = new Map<string, StoredEntity>();
    for (const row of result.rows as unknown[][]) {
      const features = this.decodeFeatures(row, 1);
      if (features) found.set(row[0] as string, { entityId: row[0] as string, features });
    }
    return found;
  }
}
