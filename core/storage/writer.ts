import type { Pool, PoolClient } from 'pg';
import type { TileWriter } from '../aggregates/store';
import type { HistoryWriter } from '../history/store';
import type { ExtractedEvent } from '../events/extract';
import type { StoredValue } from '../events/values';
import { ENTITY_COLUMN, COLUMN_TYPES, type StoreLayout } from './layout';
import { PLATFORM_SCHEMA, qualified, quoteIdent, statementName } from './identifiers';

/**
 * Kafka offsets are int64; they are handled as JS numbers, exact below 2^53 (a partition would
 * need nine quadrillion records to pass it), which keeps BigInt off the per-event path.
 */
export interface OffsetEvent {
  offset: number;
  event: ExtractedEvent;
}

/** The newest observation of each feature of one entity within a batch. */
interface EntityRow {
  times: number[];
  offsets: number[];
  values: (StoredValue | undefined)[];
}

/**
 * Folds a batch down to one row per entity, keeping for each feature the observation with the
 * greatest (event time, offset). The database applies the same rule against what it holds, so
 * the outcome is independent of batch boundaries and arrival order.
 */
export function reduceByEntity(events: readonly OffsetEvent[], featureCount: number): Map<string, EntityRow> {
  const rows = new Map<string, EntityRow>();
  for (const { offset, event } of events) {
    let row = rows.get(event.entityId);
    if (row === undefined) {
      row = { times: new Array(featureCount).fill(-Infinity), offsets: new Array(featureCount).fill(-1), values: new Array(featureCount) };
      rows.set(event.entityId, row);
    }
    for (let i = 0; i < featureCount; i++) {
      const value = event.values[i];
      if (value === undefined) continue;
      const time = row.times[i]!;
      if (event.eventTimeMs > time || (event.eventTimeMs === time && offset > row.offsets[i]!)) {
        row.times[i] = event.eventTimeMs;
        row.offsets[i] = offset;
        row.values[i] = value;
      }
    }
  }
  return rows;
}

/**
 * Builds, once per group, the single multi-row upsert that applies a reduced batch. Event times
 * travel as epoch milliseconds (bigint[]) and become timestamptz in SQL: exact, and no date
 * formatting per value in Node.
 */
export function buildUpsertSql(layout: StoreLayout): string {
  const columns = [ENTITY_COLUMN];
  const casts = ['text[]'];
  const selects = ['u.c0'];
  const assignments: string[] = [];
  for (const f of layout.features) {
    const n = columns.length;
    columns.push(f.value, f.eventTime, f.offset);
    casts.push(`${COLUMN_TYPES[f.type].ddl}[]`, 'bigint[]', 'bigint[]');
    selects.push(`u.c${n}`, `'epoch'::timestamptz + u.c${n + 1} * interval '1 millisecond'`, `u.c${n + 2}`);
    const [v, ts, off] = [quoteIdent(f.value), quoteIdent(f.eventTime), quoteIdent(f.offset)];
    const newer = `excluded.${ts} IS NOT NULL AND (t.${ts} IS NULL OR (excluded.${ts}, excluded.${off}) > (t.${ts}, t.${off}))`;
    for (const column of [v, ts, off]) assignments.push(`${column} = CASE WHEN ${newer} THEN excluded.${column} ELSE t.${column} END`);
  }
  const params = casts.map((cast, i) => `$${i + 1}::${cast}`).join(', ');
  const aliases = casts.map((_, i) => `c${i}`).join(', ');
  return (
    `INSERT INTO ${layout.sqlTable} AS t (${columns.map(quoteIdent).join(', ')})\n` +
    `SELECT ${selects.join(', ')} FROM unnest(${params}) AS u(${aliases})\n` +
    `ON CONFLICT (${quoteIdent(ENTITY_COLUMN)}) DO UPDATE SET\n  ${assignments.join(',\n  ')}`
  );
}

/** Column-major parameters for `buildUpsertSql`: one array per column, one element per entity. */
export function upsertParams(layout: StoreLayout, rows: Map<string, EntityRow>): unknown[] {
  const n = layout.features.length;
  const entityIds: string[] = [];
  const columns: unknown[][] = Array.from({ length: n * 3 }, () => []);
  // Rows go in key order, so concurrent batches that share entities lock them in the same order.
  const ordered = [...rows.keys()].sort();
  for (const entityId of ordered) {
    const row = rows.get(entityId)!;
    entityIds.push(entityId);
    for (let i = 0; i < n; i++) {
      const observed = row.values[i] !== undefined;
      columns[i * 3]!.push(observed ? row.values[i] : null);
      columns[i * 3 + 1]!.push(observed ? row.times[i]! : null);
      columns[i * 3 + 2]!.push(observed ? row.offsets[i]! : null);
    }
  }
  return [entityIds, ...columns];
}

const OFFSETS = qualified(PLATFORM_SCHEMA, 'consumer_offsets');
/** Locks the partition's offset row (creating it at 0) and returns what is stored. */
const LOCK_OFFSET_SQL =
  `INSERT INTO ${OFFSETS} AS o (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, 0)\n` +
  `ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = o.next_offset RETURNING next_offset`;
const STORE_OFFSET_SQL =
  `UPDATE ${OFFSETS} SET next_offset = $4, updated_at = now() WHERE consumer_group = $1 AND topic = $2 AND partition = $3`;
