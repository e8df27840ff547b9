import type { Pool, PoolClient } from 'pg';
import type { OffsetEvent } from '../events/extract';
import type { CompiledGroup } from '../featuregroup/compiled';
import type { StoredValue } from '../events/values';
import { ENTITY_COLUMN, COLUMN_TYPES } from './layout';
import { continuityOf } from './continuity';
import { int8Array, textArray } from './binary-arrays';
import { PLATFORM_SCHEMA, qualified, quoteIdent, statementName } from './identifiers';

/** The newest observation of each feature of one entity within a batch. */
interface EntityRow {
  times: number[];
  offsets: number[];
  values: (StoredValue | undefined)[];
}

/**
 * Folds a batch down to one row per entity, keeping for each feature the observation with the
 * greatest (event time, offset). The database applies the same rule against what it holds, so
 * the outcome is independent of batch boundaries and arrival order. An event that carries no value
 * feature makes no row: an entity exists in the value table once it has a value.
 */
export function reduceByEntity(events: readonly OffsetEvent[], featureCount: number): Map<string, EntityRow> {
  const rows = new Map<string, EntityRow>();
  for (const { offset, event } of events) {
    let row = rows.get(event.entityId);
    if (row === undefined) {
      if (!event.values.some((v) => v !== undefined)) continue;
      row = {
        times: new Array<number>(featureCount).fill(-Infinity),
        offsets: new Array<number>(featureCount).fill(-1),
        values: new Array<StoredValue | undefined>(featureCount),
      };
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
export function buildUpsertSql(group: CompiledGroup): string {
  const columns = [ENTITY_COLUMN];
  const casts = ['text[]'];
  const selects = ['u.c0'];
  const assignments: string[] = [];
  const newerConditions: string[] = [];
  for (const f of group.values) {
    const n = columns.length;
    columns.push(f.value, f.eventTime, f.offset);
    // Values travel as text (binary text[]), and are converted by the column type's input function.
    casts.push(f.type === 'string' ? 'text[]' : `text[]::${COLUMN_TYPES[f.type].ddl}[]`, 'bigint[]', 'bigint[]');
    selects.push(`u.c${n}`, timestamptzFromEpochMs(`u.c${n + 1}`), `u.c${n + 2}`);
    const [v, ts, off] = [quoteIdent(f.value), quoteIdent(f.eventTime), quoteIdent(f.offset)];
    const newer = `excluded.${ts} IS NOT NULL AND (t.${ts} IS NULL OR (excluded.${ts}, excluded.${off}) > (t.${ts}, t.${off}))`;
    newerConditions.push(newer);
    for (const column of [v, ts, off])
      assignments.push(`${column} = CASE WHEN ${newer} THEN excluded.${column} ELSE t.${column} END`);
  }
  const params = casts.map((cast, i) => `$${i + 1}::${cast}`).join(', ');
  const aliases = casts.map((_, i) => `c${i}`).join(', ');
  // A row none of whose features is newer is left as it is: no new row version, no WAL.
  return (
    `INSERT INTO ${group.tables.values.sql} AS t (${columns.map(quoteIdent).join(', ')})\n` +
    `SELECT ${selects.join(', ')} FROM unnest(${params}) AS u(${aliases})\n` +
    `ON CONFLICT (${quoteIdent(ENTITY_COLUMN)}) DO UPDATE SET\n  ${assignments.join(',\n  ')}\n` +
    `WHERE ${newerConditions.map((c) => `(${c})`).join(' OR ')}`
  );
}

/**
 * Epoch milliseconds (bigint) as timestamptz, exactly. `ms * interval '1 millisecond'` multiplies
 * in double precision and is off by a millisecond past year 2255 (2^53 microseconds); whole
 * seconds times one second are exact across the whole range, and so is the remainder.
 */
export const timestamptzFromEpochMs = (ms: string): string =>
  `'epoch'::timestamptz + (${ms} / 1000) * interval '1 second' + (${ms} % 1000) * interval '1 millisecond'`;

/** Column-major parameters for `buildUpsertSql`, binary arrays: one per column, one element per entity. */
export function upsertParams(group: CompiledGroup, rows: Map<string, EntityRow>): Buffer[] {
  const n = group.values.length;
  const values: (string | null)[][] = Array.from({ length: n }, () => []);
  const times: (number | null)[][] = Array.from({ length: n }, () => []);
  const offsets: (number | null)[][] = Array.from({ length: n }, () => []);
  // Rows go in key order, so concurrent batches that share entities lock them in the same order.
  const ordered = [...rows.keys()].sort();
  for (const entityId of ordered) {
    const row = rows.get(entityId)!;
    for (let i = 0; i < n; i++) {
      const value = row.values[i];
      const observed = value !== undefined;
      values[i]!.push(observed ? storedText(value) : null);
      times[i]!.push(observed ? row.times[i]! : null);
      offsets[i]!.push(observed ? row.offsets[i]! : null);
    }
  }
  const params = [textArray(ordered)];
  for (let i = 0; i < n; i++) params.push(textArray(values[i]!), int8Array(times[i]!), int8Array(offsets[i]!));
  return params;
}

/** A stored value as the text its column's input function reads. */
export const storedText = (value: StoredValue): string => (typeof value === 'string' ? value : String(value));

const OFFSETS = qualified(PLATFORM_SCHEMA, 'consumer_offsets');
/** Locks the partition's offset row (creating it at 0) and returns what is stored. */
const LOCK_OFFSET_SQL =
  `INSERT INTO ${OFFSETS} AS o (consumer_group, topic, partition, next_offset) VALUES ($1, $2, $3, 0)\n` +
  `ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = o.next_offset RETURNING next_offset`;
/** Success clears the partition's last error; the newest event time only moves forward. */
const STORE_OFFSET_SQL =
  `UPDATE ${OFFSETS} SET next_offset = $4, updated_at = now(), newest_event_ms = GREATEST(newest_event_ms, $5::bigint), last_error = NULL, last_error_at = NULL\n` +
  `WHERE consumer_group = $1 AND topic = $2 AND partition = $3`;
/**
 * Moves a partition's offset over records Kafka never delivers (markers, aborted records), only
 * from where the consumer knows its fetch position was: a compare-and-set, so it cannot race a
 * batch that stored further meanwhile.
 */
const ADVANCE_OFFSET_SQL =
  `UPDATE ${OFFSETS} SET next_offset = $5, updated_at = now(), last_error = NULL, last_error_at = NULL\n` +
  `WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $4 AND $5 > $4`;
const RECORD_ERROR_SQL =
  `INSERT INTO ${OFFSETS} AS o (consumer_group, topic, partition, next_offset, last_error, last_error_at) VALUES ($1, $2, $3, 0, $4, now())\n` +
  `ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at`;
const READ_OFFSETS_SQL = `SELECT partition, next_offset FROM ${OFFSETS} WHERE consumer_group = $1 AND topic = $2`;

/** What else a batch writes in its transaction: the group's tiles, its history. */
export interface CompanionWriter {
  readonly active: boolean;
  write(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void>;
}

export interface PartitionBatch {
  consumerGroup: string;
  topic: string;
  partition: number;
  /**
   * Where the fetch that delivered this batch began (Kafka's `fetchOffset`): records Kafka skipped
   * before the first one (markers, aborted or compacted records) belong to the batch.
   */
  fetchedFrom: number;
  /** The stored offset this consumer last sent the partition back to, if it did (see continuityOf). */
  sentBackTo?: number | undefined;
  /** Offset after the batch's last record, valid or not: what the consumer resumes from. */
  nextOffset: number;
  events: readonly OffsetEvent[];
}

/** A record Postgres refused: it goes to the dead-letter topic with the database's reason. */
export interface RejectedEvent {
  offset: number;
  sqlstate: string;
  message: string;
}

export interface BatchOutcome {
  /** Events whose values were applied (before per-entity reduction). */
  applied: number;
  /** Events already covered by the stored offset: a replay after a crash. */
  replayed: number;
  /** Events Postgres refused, dead-lettered within the batch's transaction. */
  rejected: RejectedEvent[];
  /**
   * Set when nothing was written because the fetch began after the stored offset for a reason
   * other than Kafka's own gaps: the consumer must seek back to this offset first.
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

/**
 * SQLSTATE classes a record causes rather than a database that is unwell: cardinality (21), data
 * exception (22), integrity constraint (23), program limit such as an index row too large (54).
 * Connection, resource, privilege, timeout, serialization and shutdown errors are none of these:
 * they keep the batch retrying, so nothing is dead-lettered for a fault of the database.
 */
const RECORD_SQLSTATE = /^(21|22|23|54)[0-9A-Z]{3}$/;

export function recordCausedError(error: unknown): { sqlstate: string; message: string } | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return typeof code === 'string' && RECORD_SQLSTATE.test(code)
    ? { sqlstate: code, message: String(message) }
    : undefined;
}

/** Dead-letters refused records; called inside the batch's transaction, before it commits. */
export type DeadLetterSink = (rejected: readonly RejectedEvent[]) => Promise<void>;

const FENCE_SQL = `SELECT replay_epoch FROM ${qualified(PLATFORM_SCHEMA, 'feature_groups')} WHERE namespace = $1 AND name = $2`;

/** Writes the feature values of one batch and its next offset atomically, one Postgres transaction. */
export class GroupWriter {
  private readonly upsertSql: string;
  private readonly statementName: string;

  /** `tiles` and `history` write window aggregates and value history in the same transaction. */
  constructor(
    private readonly group: CompiledGroup,
    private readonly tiles?: CompanionWriter,
    private readonly history?: CompanionWriter,
    private readonly fence?: WriteFence,
  ) {
    this.upsertSql = group.values.length > 0 ? buildUpsertSql(group) : '';
    this.statementName = statementName('upsert', this.upsertSql);
  }

  /**
   * Writes the batch in one statement per table. Should Postgres refuse a record (a value that got
   * past validation), the batch is written again with the refused records isolated: they go to
   * `deadLetter` and everything else is stored, exactly once, in the transaction of the offsets.
   */
  async write(pool: Pool, batch: PartitionBatch, deadLetter: DeadLetterSink): Promise<BatchOutcome> {
    try {
      return await this.transact(pool, batch, undefined);
    } catch (error) {
      if (recordCausedError(error) === undefined) throw error;
      return await this.transact(pool, batch, deadLetter);
    }
  }

  private async transact(
    pool: Pool,
    batch: PartitionBatch,
    isolating: DeadLetterSink | undefined,
  ): Promise<BatchOutcome> {
    const client = await pool.connect();
    let released = false;
    try {
      await client.query('BEGIN');
      const key = [batch.consumerGroup, batch.topic, batch.partition];
      const locked = await client.query<{ next_offset: string }>({
        name: 'fs_lock_offset',
        text: LOCK_OFFSET_SQL,
        values: key,
      });
      const stored = Number(locked.rows[0]!.next_offset);
      if (this.fence) {
        // No row lock needed (writers may only read the registry): a replay first locks every
        // offset row of the group, so it either waits for this batch (whose offset row is locked
        // above) and then wipes it, or this batch waited for the replay and now sees its epoch.
        // It must be a statement of its own, after the lock: a subquery in the lock statement would
        // read the epoch from a snapshot taken before the wait.
        const current = await client.query<{ replay_epoch: string }>({
          name: 'fs_fence',
          text: FENCE_SQL,
          values: [this.fence.namespace, this.fence.name],
        });
        const epoch = current.rows[0] ? Number(current.rows[0].replay_epoch) : undefined;
        if (epoch !== this.fence.epoch) {
          await client.query('ROLLBACK');
          throw new FencedError(
            epoch === undefined
              ? 'the feature group is no longer registered'
              : `the feature group was replayed (epoch ${this.fence.epoch} → ${epoch})`,
          );
        }
      }
      const outcome: BatchOutcome = { applied: 0, replayed: 0, rejected: [] };
      if (continuityOf(stored, batch.fetchedFrom, batch.sentBackTo) === 'ahead') {
        await client.query('ROLLBACK');
        return { ...outcome, resumeFrom: stored };
      }
      let fresh = batch.events.filter((e) => e.offset >= stored);
      outcome.replayed = batch.events.length - fresh.length;
      if (batch.nextOffset <= stored) {
        await client.query('ROLLBACK');
        return outcome;
      }
      if (fresh.length > 0 && isolating) {
        outcome.rejected = await this.applyIsolating(client, batch.partition, fresh);
        const refused = new Set(outcome.rejected.map((r) => r.offset));
        fresh = fresh.filter((e) => !refused.has(e.offset));
        if (outcome.rejected.length > 0) await isolating(outcome.rejected);
      } else if (fresh.length > 0) {
        await this.apply(client, batch.partition, fresh);
      }
      outcome.applied = fresh.length;
      let newest: number | null = null;
      for (const { event } of fresh) if (newest === null || event.eventTimeMs > newest) newest = event.eventTimeMs;
      await client.query({
        name: 'fs_store_offset',
        text: STORE_OFFSET_SQL,
        values: [...key, batch.nextOffset, newest],
      });
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

  /** Values, tiles and history of some events. */
  private async apply(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void> {
    const rows = reduceByEntity(events, this.group.values.length);
    if (this.group.values.length > 0 && rows.size > 0) {
      await client.query({ name: this.statementName, text: this.upsertSql, values: upsertParams(this.group, rows) });
    }
    if (this.tiles?.active) await this.tiles.write(client, partition, events);
    if (this.history?.active) await this.history.write(client, partition, events);
  }

  /**
   * Applies the events in halves under savepoints until each statement that fails holds one event,
   * which Postgres refused. Writing parts one after another gives what one statement would: values
   * keep the newest by (event time, offset), tiles add up, history is keyed by offset.
   */
  private async applyIsolating(
    client: PoolClient,
    partition: number,
    events: readonly OffsetEvent[],
  ): Promise<RejectedEvent[]> {
    const rejected: RejectedEvent[] = [];
    const pending: (readonly OffsetEvent[])[] = [events];
    while (pending.length > 0) {
      const part = pending.pop()!;
      await client.query('SAVEPOINT fs_isolate');
      try {
        await this.apply(client, partition, part);
        await client.query('RELEASE SAVEPOINT fs_isolate');
      } catch (error) {
        const refused = recordCausedError(error);
        if (refused === undefined) throw error;
        await client.query('ROLLBACK TO SAVEPOINT fs_isolate');
        await client.query('RELEASE SAVEPOINT fs_isolate');
        if (part.length === 1) rejected.push({ offset: part[0]!.offset, ...refused });
        else pending.push(part.slice(part.length >> 1), part.slice(0, part.length >> 1));
      }
    }
    return rejected;
  }
}

/**
 * Moves the stored offset from `from` to `to` when Kafka delivered nothing in between (a fetch of
 * only transaction markers or aborted records), so that lag reaches zero at the end of a
 * transactional topic. Nothing happens unless `from` is still what Postgres holds.
 */
export async function advanceOverInvisible(
  pool: Pool,
  consumerGroup: string,
  topic: string,
  partition: number,
  from: number,
  to: number,
): Promise<boolean> {
  const result = await pool.query({
    name: 'fs_advance_offset',
    text: ADVANCE_OFFSET_SQL,
    values: [consumerGroup, topic, partition, from, to],
  });
  return result.rowCount === 1;
}

/** Records why a partition's batch failed, outside its transaction: what a stalled group's status shows. */
export async function recordPartitionError(
  pool: Pool,
  consumerGroup: string,
  topic: string,
  partition: number,
  message: string,
): Promise<void> {
  await pool.query({
    name: 'fs_record_error',
    text: RECORD_ERROR_SQL,
    values: [consumerGroup, topic, partition, message.slice(0, 1_000)],
  });
}

/** Offsets this consumer group stored per partition of a topic: where to resume. */
export async function readStoredOffsets(
  pool: Pool,
  consumerGroup: string,
  topic: string,
): Promise<Map<number, number>> {
  const result = await pool.query<{ partition: number; next_offset: string }>(READ_OFFSETS_SQL, [consumerGroup, topic]);
  return new Map(result.rows.map((r) => [r.partition, Number(r.next_offset)]));
}
