import type { Pool } from 'pg';
import type { CompiledGroup } from '../featuregroup/compiled';
/** Rows deleted per statement: short transactions that never hold up the consumer's writes. */
const DELETE_BATCH = 5_000;

export interface RetentionCutoffs {
  /** History rows older than this go, except each (entity, feature)'s newest one before it. */
  historyMs: number | undefined;
  /** Per tile size: its tiles starting before this are outside every window still asked for. */
  tiles: { tileMs: number; beforeMs: number }[];
  /** Aggregate log rows older than this answer no head of a window within the retention. */
  aggregateLogMs: number | undefined;
}

/**
 * What may go at `nowMs`. Point-in-time reads are promised for the history retention, so a tile is
 * kept while some window ending inside that span still covers it; without history, while the
 * online window does.
 */
export function retentionCutoffs(group: CompiledGroup, nowMs: number): RetentionCutoffs {
  const { aggregates } = group;
  const retention = group.history.retentionMs;
  return {
    historyMs: group.history.enabled ? nowMs - retention : undefined,
    aggregateLogMs: group.keepsAggregateLog
      ? nowMs - retention - Math.max(...aggregates.map((a) => a.tileMs))
      : undefined,
    // A tile row holds every aggregate of its size: it stays for the longest of their windows.
    tiles: group.tileSizes.map((tileMs) => ({
      tileMs,
      beforeMs:
        nowMs - retention - Math.max(...aggregates.filter((a) => a.tileMs === tileMs).map((a) => a.windowMs)) - tileMs,
    })),
  };
}

/** Deletes expired tiles and history in small batches; returns how many rows went. */
export async function applyRetention(
  pool: Pool,
  group: CompiledGroup,
  cutoffs: RetentionCutoffs,
): Promise<{ tiles: number; history: number; aggregateLog: number }> {
  const removed = { tiles: 0, history: 0, aggregateLog: 0 };
  const tiles = group.tables.tiles.sql;
  for (const { tileMs, beforeMs } of cutoffs.tiles) {
    for (;;) {
      const result = await pool.query(
        `DELETE FROM ${tiles} WHERE ctid IN (SELECT ctid FROM ${tiles} WHERE tile_start < $1 AND tile_ms = $2 LIMIT ${DELETE_BATCH})`,
        [beforeMs, tileMs],
      );
      removed.tiles += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < DELETE_BATCH) break;
    }
  }
  if (cutoffs.aggregateLogMs !== undefined) {
    const log = group.tables.aggregateLog.sql;
    for (;;) {
      const result = await pool.query(
        `DELETE FROM ${log} WHERE ctid IN (SELECT ctid FROM ${log} WHERE event_ms < $1 LIMIT ${DELETE_BATCH})`,
        [cutoffs.aggregateLogMs],
      );
      removed.aggregateLog += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < DELETE_BATCH) break;
    }
  }
  if (cutoffs.historyMs !== undefined) {
    const history = group.tables.history.sql;
    for (;;) {
      // The newest row before the cutoff stays: it is the value as of any time just after it.
      const result = await pool.query(
        `DELETE FROM ${history} WHERE ctid IN (\n` +
          `  SELECT h.ctid FROM ${history} h WHERE h.event_ms < $1 AND EXISTS (\n` +
          `    SELECT 1 FROM ${history} n WHERE n.entity_id = h.entity_id AND n.feature = h.feature AND n.event_ms < $1\n` +
          `      AND (n.event_ms, n.kafka_offset) > (h.event_ms, h.kafka_offset))\n` +
          `  LIMIT ${DELETE_BATCH})`,
        [cutoffs.historyMs],
      );
      removed.history += result.rowCount ?? 0;
      if ((result.rowCount ?? 0) < DELETE_BATCH) break;
    }
  }
  return removed;
}
