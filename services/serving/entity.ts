import type { Pool } from 'pg';
import type { JsonValue } from '../../core/events/path';
import { formatTime } from '../../core/time';
import type { Catalog, ServedGroup } from './catalog';

/** The original contract: `GET /features/{entity_id}`. */
export interface EntityFeatures {
  entity_id: string;
  features: Record<string, JsonValue>;
  /** The newest stored event time among the features (the original used the request time). */
  last_updated: string;
}

/**
 * Every feature that has a value, of every group that holds the entity, under its plain name as in
 * the original (a feature never set is absent, as the original's table had no row for it). Where
 * several groups have a value under one name, the plain name carries the one with the newest event
 * time and each group's own value is also given under its reference (`group:feature` in the default
 * namespace, `namespace/group:feature` elsewhere), so same-named groups of two namespaces both show.
 */
export async function readEntity(pool: Pool, catalog: Catalog, entityId: string): Promise<EntityFeatures | undefined> {
  const groups = catalog.all();
  const found = await Promise.all(groups.map((g) => g.readAll.readOne(pool, entityId)));
  const candidates = new Map<string, { group: ServedGroup; value: JsonValue; time: number }[]>();
  let newest = -Infinity;
  let any = false;
  found.forEach((entity, gi) => {
    if (!entity) return;
    any = true;
    const group = groups[gi]!;
    group.readAll.featureNames.forEach((name, i) => {
      const stored = entity.features[i] ?? null;
      if (stored === null) return;
      const time = stored.eventTime.getTime();
      newest = Math.max(newest, time);
      const list = candidates.get(name) ?? [];
      list.push({ group, value: stored.value, time });
      candidates.set(name, list);
    });
  });
  if (!any) return undefined;
  const features: Record<string, JsonValue> = {};
  for (const [name, list] of candidates) {
    features[name] = list.reduce((a, b) => (b.time > a.time ? b : a)).value;
    if (list.length > 1) for (const c of list) features[`${c.group.group.refName}:${name}`] = c.value;
  }
  return { entity_id: entityId, features, last_updated: formatTime(Number.isFinite(newest) ? newest : 0) };
}
