import type { Pool } from 'pg';
import type { Registry } from 'prom-client';
import type { CompiledGroup } from '../../core/featuregroup/compiled';
import { groupId, type FeatureType } from '../../core/featuregroup/schema';
import type { Logger } from '../../core/logger';
import { FeatureReader } from '../../core/storage/feature-reader';
import { HistoricalReader } from '../../core/history/reader';
import type { RegisteredGroup } from '../../core/storage/registry';
import { RegistryView } from '../../core/storage/registry-view';

export interface ServedGroup {
  id: string;
  registered: RegisteredGroup;
  /** The group's compiled spec: features, tables, history, ttl. */
  group: CompiledGroup;
  /** Every served feature: value features and window aggregates. */
  types: Map<string, FeatureType>;
  /** Reader of every feature, for `GET /features/{id}`. */
  readAll: FeatureReader;
  readerFor(features: readonly string[]): FeatureReader;
  aggregateNames: Set<string>;
  historical: HistoricalReader;
}

function serve(registered: RegisteredGroup): ServedGroup {
  const { group } = registered;
  const readers = new Map<string, FeatureReader>();
  const all = [...group.values.map((f) => f.name), ...group.aggregates.map((a) => a.name)];
  return {
    id: group.id,
    registered,
    group,
    types: new Map([
      ...group.values.map((f) => [f.name, f.type] as const),
      ...group.aggregates.map((a) => [a.name, a.type] as const),
    ]),
    readAll: new FeatureReader(group, all),
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
  private readonly view: RegistryView<Map<string, ServedGroup>>;

  constructor(pool: Pool, log: Logger, registry?: Registry) {
    this.view = new RegistryView(pool, log, servedGroups, new Map<string, ServedGroup>(), registry);
  }

  get loaded(): boolean {
    return this.view.loaded;
  }

  get(id: string): ServedGroup | undefined {
    return this.view.value.get(id);
  }

  all(): ServedGroup[] {
    return [...this.view.value.values()];
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
function servedGroups(
  groups: readonly RegisteredGroup[],
  previous: Map<string, ServedGroup>,
): Map<string, ServedGroup> {
  const next = new Map<string, ServedGroup>();
  for (const registered of groups) {
    const id = groupId(registered.ref);
    const kept = previous.get(id);
    next.set(id, kept && kept.registered.version === registered.version ? kept : serve(registered));
  }
  return next;
}
