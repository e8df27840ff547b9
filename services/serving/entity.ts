import type { Pool } from 'pg';
import type { JsonValue } from '../../core/events/path';
import { formatTime } from '../../core/time';
import type { Catalog } from './catalog';

/** The original contract: `GET /features/{entity_id}`. */
export interface EntityFeatures {
  entity_id: string;
  features: Record<string, JsonValue>;
  /** The newest stored event time among the features (the original used the request time). */
  last_updated: string;
}

/**
 * Every value feature of every group that holds the entity. Names are plain as in the original;
 * a name that two groups share is given as `group:feature` for every group after the first.
 */
export async function readEntity(pool: Pool, catalog: Catalog, entityId: string): Promise<EntityFeatures | undefined> {
  const groups = catalog.all();
  const found = await Promise.all(groups.map((g) => g.readAll.readOne(pool, entityId)));
  const features: Record<string, JsonValue> = {};
  let newest = -Infinity;
  let any = false;
  found.forEach((entity, gi) => {
    if (!entity) return;
    any = true;
    const group = groups[gi]!;
    group.readAll.featureNames.forEach((name, i) => {
      const stored = entity.features[i] ?? null;
      const key = name in features ? `${group.registered.ref.name}:${name}` : name;
      features[key] = stored ? stored.value : null;
      if (stored) newest = Math.max(newest, stored.eventTime.getTime());
    });
  });
  if (!any) return undefined;
  return { entity_id: entityId, features, last_updated: formatTime(Number.isFinite(newest) ? newest : 0) };
}
