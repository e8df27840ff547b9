import type { Pool, PoolClient } from 'pg';
import type { OffsetEvent } from '../events/extract';
import type { CompiledGroup } from '../featuregroup/compiled';
import type { StoredValue } from '../events/values';
import { ENTITY_COLUMN, COLUMN_TYPES } from './layout';
import { continuityOf } from './continuity';
import { sqlstateOf } from './sqlstate';
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

/** Parameters of `upsertParams` for a group: the entity ids, then value, time and offset per feature. */
export const upsertParamCount = (group: CompiledGroup): number => 1 + 3 * group.values.length;

/**
 * The last statement of a batch's transaction: the values' upsert, the offset store and, for a
 * fenced writer, the replay fence in one, so that a batch costs four round trips (BEGIN, the offset
 * lock, this, COMMIT) rather than six. It returns the replay epoch it read, from a snapshot taken
 * after the lock statement returned, which is what the fence needs (see GroupWriter.transact); the
 * caller rolls the batch back when that epoch is not its own. Storing the offset clears the
 * partition's last error, and its newest event time only moves forward.
 *
 * Parameters: the upsert's (when `withUpsert`), then consumer group, topic, partition, next offset
 * and newest event time, then the fence's namespace and name (when `fenced`).
 */
export function buildBatchSql(group: CompiledGroup, withUpsert: boolean, fenced: boolean): string {
  let n = withUpsert ? upsertParamCount(group) : 0;
  const at = () => `$${++n}`;
  const [consumerGroup, topic, partition, next, newest] = [at(), at(), at(), at(), at()];
  const ctes = withUpsert ? [`upserted AS (${buildUpsertSql(group)})`] : [];
  ctes.push(
    `stored AS (UPDATE ${OFFSETS} SET next_offset = ${next}, updated_at = now(), ` +
      `newest_event_ms = GREATEST(newest_event_ms, ${newest}::bigint), last_error = NULL, last_error_at = NULL\n` +
      `  WHERE consumer_group = ${consumerGroup} AND topic = ${topic} AND partition = ${partition})`,
  );
  const epoch = fenced ? `(${fenceSql(at(), at())})` : 'NULL::bigint';
  return `WITH ${ctes.join(',\n')}\nSELECT ${epoch} AS replay_epoch`;
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
  const sqlstate = sqlstateOf(error);
  return sqlstate && RECORD_SQLSTATE.test(sqlstate)
    ? { sqlstate, message: String((error as { message?: unknown }).message) }
    : undefined;
}

/** Dead-letters refused records; called inside the batch's transaction, before it commits. */
export type DeadLetterSink = (rejected: readonly RejectedEvent[]) => Promise<void>;

const fenceSql = (namespace: string, name: string): string =>
  `SELECT replay_epoch FROM ${qualified(PLATFORM_SCHEMA, 'feature_groups')} WHERE namespace = ${namespace} AND name = ${name}`;
const FENCE_SQL = fenceSql('$1', '$2');

/** A prepared statement: its text, and the name it is prepared under on each connection. */
interface Prepared {
  text: string;
  name: string;
}
const prepared = (prefix: string, text: string): Prepared => ({ text, name: statementName(prefix, text) });

/** Writes the feature values of one batch and its next offset atomically, one Postgres transaction. */
export class GroupWriter {
  private readonly upsert: Prepared | undefined;
  /** The batch's last statement, with and without the values' upsert (see buildBatchSql). */
  private readonly finish: { withUpsert: Prepared | undefined; offsetOnly: Prepared };
  /** The offset store after the fence was checked on its own (the isolating path). */
  private readonly storeOffset: Prepared;

