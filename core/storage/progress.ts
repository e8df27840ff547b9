import type { Pool } from 'pg';
import { PLATFORM_SCHEMA, qualified } from './identifiers';

/** What Postgres holds of one partition's consumption: where it resumes, how fresh, what failed. */
export interface PartitionProgress {
  partition: number;
  nextOffset: number;
  /** When the stored offset last moved. */
  updatedAt: Date;
  newestEventMs: number | undefined;
  lastError: string | undefined;
  lastErrorAt: Date | undefined;
}

interface ProgressRow {
  partition: number;
  next_offset: string;
  updated_at: Date;
  newest_event_ms: string | null;
  last_error: string | null;
  last_error_at: Date | null;
}

const PROGRESS_SQL =
  `SELECT partition, next_offset, updated_at, newest_event_ms, last_error, last_error_at FROM ${qualified(PLATFORM_SCHEMA, 'consumer_offsets')}\n` +
  `WHERE consumer_group = $1 AND topic = $2 ORDER BY partition`;

export async function readPartitionProgress(
  pool: Pool,
  consumerGroup: string,
  topic: string,
): Promise<Map<number, PartitionProgress>> {
  const result = await pool.query<ProgressRow>({
    name: 'fs_partition_progress',
    text: PROGRESS_SQL,
    values: [consumerGroup, topic],
  });
  return new Map(
    result.rows.map((r) => [
      r.partition,
      {
        partition: r.partition,
        nextOffset: Number(r.next_offset),
        updatedAt: r.updated_at,
        newestEventMs: r.newest_event_ms === null ? undefined : Number(r.newest_event_ms),
        lastError: r.last_error ?? undefined,
        lastErrorAt: r.last_error_at ?? undefined,
      },
    ]),
  );
}
