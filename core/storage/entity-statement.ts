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
  /** Value features, then window aggregates, as the group declares them. */
  features: FeatureColumns[];
  /** Where the group's value row shows its entity id (null when it has no row); -1 without value features. */
  rowAt: number;
}

/** Postgres allows 1,664 columns in a select list; groups beyond this many columns take another statement. */
const MAX_COLUMNS = 1_200;

interface Chunk {
  name: string;
  text: string;
  /** The chunk's aggregate readers, in the order their parameters follow `$1`. */
  aggregates: AggregateReader[];
}

/**
 * Every feature of many groups for one entity in one round trip: each group's value row and its
 * window aggregates are subqueries of at most one row, left-joined on true to a one-row base, so
 * one result row holds every group side by side in its typed columns (event times as epoch ms).
 * Only groups too wide for one select list take a second statement, sent concurrently.
 */
export class EntityStatement {
  readonly groups: GroupColumns[] = [];
  private readonly chunks: Chunk[] = [];

  constructor(groups: readonly CompiledGroup[]) {
    let at = 0;
    let parts: string[] = [];
    let aggregates: AggregateReader[] = [];
    let width = 0;
    let nextParam = 2;
    const close = () => {
      if (!parts.length) return;
      const text = `SELECT *\nFROM (SELECT) k\n${parts.join('\n')}`;
      this.chunks.push({ name: statementName('entity', text), text, aggregates });
      parts = [];
      aggregates = [];
      width = 0;
      nextParam = 2;
    };
    for (const group of groups) {
      const valueWidth = group.values.length ? 1 + group.values.length * 2 : 0;
      const reader = group.aggregates.length ? new AggregateReader(group.tables.tiles, group.aggregates) : undefined;
      const groupWidth = valueWidth + (reader?.width ?? 0);
      if (width > 0 && width + groupWidth > MAX_COLUMNS) close();
      const features: FeatureColumns[] = [];
      let rowAt = -1;
      if (group.values.length) {
        rowAt = at;
        const columns = [
          quoteIdent(ENTITY_COLUMN),
          ...group.values.flatMap((f) => [quoteIdent(f.value), epochMs(f.eventTime)]),
        ];
        parts.push(
          `LEFT JOIN (SELECT ${columns.join(', ')} FROM ${group.tables.values.sql} ` +
            `WHERE ${quoteIdent(ENTITY_COLUMN)} = $1) v${this.groups.length} ON true`,
        );
        group.values.forEach((f, i) => {
          const value = at + 1 + i * 2;
          const parse = PARSERS[f.type];
          features.push({
            name: f.name,
            eventMs: (row) => row[value + 1] as number | null,
            value: (row) => parse(row[value]),
          });
        });
        at += valueWidth;
      }
      if (reader) {
        parts.push(`LEFT JOIN (${reader.render('= $1', nextParam)}) a${this.groups.length} ON true`);
        nextParam += reader.paramCount;
        aggregates.push(reader);
        const first = at + 1;
        reader.features.forEach((f, k) => {
          features.push({
            name: f.name,
            eventMs: (row) => windowValue(f, sumsAt(row, first, k))?.eventMs ?? null,
            value: (row) => windowValue(f, sumsAt(row, first, k))!.value,
          });
        });
        at += reader.width;
      }
      width += groupWidth;
      this.groups.push({ group, features, rowAt });
    }
    close();
  }

  /** The combined row for `entityId` at `atMs` (window bounds); undefined when no group is registered. */
  async read(pool: Pool, entityId: string, atMs: number): Promise<readonly unknown[] | undefined> {
    if (!this.chunks.length) return undefined;
    const run = async (chunk: Chunk): Promise<unknown[]> => {
      const values = [entityId, ...chunk.aggregates.flatMap((a) => a.params(atMs))];
      const result = await pool.query({ name: chunk.name, text: chunk.text, values, rowMode: 'array' });
      return result.rows[0] as unknown[];
    };
    if (this.chunks.length === 1) return run(this.chunks[0]!);
    return (await Promise.all(this.chunks.map(run))).flat();
  }
}