const READ_OFFSETS_SQL = `SELECT partition, next_offset FROM ${OFFSETS} WHERE consumer_group = $1 AND topic = $2`;

export interface PartitionBatch {
  consumerGroup: string;
  topic: string;
  partition: number;
  /** Offset of the batch's first record, valid or not: a gap to the stored offset is refused. */
  firstOffset: number;
  /** Write even though records between the stored offset and firstOffset are missing (expired from Kafka). */
  acceptGap?: boolean;
  /** Offset after the batch's last record, valid or not: what the consumer resumes from. */
  nextOffset: number;
  events: readonly OffsetEvent[];
}

export interface BatchOutcome {
  /** Events whose values were applied (before per-entity reduction). */
  applied: number;
  /** Events already covered by the stored offset: a replay after a crash. */
  replayed: number;
  /** Distinct entities written. */
  entities: number;
  /**
   * Set when nothing was written because the batch starts after the stored offset: the consumer
   * was fetching from a Kafka-committed offset ahead of Postgres (after a replay or a database
   * restore) and must seek back to this offset first.
   */
  resumeFrom?: number;
}

/** The group was replayed (or deleted) since this consumer loaded it: its view of the state is stale. */
export class FencedError extends Error {
  readonly code = 'E_FENCED';
}

/** The consumer's view of its group: a write is refused once the registry's replay epoch moved on. */
export interface WriteFence {
  namespace: string;
  name: string;
  epoch: number;
}

const FENCE_SQL = `SELECT replay_epoch FROM ${qualified(PLATFORM_SCHEMA, 'feature_groups')} WHERE namespace = $1 AND name = $2`;

/** Writes the feature values of one batch and its next offset atomically, one Postgres transaction. */
export class GroupWriter {
  private readonly upsertSql: string;
  private readonly statementName: string;

  /** `tiles` and `history` write window aggregates and value history in the same transaction. */
  constructor(
    private readonly layout: StoreLayout,
    private readonly tiles?: TileWriter,
    private readonly history?: HistoryWriter,
    private readonly fence?: WriteFence,
  ) {
    this.upsertSql = layout.features.length > 0 ? buildUpsertSql(layout) : '';
    this.statementName = statementName('upsert', this.upsertSql);
  }

  async write(pool: Pool, batch: PartitionBatch): Promise<BatchOutcome> {
    const client = await pool.connect();
    let released = false;
    try {
      await client.query('BEGIN');
      const key = [batch.consumerGroup, batch.topic, batch.partition];
      const locked = await client.query<{ next_offset: string }>({ name: 'fs_lock_offset', text: LOCK_OFFSET_SQL, values: key });
      const stored = Number(locked.rows[0]!.next_offset);
      if (this.fence) {
        // No row lock needed (writers may only read the registry): a replay first locks every
        // offset row of the group, so it either waits for this batch (whose offset row is locked
        // above) and then wipes it, or this batch waited for the replay and now sees its epoch.
        // It must be a statement of its own, after the lock: a subquery in the lock statement would
        // read the epoch from a snapshot taken before the wait.
        const current = await client.query<{ replay_epoch: string }>({ name: 'fs_fence', text: FENCE_SQL, values: [this.fence.namespace, this.fence.name] });
        const epoch = current.rows[0] ? Number(current.rows[0].replay_epoch) : undefined;
        if (epoch !== this.fence.epoch) {
          await client.query('ROLLBACK');
          throw new FencedError(epoch === undefined ? 'the feature group is no longer registered' : `the feature group was replayed (epoch ${this.fence.epoch} → ${epoch})`);
        }
      }
      if (batch.firstOffset > stored && !batch.acceptGap) {
        await client.query('ROLLBACK');
        return { applied: 0, replayed: 0, entities: 0, resumeFrom: stored };
      }
      const fresh = batch.events.filter((e) => e.offset >= stored);
      const outcome: BatchOutcome = { applied: fresh.length, replayed: batch.events.length - fresh.length, entities: 0 };
      if (batch.nextOffset <= stored) {
        await client.query('ROLLBACK');
        return outcome;
      }
      if (fresh.length > 0) {
        const rows = reduceByEntity(fresh, this.layout.features.length);
        outcome.entities = rows.size;
        if (this.layout.features.length > 0) await this.upsert(client, rows);
        if (this.tiles?.active) await this.tiles.write(client, fresh);
        if (this.history?.active) await this.history.write(client, batch.partition, fresh);
      }
      await client.query({ name: 'fs_store_offset', text: STORE_OFFSET_SQL, values: [...key, batch.nextOffset] });
      await client.query('COMMIT');
      return outcome;
    } catch (error) {
      // A connection that failed mid-transaction is not reused: destroy it rather than roll back.
      client.release(error as Error);
      released = true;
      throw error;
    } finally {
      if (!released) client.release();
    }
  }

  private async upsert(client: PoolClient, rows: Map<string, EntityRow>): Promise<void> {
    await client.query({ name: this.statementName, text: this.upsertSql, values: upsertParams(this.layout, rows) });
  }
}

/** Offsets this consumer group stored per partition of a topic: where to resume. */
export async function readStoredOffsets(pool: Pool, consumerGroup: string, topic: string): Promise<Map<number, number>> {
  const result = await pool.query<{ partition: number; next_offset: string }>(READ_OFFSETS_SQL, [consumerGroup, topic]);
  return new Map(result.rows.map((r) => [r.partition, Number(r.next_offset)]));
}
