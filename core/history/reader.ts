import type { Pool } from 'pg';
import { sumsAt, windowSums, windowValue } from '../aggregates/reader';
import { tilesTableFor } from '../aggregates/store';
import { windowBounds, type AggregateFeature } from '../aggregates/tiles';
import type { JsonValue } from '../events/path';
import type { FeatureType } from '../featuregroup/schema';
import { FEATURES_SCHEMA, qualified, statementName } from '../storage/identifiers';
import { formatTime } from '../time';
import { historyTableFor } from './store';

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
 * - aggregates: the tiles of each row's own window (the same rule as online, at the row's time).
 * Every value comes from events at or before the row's time: nothing leaks from its future.
 */
export class HistoricalReader {
  private readonly valuesSql: string;
  private readonly valuesName: string;
  private readonly aggregatesSql: string;
  private readonly aggregatesName: string;

  constructor(
    table: string,
    private readonly valueFeatures: readonly { name: string; type: FeatureType }[],
    private readonly aggregates: readonly AggregateFeature[],
  ) {
    this.valuesSql =
      `SELECT r.i::int AS i, f.feature, h.value, h.event_ms::text AS event_ms\n` +
      `FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS r(entity_id, at_ms, i)\n` +
      `CROSS JOIN unnest($3::text[]) AS f(feature)\n` +
      `JOIN LATERAL (SELECT value, event_ms FROM ${qualified(FEATURES_SCHEMA, historyTableFor(table))} h\n` +
      `  WHERE h.entity_id = r.entity_id AND h.feature = f.feature AND h.event_ms <= r.at_ms\n` +
      `  ORDER BY h.event_ms DESC, h.kafka_offset DESC LIMIT 1) h ON true`;
    this.valuesName = statementName('asof', this.valuesSql);
    // One input row per request row: its entity and each aggregate's [lo, hi) at the row's time.
    const bounds = aggregates.flatMap((_, k) => [`lo${k}`, `hi${k}`]);
    const inputs = ['$1::int[]', '$2::text[]', ...bounds.map((_, j) => `$${3 + j}::bigint[]`)];
    this.aggregatesSql =
      `SELECT w.i,\n  ${windowSums(aggregates, (k) => [`w.lo${k}`, `w.hi${k}`])}\n` +
      `FROM unnest(${inputs.join(', ')}) AS w(i, entity_id${bounds.map((b) => `, ${b}`).join('')})\n` +
      `JOIN ${qualified(FEATURES_SCHEMA, tilesTableFor(table))} t\n` +
      `  ON t.entity_id = w.entity_id AND t.tile_start >= LEAST(${aggregates.map((_, k) => `w.lo${k}`).join(', ') || 'NULL'})` +
      ` AND t.tile_start < GREATEST(${aggregates.map((_, k) => `w.hi${k}`).join(', ') || 'NULL'})\n` +
      `GROUP BY w.i`;
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
              out[row.i - 1]![column.get(row.feature)!] = { value: parseHistoryValue(types.get(row.feature)!, row.value), eventMs: Number(row.event_ms) };
            }
          }),
      asksAggregates &&
        (async () => {
          // Every aggregate of the group is summed (one statement text); the asked ones are kept.
          const params: unknown[][] = [rows.map((_, i) => i), rows.map((r) => r.entityId)];
          for (const feature of this.aggregates) {
            const windows = rows.map((r) => windowBounds(r.atMs, feature.windowMs, feature.tileMs));
            params.push(windows.map((w) => w.from), windows.map((w) => w.to));
          }
          const result = await pool.query({ name: this.aggregatesName, text: this.aggregatesSql, values: params, rowMode: 'array' });
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
