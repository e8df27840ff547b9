import type { Pool } from 'pg';
import { AggregateReader } from '../aggregates/reader';
import type { AggregateFeature, CompiledGroup } from '../featuregroup/compiled';
import { GroupReader, type StoredEntity, type StoredFeature } from './reader';
import { quoteIdent, statementName } from './identifiers';
import { ENTITY_COLUMN } from './layout';

/**
 * Reads any mix of a group's value features and window aggregates, aligned with the names asked
 * for: value features from the group's table, aggregates from its tiles at the given time, in one
 * statement (a full join of the two reads on the entity id).
 */
export class FeatureReader {
  private readonly values: GroupReader | undefined;
  private readonly aggregates: AggregateReader | undefined;
  /** Both kinds at once: the joined statement. */
  private readonly joined: { name: string; text: string } | undefined;
  /** For each requested name: [0 = value, 1 = aggregate, its index in that reader]. */
  private readonly slots: [0 | 1, number][];

  constructor(
    group: CompiledGroup,
    readonly featureNames: readonly string[],
  ) {
    const valueNames = featureNames.filter((n) => group.values.some((f) => f.name === n));
    const aggregateList = featureNames
      .map((n) => group.aggregates.find((a) => a.name === n))
      .filter((a): a is AggregateFeature => a !== undefined);
    for (const name of featureNames) {
      if (!valueNames.includes(name) && !aggregateList.some((a) => a.name === name))
        throw new Error(`unknown feature ${name}`);
    }
    this.values = valueNames.length ? new GroupReader(group, valueNames) : undefined;
    this.aggregates = aggregateList.length ? new AggregateReader(group.tables.tiles, aggregateList) : undefined;
    if (this.values && this.aggregates) {
      const text =
        `SELECT coalesce(v.${quoteIdent(ENTITY_COLUMN)}, a.entity_id), v.*, a.*\n` +
        `FROM (${this.values.select} WHERE ${quoteIdent(ENTITY_COLUMN)} = ANY($1::text[])) v\n` +
        `FULL JOIN (${this.aggregates.sql}) a ON a.entity_id = v.${quoteIdent(ENTITY_COLUMN)}`;
      this.joined = { name: statementName('readva', text), text };
    }
    this.slots = featureNames.map((n) =>
      valueNames.includes(n) ? [0, valueNames.indexOf(n)] : [1, aggregateList.findIndex((a) => a.name === n)],
    );
  }

  async readOne(pool: Pool, entityId: string, atMs = Date.now()): Promise<StoredEntity | undefined> {
    return (await this.readMany(pool, [entityId], atMs)).get(entityId);
  }

  /** The entities that have any requested feature, keyed by id. */
  async readMany(pool: Pool, entityIds: readonly string[], atMs = Date.now()): Promise<Map<string, StoredEntity>> {
    if (this.joined && this.values && this.aggregates)
      return this.readJoined(pool, this.values, this.aggregates, entityIds, atMs);
    const [values, aggregates] = await Promise.all([
      this.values
        ? entityIds.length === 1
          ? this.values.readOne(pool, entityIds[0]!).then((e) => new Map(e ? [[e.entityId, e]] : []))
          : this.values.readMany(pool, entityIds)
        : undefined,
      this.aggregates?.read(pool, entityIds, atMs),
    ]);
    const found = new Map<string, StoredEntity>();
    for (const id of new Set([...(values?.keys() ?? []), ...(aggregates?.keys() ?? [])])) {
      found.set(id, this.align(id, values?.get(id)?.features, aggregates?.get(id)?.features));
    }
    return found;
  }

  private async readJoined(
    pool: Pool,
    values: GroupReader,
    aggregates: AggregateReader,
    entityIds: readonly string[],
    atMs: number,
  ): Promise<Map<string, StoredEntity>> {
    const result = await pool.query({
      ...this.joined!,
      values: [entityIds, ...aggregates.params(atMs)],
      rowMode: 'array',
    });
    const found = new Map<string, StoredEntity>();
    // Row: the id, then the value select (its own id first), then the aggregate select (likewise).
    const aggregatesAt = 2 + values.width + 1;
    for (const row of result.rows as unknown[][]) {
      const id = row[0] as string;
      const hasValues = row[1] !== null;
      const aggregated = aggregates.decodeFeatures(row, aggregatesAt);
      if (!hasValues && !aggregated) continue;
      found.set(id, this.align(id, hasValues ? values.decodeFeatures(row, 2) : undefined, aggregated));
    }
    return found;
  }

  private align(
    entityId: string,
    values: (StoredFeature | null)[] | undefined,
    aggregates: (StoredFeature | null)[] | undefined,
  ): StoredEntity {
    const sources = [values, aggregates];
    return { entityId, features: this.slots.map(([source, index]) => sources[source]?.[index] ?? null) };
  }
}
