import type { Pool } from 'pg';
import type { FeatureType } from '../featuregroup/schema';
import type { JsonValue } from '../events/path';
import { formatTime } from '../time';
import type { CompiledGroup } from '../featuregroup/compiled';
import { ENTITY_COLUMN } from './layout';
import { quoteIdent, statementName } from './identifiers';

export interface StoredFeature {
  value: JsonValue;
  /** The event time, in epoch milliseconds. */
  eventMs: number;
}

export interface StoredEntity {
  entityId: string;
  /** Aligned with the reader's feature list; null where the entity has no value yet. */
  features: (StoredFeature | null)[];
}

const identity = (value: unknown): JsonValue => value as JsonValue;
/** bigint arrives as text; it is served as a number where a JS number holds it exactly. */
const int64 = (value: unknown): JsonValue => {
  if (value === null) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : (value as string);
};
const timestamp = (value: unknown): JsonValue => (value instanceof Date ? formatTime(value) : (value as JsonValue));
/** A stored value column of `type` as served (bigint as a number where exact, timestamps as ISO text). */
export const PARSERS: Record<FeatureType, (value: unknown) => JsonValue> = {
  string: identity,
  int64,
  float64: identity,
  bool: identity,
  timestamp,
  json: identity,
};

/**
 * A timestamptz column as epoch milliseconds, so a row's event times reach JS as numbers instead
 * of text parsed into a Date per value. date_part's float8 costs Postgres a fifth of numeric
 * extract; rounded, it is exact for every whole millisecond from year 1 to 9999 (checked over 2M
 * random times), which is what the consumer stores. A sub-millisecond part rounds to the nearest ms.
 */
export const epochMs = (column: string): string => `round(date_part('epoch', ${quoteIdent(column)}) * 1000)`;

/**
 * Reads a chosen set of a group's features for one or many entities, each in one round trip
 * through a prepared statement. Columns are the group's validated identifiers, never input.
 */
export class GroupReader {
  private readonly one: { name: string; text: string };
  private readonly many: { name: string; text: string };
  private readonly parsers: ((v: unknown) => JsonValue)[];
  /** `SELECT <entity>, <value, event time>… FROM <table>`: what other statements can join. */
  readonly select: string;

  constructor(
    group: CompiledGroup,
    readonly featureNames: readonly string[],
  ) {
    const columns = featureNames.map((name) => {
      const f = group.values.find((c) => c.name === name);
      if (!f) throw new Error(`unknown feature ${name}`);
      return f;
    });
    const select = [quoteIdent(ENTITY_COLUMN), ...columns.flatMap((f) => [quoteIdent(f.value), epochMs(f.eventTime)])];
    this.select = `SELECT ${select.join(', ')} FROM ${group.tables.values.sql}`;
    const base = `${this.select} WHERE ${quoteIdent(ENTITY_COLUMN)}`;
    this.one = { text: `${base} = $1`, name: '' };
    this.one.name = statementName('read1', this.one.text);
    this.many = { text: `${base} = ANY($1::text[])`, name: '' };
    this.many.name = statementName('readn', this.many.text);
    this.parsers = columns.map((f) => PARSERS[f.type]);
  }

  async readOne(pool: Pool, entityId: string): Promise<StoredEntity | undefined> {
    const result = await pool.query({ ...this.one, values: [entityId], rowMode: 'array' });
    const row = result.rows[0] as unknown[] | undefined;
    return row && this.decode(row);
  }

  /** Returns the stored entities keyed by id; ids with no row are absent. */
  async readMany(pool: Pool, entityIds: readonly string[]): Promise<Map<string, StoredEntity>> {
    const result = await pool.query({ ...this.many, values: [entityIds], rowMode: 'array' });
    const found = new Map<string, StoredEntity>();
    for (const row of result.rows as unknown[][]) {
      const entity = this.decode(row);
      found.set(entity.entityId, entity);
    }
    return found;
  }

  private decode(row: unknown[]): StoredEntity {
    return { entityId: row[0] as string, features: this.decodeFeatures(row, 1) };
  }

  /** Columns per feature in `select`, after the entity id. */
  get width(): number {
    return this.parsers.length * 2;
  }

  /** The features of a row whose value columns start at `first`. */
  decodeFeatures(row: readonly unknown[], first: number): (StoredFeature | null)[] {
    const features: (StoredFeature | null)[] = new Array<StoredFeature | null>(this.parsers.length);
    for (let i = 0; i < this.parsers.length; i++) {
      const eventMs = row[first + 1 + i * 2] as number | null;
      features[i] = eventMs === null ? null : { value: this.parsers[i]!(row[first + i * 2]), eventMs };
    }
    return features;
  }
}
