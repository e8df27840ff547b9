import type { Pool } from 'pg';
import type { Registry } from 'prom-client';
import type { CompiledGroup } from '../../core/featuregroup/compiled';
import { groupId, type FeatureType } from '../../core/featuregroup/schema';
import type { Logger } from '../../core/logger';
import { FeatureReader } from '../../core/storage/feature-reader';
import { HistoricalReader } from '../../core/history/reader';
import type { RegisteredGroup } from '../../core/storage/registry';
import { RegistryView } from '../../core/storage/registry-view';
import { EntityReader } from './entity';

interface Served {
  byId: Map<string, ServedGroup>;
  /** Every group at once, for `GET /features/{id}`. */
  entity: EntityReader;
}

export interface ServedGroup {
  id: string;
  registered: RegisteredGroup;
  /** The group's compiled spec: features, tables, history, ttl. */
  group: CompiledGroup;
  /** Every served feature: value features and window aggregates. */
  types: Map<string, FeatureType>;
  readerFor(features: readonly string[]): FeatureReader;
  aggregateNames: Set<string>;
  historical: HistoricalReader;
}

function serve(registered: RegisteredGroup): ServedGroup {
  const { group } = registered;
  const readers = new Map<string, FeatureReader>();
  return {
    id: group.id,
    registered,
    group,
    types: new Map([
      ...group.values.map((f) => [f.name, f.type] as const),
      ...group.aggregates.map((a) => [a.name, a.type] as const),
    ]),
    aggregateNames: new Set(group.aggregates.map((a) => a.name)),
    historical: new HistoricalReader(group),
    readerFor(features) {
      const key = features.join(',');
      let reader = readers.get(key);
      if (!reader) {
        if (readers.size > 1_000) readers.clear();
        reader = new FeatureReader(group, features);
        readers.set(key, reader);
      }
      return reader;
    },
  };
}

/** What can be served, reloaded from the registry when it changes. */
export class Catalog {
  private readonly view: RegistryView<Served>;

  constructor(pool: Pool, log: Logger, registry?: Registry) {
    this.view = new RegistryView(pool, log, servedGroups, { byId: new Map(), entity: new EntityReader([]) }, registry);
  }

  get loaded(): boolean {
    return this.view.loaded;
  }

  get(id: string): ServedGroup | undefined {
    return this.view.value.byId.get(id);
  }

  all(): ServedGroup[] {
    return [...this.view.value.byId.values()];
  }

  /** Reads an entity's features from every group in one statement (rebuilt when the registry changes). */
  get entity(): EntityReader {
    return this.view.value.entity;
  }

  refresh(): Promise<void> {
    return this.view.refresh();
  }

  start(intervalMs: number): void {
    this.view.start(intervalMs);
  }

  stop(): void {
    this.view.stop();
  }
}

/** A group whose registry row is unchanged keeps its readers (and their prepared statements). */
function servedGroups(groups: readonly RegisteredGroup[], previous: Served): Served {
  const byId = new Map<string, ServedGroup>();
  for (const registered of groups) {
    const id = groupId(registered.ref);
    const kept = previous.byId.get(id);
    byId.set(id, kept && kept.registered.version === registered.version ? kept : serve(registered));
  }
  return { byId, entity: new EntityReader([...byId.values()].map((g) => g.group)) };
}
