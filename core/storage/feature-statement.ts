import type { Pool } from 'pg';
import { AggregateReader, sumsAt, windowValue } from '../aggregates/reader';
import type { CompiledGroup } from '../featuregroup/compiled';
import type { JsonValue } from '../events/path';
import { quoteIdent, statementName } from './identifiers';
import { ENTITY_COLUMN } from './layout';
import { epochMs, PARSERS } from './reader';

/** One served feature's columns in the combined row: when it was set, and its value. */
export interface FeatureColumns {
  name: string;
  /** Epoch milliseconds of the served value; null where the entity has none. */
  eventMs(row: readonly unknown[]): number | null;
  /** The served value (call only where eventMs is not null). */
  value(row: readonly unknown[]): JsonValue;
}

export interface GroupColumns {
  group: CompiledGroup;
  /** The features read: value features, then window aggregates, each in the group's order. */
  features: FeatureColumns[];
  byName: ReadonlyMap<string, FeatureColumns>;
  /** Where the group's value row shows its entity id (null when it has no row); -1 without value features. */
  rowAt: number;
}

/** A group and the features to read from it (all when absent). */
export interface Selection {
  group: CompiledGroup;
  features?: readonly string[];
}

/** Postgres allows 1,664 columns in a select list; groups beyond this many columns take another statement. */
const MAX_COLUMNS = 1_200;

interface Chunk {
  name: string;
  text: string;
  /** The chunk's aggregate readers, in the order their parameters follow `$1`. */
  aggregates: AggregateReader[];
  width: number;
}

/**
 * Features of many groups in one round trip. Each group's value row and its window aggregates are
 * subqueries, left-joined side by side to the entity ids, so one result row per entity holds every
 * group in its typed columns (event times as epoch ms), the id first. `one` reads a single entity
 * (the subqueries filter on `= $1`, joined on true); otherwise `$1` is an array of distinct ids,
 * unnested, and each subquery reads them all at once. Only groups too wide for one select list take
 * a second statement, sent concurrently, its rows appended to the first's.
 */
export class FeatureStatement {
  readonly groups: GroupColumns[] = [];
  private readonly chunks: Chunk[] = [];

  constructor(
    selections: readonly Selection[],
    private readonly one: boolean,
  ) {
    let at = 0;
    let chunkAt = 0;
    let parts: string[] = [];
    let aggregates: AggregateReader[] = [];
    let nextParam = 2;
    const filter = one ? '= $1' : '= ANY($1::text[])';
    const join = (alias: string, column: string) => (one ? 'ON true' : `ON ${alias}.${column} = k.id`);
    const open = () => {
      chunkAt = at;
      at += 1; // the id
    };
    const close = () => {
      const base = one ? '(SELECT $1::text AS id) k' : 'unnest($1::text[]) AS k(id)';
      const text = `SELECT *\nFROM ${base}\n${parts.join('\n')}`;
      this.chunks.push({ name: statementName('features', text), text, aggregates, width: at - chunkAt });
      parts = [];
      aggregates = [];
      nextParam = 2;
    };
    open();
    for (const { group, features: wanted } of selections) {
      const values = group.values.filter((f) => !wanted || wanted.includes(f.name));
      const windows = group.aggregates.filter((a) => !wanted || wanted.includes(a.name));
      for (const name of wanted ?? [])
        if (!values.some((f) => f.name === name) && !windows.some((a) => a.name === name))
          throw new Error(`unknown feature ${name}`);
      const reader = windows.length ? new AggregateReader(group.tables.tiles, windows) : undefined;
      const width = (values.length ? 1 + values.length * 2 : 0) + (reader?.width ?? 0);
      if (parts.length && at - chunkAt + width > MAX_COLUMNS) {
        close();
        open();
      }
      const g = this.groups.length;
      const features: FeatureColumns[] = [];
      let rowAt = -1;
      if (values.length) {
        rowAt = at;
        const columns = [
          quoteIdent(ENTITY_COLUMN),
          ...values.flatMap((f) => [quoteIdent(f.value), epochMs(f.eventTime)]),
        ];
        parts.push(
          `LEFT JOIN (SELECT ${columns.join(', ')} FROM ${group.tables.values.sql} ` +
            `WHERE ${quoteIdent(ENTITY_COLUMN)} ${filter}) v${g} ${join(`v${g}`, quoteIdent(ENTITY_COLUMN))}`,
        );
        values.forEach((f, i) => {
          const value = at + 1 + i * 2;
          const parse = PARSERS[f.type];
          features.push({
            name: f.name,
            eventMs: (row) => row[value + 1] as number | null,
            value: (row) => parse(row[value]),
          });
        });
        at += 1 + values.length * 2;
      }
      if (reader) {
        parts.push(`LEFT JOIN (${reader.render(filter, nextParam)}) a${g} ${join(`a${g}`, 'entity_id')}`);
        nextParam += reader.paramCount;
        aggregates.push(reader);
        const first = at + 1;
        reader.features.forEach((f, k) => {
          // Callers ask a row's time, then its value: the window is combined once per row.
          let seen: readonly unknown[] | undefined;
          let window: ReturnType<typeof windowValue>;
          const of = (row: readonly unknown[]) => {
            if (row !== seen) [seen, window] = [row, windowValue(f, sumsAt(row, first, k))];
            return window;
          };
          features.push({ name: f.name, eventMs: (row) => of(row)?.eventMs ?? null, value: (row) => of(row)!.value });
        });
        at += reader.width;
      }
      this.groups.push({ group, features, byName: new Map(features.map((f) => [f.name, f])), rowAt });
    }
    if (parts.length) close();
  }

  /** Whether the entity has a value row in some group, in a row of this statement. */
  holdsRow(row: readonly unknown[]): boolean {
    return this.groups.some((g) => g.rowAt >= 0 && row[g.rowAt] !== null);
  }

  /**
   * One row per id asked for (`ids` distinct: callers deduplicate), at `atMs` (the window bounds),
   * keyed by id; an id no group holds still has its row, of nulls. Empty when nothing is selected.
   */
  async read(pool: Pool, ids: readonly string[], atMs: number): Promise<Map<string, readonly unknown[]>> {
    if (this.one && ids.length !== 1) throw new Error('a statement for one entity reads exactly one id');
    const run = async (chunk: Chunk): Promise<unknown[][]> => {
      const values = [this.one ? ids[0] : ids, ...chunk.aggregates.flatMap((a) => a.params(atMs))];
      const result = await pool.query({ name: chunk.name, text: chunk.text, values, rowMode: 'array' });
      return result.rows as unknown[][];
    };
    const found = new Map<string, readonly unknown[]>();
    if (this.chunks.length === 1) {
      for (const row of await run(this.chunks[0]!)) found.set(row[0] as string, row);
      return found;
    }
    const results = await Promise.all(this.chunks.map(run));
    const byChunk = results.map((rows) => new Map(rows.map((row) => [row[0] as string, row])));
    for (const id of ids)
      found.set(
        id,
        byChunk.flatMap((rows, c) => rows.get(id) ?? new Array<unknown>(this.chunks[c]!.width).fill(null)),
      );
    return found;
  }
}
