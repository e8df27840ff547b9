import type { Pool } from 'pg';
import { logPartials } from '../aggregates/log';
import { lastNOfLists, sumsAt, tilePartials, windowValue } from '../aggregates/reader';
import { windowTiles } from '../aggregates/tiles';
import type { AggregateFeature, CompiledGroup, ValueFeature } from '../featuregroup/compiled';
import type { JsonValue } from '../events/path';
import type { FeatureType } from '../featuregroup/schema';
import { statementName } from '../storage/identifiers';
import { formatTime } from '../time';

/** One (entity, time) a training row asks about. */
export interface PointInTime {
  entityId: string;
  atMs: number;
}

/** A feature's value as of a row's time, and the event time it came from. */
export interface AsOfValue {
  value: JsonValue;
  eventMs: number;
}

/** History keeps values as text; this gives them back as serving does online. */
export function parseHistoryValue(type: FeatureType, text: string): JsonValue {
  switch (type) {
    case 'string':
      return text;
    case 'int64': {
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case 'float64':
      return Number(text);
    case 'bool':
      return text === 'true';
    case 'timestamp':
      return formatTime(Date.parse(text));
    case 'json':
      return JSON.parse(text) as JsonValue;
  }
}

/**
 * Point-in-time reads for many rows at once, one statement per kind of feature:
 * - value features: the latest history row at or before each row's time (ties: later offset);
 * - aggregates: each row's own window by the online rule at the row's time (tiles.ts), its closed
 *   tiles from the tiles and its head from the aggregate log up to the row's time.
 * Every value comes from events at or before the row's time: nothing leaks from its future.
 */
export class HistoricalReader {
  private readonly valuesSql: string;
  private readonly valuesName: string;
  private readonly aggregatesSql: string;
  private readonly aggregatesName: string;

  private readonly valueFeatures: readonly ValueFeature[];
  private readonly aggregates: readonly AggregateFeature[];

  constructor(group: CompiledGroup) {
    const aggregates = group.aggregates;
    this.valueFeatures = group.values;
    this.aggregates = aggregates;
    this.valuesSql =
      `SELECT r.i::int AS i, f.feature, h.value, h.event_ms::text AS event_ms\n` +
      `FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS r(entity_id, at_ms, i)\n` +
      `CROSS JOIN unnest($3::text[]) AS f(feature)\n` +
      `JOIN LATERAL (SELECT value, event_ms FROM ${group.tables.history.sql} h\n` +
      `  WHERE h.entity_id = r.entity_id AND h.feature = f.feature AND h.event_ms <= r.at_ms\n` +
      `  ORDER BY h.event_ms DESC, h.kafka_offset DESC LIMIT 1) h ON true`;
    this.valuesName = statementName('asof', this.valuesSql);
    // One input row per request row: its entity, its time, and each aggregate's tail and head tile.
    // The closed tiles [tail, head) come from the tiles, the head [head, at] from the aggregate log:
    // the head tile itself also holds events after the row's time.
    const bounds = aggregates.flatMap((_, k) => [`tail${k}`, `head${k}`]);
    const inputs = ['$1::int[]', '$2::text[]', '$3::bigint[]', ...bounds.map((_, j) => `$${4 + j}::bigint[]`)];
    const least = (names: string[]) => (names.length ? `LEAST(${names.join(', ')})` : 'NULL');
    const greatest = (names: string[]) => (names.length ? `GREATEST(${names.join(', ')})` : 'NULL');
    const tileCols = aggregates.flatMap((f, k) =>
      tilePartials(f, `w.tail${k}`, `w.head${k}`).map((e, j) => `${e} AS a${k}_${j}`),
    );
    const logCols = aggregates.flatMap((f, k) =>
      logPartials(f, `w.head${k}`, 'w.at_ms').map((e, j) => `${e} AS b${k}_${j}`),
    );
    const merged = aggregates
      .map((_, k) => {
        const [a, b] = [(j: number) => `tl.a${k}_${j}`, (j: number) => `hd.b${k}_${j}`];
        return [
          `(coalesce(${a(0)}, 0) + coalesce(${b(0)}, 0))::text`,
          `coalesce(${a(1)} + ${b(1)}, ${a(1)}, ${b(1)})::text`,
          `LEAST(${a(2)}, ${b(2)})::text`,
          `GREATEST(${a(3)}, ${b(3)})::text`,
          `GREATEST(${a(4)}, ${b(4)})::text`,
          aggregates[k]!.fn === 'last_n'
            ? lastNOfLists(
                `CASE WHEN ${b(5)} IS NULL THEN ${a(5)} ELSE coalesce(${a(5)}, '[]'::jsonb) || jsonb_build_array(${b(5)}) END`,
                aggregates[k]!.limit,
              )
            : 'NULL::jsonb',
        ].join(', ');
      })
      .join(',\n  ');
    this.aggregatesSql =
      `SELECT w.i,\n  ${merged || 'NULL'}\n` +
      `FROM unnest(${inputs.join(', ')}) AS w(i, entity_id, at_ms${bounds.map((b) => `, ${b}`).join('')})\n` +
      `LEFT JOIN LATERAL (SELECT ${tileCols.join(', ') || 'NULL'} FROM ${group.tables.tiles.sql} t\n` +
      `  WHERE t.entity_id = w.entity_id AND t.tile_ms = ANY('{${[...new Set(aggregates.map((f) => Math.trunc(f.tileMs)))].join(',')}}'::int[])\n` +
      `    AND t.tile_start >= ${least(aggregates.map((_, k) => `w.tail${k}`))} AND t.tile_start < ${greatest(aggregates.map((_, k) => `w.head${k}`))}) tl ON true\n` +
      `LEFT JOIN LATERAL (SELECT ${logCols.join(', ') || 'NULL'} FROM ${group.tables.aggregateLog.sql} l\n` +
      `  WHERE l.entity_id = w.entity_id AND l.event_ms >= ${least(aggregates.map((_, k) => `w.head${k}`))} AND l.event_ms <= w.at_ms) hd ON true`;
    this.aggregatesName = statementName('asofagg', this.aggregatesSql);
  }

  /** Values per row, in the order of `names` (value features and aggregates of this group). */
  async read(pool: Pool, rows: readonly PointInTime[], names: readonly string[]): Promise<(AsOfValue | null)[][]> {
    const out = rows.map(() => names.map((): AsOfValue | null => null));
    const column = new Map(names.map((n, i) => [n, i]));
    const values = this.valueFeatures.filter((f) => column.has(f.name));
    const asksAggregates = this.aggregates.some((f) => column.has(f.name));
    const types = new Map(values.map((f) => [f.name, f.type]));
    await Promise.all([
      values.length > 0 &&
        pool
          .query<{ i: number; feature: string; value: string; event_ms: string }>({
            name: this.valuesName,
            text: this.valuesSql,
            values: [rows.map((r) => r.entityId), rows.map((r) => r.atMs), values.map((f) => f.name)],
          })
          .then((result) => {
            for (const row of result.rows) {
              out[row.i - 1]![column.get(row.feature)!] = {
                value: parseHistoryValue(types.get(row.feature)!, row.value),
                eventMs: Number(row.event_ms),
              };
            }
          }),
      asksAggregates &&
        (async () => {
          // Every aggregate of the group is summed (one statement text); the asked ones are kept.
          const params: unknown[][] = [rows.map((_, i) => i), rows.map((r) => r.entityId), rows.map((r) => r.atMs)];
          for (const feature of this.aggregates) {
            const windows = rows.map((r) => windowTiles(r.atMs, feature.windowMs, feature.tileMs));
            params.push(
              windows.map((w) => w.tail),
              windows.map((w) => w.head),
            );
          }
          const result = await pool.query({
            name: this.aggregatesName,
            text: this.aggregatesSql,
            values: params,
            rowMode: 'array',
          });
          for (const row of result.rows as unknown[][]) {
            this.aggregates.forEach((feature, k) => {
              const at = column.get(feature.name);
              if (at === undefined) return;
              const window = windowValue(feature, sumsAt(row, 1, k));
              if (window) out[row[0] as number]![at] = { value: window.value, eventMs: window.eventMs };
            });
          }
        })(),
    ]);
    return out;
  }
}
