import type { Pool } from 'pg';
import { AggregateReader } from '../aggregates/reader';
import type { AggregateFeature } from '../aggregates/tiles';
import type { StoreLayout } from './layout';
import { GroupReader, type StoredEntity, type StoredFeature } from './reader';

/**
 * Reads any mix of a group's value features and window aggregates, aligned with the names asked
 * for: value features from the group's table, aggregates from its tiles at the given time. The two
 * reads run concurrently.
 */
export class FeatureReader {
  private readonly values: GroupReader | undefined;
  private readonly aggregates: AggregateReader | undefined;
  /** For each requested name: [0 = value, 1 = aggregate, its index in that reader]. */
  private readonly slots: [0 | 1, number][];

  constructor(layout: StoreLayout, aggregateFeatures: readonly AggregateFeature[], readonly featureNames: readonly string[]) {
    const valueNames = featureNames.filter((n) => layout.features.some((f) => f.name === n));
    const aggregateList = featureNames.map((n) => aggregateFeatures.find((a) => a.name === n)).filter((a): a is AggregateFeature => a !== undefined);
    for (const name of featureNames) {
      if (!valueNames.includes(name) && !aggregateList.some((a) => a.name === name)) throw new Error(`unknown feature ${name}`);
    }
    this.values = valueNames.length ? new GroupReader(layout, valueNames) : undefined;
    this.aggregates = aggregateList.length ? new AggregateReader(layout.table, aggregateList) : undefined;
    this.slots = featureNames.map((n) => (valueNames.includes(n) ? [0, valueNames.indexOf(n)] : [1, aggregateList.findIndex((a) => a.name === n)]));
  }

  async readOne(pool: Pool, entityId: string, atMs = Date.now()): Promise<StoredEntity | undefined> {
    return (await this.readMany(pool, [entityId], atMs)).get(entityId);
  }

  /** The entities that have any requested feature, keyed by id. */
  async readMany(pool: Pool, entityIds: readonly string[], atMs = Date.now()): Promise<Map<string, StoredEntity>> {
    const [values, aggregates] = await Promise.all([
      this.values ? (entityIds.length === 1 ? this.values.readOne(pool, entityIds[0]!).then((e) => new Map(e ? [[e.entityId, e]] : [])) : this.values.readMany(pool, entityIds)) : undefined,
      this.aggregates?.read(pool, entityIds, atMs),
    ]);
    const found = new Map<string, StoredEntity>();
    for (const id of new Set([...(values?.keys() ?? []), ...(aggregates?.keys() ?? [])])) {
      const sources = [values?.get(id), aggregates?.get(id)];
      const features: (StoredFeature | null)[] = this.slots.map(([source, index]) => sources[source]?.features[index] ?? null);
      found.set(id, { entityId: id, features });
    }
    return found;
  }
}
