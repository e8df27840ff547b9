import type { Pool } from 'pg';
import type { CompiledGroup } from '../../core/featuregroup/compiled';
import type { JsonValue } from '../../core/events/path';
import { FeatureStatement, type FeatureColumns } from '../../core/storage/feature-statement';
import { formatTime } from '../../core/time';

/** The original contract: `GET /features/{entity_id}`. */
export interface EntityFeatures {
  entity_id: string;
  features: Record<string, JsonValue>;
  /** The newest stored event time among the features (the original used the request time). */
  last_updated: string;
}

interface Source extends FeatureColumns {
  /** `group:feature` (default namespace) or `namespace/group:feature`. */
  ref: string;
}

/**
 * Every feature that has a value, of every group that holds the entity, under its plain name as in
 * the original (a feature never set is absent, as the original's table had no row for it). Where
 * several groups have a value under one name, the plain name carries the one with the newest event
 * time and each group's own value is also given under its reference (`group:feature` in the default
 * namespace, `namespace/group:feature` elsewhere), so same-named groups of two namespaces both show.
 *
 * Built once per registry change: one statement reads every group, and each response name knows
 * in advance which groups' columns can fill it.
 */
export class EntityReader {
  private readonly statement: FeatureStatement;
  /** Response names in first-declared order, each with the groups' columns that serve it. */
  private readonly names: [string, Source[]][];

  constructor(groups: readonly CompiledGroup[]) {
    this.statement = new FeatureStatement(
      groups.map((group) => ({ group })),
      true,
    );
    const byName = new Map<string, Source[]>();
    for (const { group, features } of this.statement.groups) {
      for (const f of features) {
        const list = byName.get(f.name) ?? [];
        list.push({ ...f, ref: `${group.refName}:${f.name}` });
        byName.set(f.name, list);
      }
    }
    this.names = [...byName];
  }

  async read(pool: Pool, entityId: string, atMs = Date.now()): Promise<EntityFeatures | undefined> {
    const row = (await this.statement.read(pool, [entityId], atMs)).get(entityId);
    if (!row) return undefined;
    let any = this.statement.holdsRow(row);
    let newest = -Infinity;
    const features: Record<string, JsonValue> = {};
    for (const [name, sources] of this.names) {
      if (sources.length === 1) {
        const source = sources[0]!;
        const ms = source.eventMs(row);
        if (ms === null) continue;
        features[name] = source.value(row);
        if (ms > newest) newest = ms;
        continue;
      }
      let best: Source | undefined;
      let bestMs = -Infinity;
      let present = 0;
      for (const source of sources) {
        const ms = source.eventMs(row);
        if (ms === null) continue;
        present++;
        if (best === undefined || ms > bestMs) [best, bestMs] = [source, ms];
      }
      if (!best) continue;
      features[name] = best.value(row);
      if (bestMs > newest) newest = bestMs;
      if (present > 1)
        for (const source of sources) if (source.eventMs(row) !== null) features[source.ref] = source.value(row);
    }
    any ||= newest > -Infinity;
    if (!any) return undefined;
    return { entity_id: entityId, features, last_updated: formatTime(Number.isFinite(newest) ? newest : 0) };
  }
}