  /** `tiles` and `history` write window aggregates and value history in the same transaction. */
  constructor(
    private readonly group: CompiledGroup,
    private readonly tiles?: CompanionWriter,
    private readonly history?: CompanionWriter,
    private readonly fence?: WriteFence,
  ) {
    const hasValues = group.values.length > 0;
    const fenced = fence !== undefined;
    this.upsert = hasValues ? prepared('upsert', buildUpsertSql(group)) : undefined;
    this.finish = {
      withUpsert: hasValues ? prepared('batch', buildBatchSql(group, true, fenced)) : undefined,
      offsetOnly: prepared('batch', buildBatchSql(group, false, fenced)),
    };
    this.storeOffset = prepared('batch', buildBatchSql(group, false, false));
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
      const outcome: BatchOutcome = { applied: 0, replayed: 0, rejected: [] };
      let fresh = batch.events.filter((e) => e.offset >= stored);
      outcome.replayed = batch.events.length - fresh.length;
      const ahead = continuityOf(stored, batch.fetchedFrom, batch.sentBackTo) === 'ahead';
      if (ahead || batch.nextOffset <= stored || isolating) {
        // The fence as a statement of its own. No row lock is needed (writers may only read the
        // registry): a replay first locks every offset row of the group, so it either waits for this
        // batch (whose offset row is locked above) and then wipes it, or this batch waited for the
        // replay and now sees its epoch. It must come after the lock: a subquery in the lock
        // statement would read the epoch from a snapshot taken before the wait.
        await this.checkFence(client);
        if (ahead || batch.nextOffset <= stored) {
          await client.query('ROLLBACK');
          return ahead ? { ...outcome, resumeFrom: stored } : outcome;
        }
      }
      let newest: number | null = null;
      if (isolating) {
        if (fresh.length > 0) {
          outcome.rejected = await this.applyIsolating(client, batch.partition, fresh);
          const refused = new Set(outcome.rejected.map((r) => r.offset));
          fresh = fresh.filter((e) => !refused.has(e.offset));
          if (outcome.rejected.length > 0) await isolating(outcome.rejected);
        }
        newest = newestEventTime(fresh);
        await client.query({ ...this.storeOffset, values: [...key, batch.nextOffset, newest] });
      } else {
        // The common path: companions first, then the fence, the values and the offset in one
        // statement (the same table order as `apply`, so concurrent batches lock alike).
        await this.writeCompanions(client, batch.partition, fresh);
        const rows = reduceByEntity(fresh, this.group.values.length);
        newest = newestEventTime(fresh);
        const finish = rows.size > 0 && this.finish.withUpsert ? this.finish.withUpsert : this.finish.offsetOnly;
        const values: unknown[] = finish === this.finish.offsetOnly ? [] : upsertParams(this.group, rows);
        values.push(...key, batch.nextOffset, newest);
        if (this.fence) values.push(this.fence.namespace, this.fence.name);
        const result = await client.query<{ replay_epoch: string | null }>({ ...finish, values });
        if (this.fence) await this.refuseUnlessCurrent(client, result.rows[0]!.replay_epoch);
      }
      outcome.applied = fresh.length;
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

  private async checkFence(client: PoolClient): Promise<void> {
    if (!this.fence) return;
    const current = await client.query<{ replay_epoch: string }>({
      name: 'fs_fence',
      text: FENCE_SQL,
      values: [this.fence.namespace, this.fence.name],
    });
    await this.refuseUnlessCurrent(client, current.rows[0]?.replay_epoch ?? null);
  }

  /**
   * Rolls back and throws FencedError unless `read` (the registry's replay epoch, null when the
   * group is unregistered) is this writer's.
   */
  private async refuseUnlessCurrent(client: PoolClient, read: string | null): Promise<void> {
    const epoch = read === null ? undefined : Number(read);
    if (epoch === this.fence!.epoch) return;
    await client.query('ROLLBACK');
    throw new FencedError(
      epoch === undefined
        ? 'the feature group is no longer registered'
        : `the feature group was replayed (epoch ${this.fence!.epoch} → ${epoch})`,
    );
  }

  private async writeCompanions(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.tiles?.active) await this.tiles.write(client, partition, events);
    if (this.history?.active) await this.history.write(client, partition, events);
  }

  /** Tiles, history and values of some events. */
  private async apply(client: PoolClient, partition: number, events: readonly OffsetEvent[]): Promise<void> {
    await this.writeCompanions(client, partition, events);
    const rows = reduceByEntity(events, this.group.values.length);
    if (this.upsert && rows.size > 0) await client.query({ ...this.upsert, values: upsertParams(this.group, rows) });
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

/** The greatest event time of some events, or null when there are none. */
function newestEventTime(events: readonly OffsetEvent[]): number | null {
  let newest: number | null = null;
  for (const { event } of events) if (newest === null || event.eventTimeMs > newest) newest = event.eventTimeMs;
  return newest;
}
