import type { Pool } from 'pg';
import type { Registry } from 'prom-client';
import type { CompiledGroup } from '../../core/featuregroup/compiled';
import { groupId, type FeatureType } from '../../core/featuregroup/schema';
import type { Logger } from '../../core/logger';
import { HistoricalReader } from '../../core/history/reader';
import type { RegisteredGroup } from '../../core/storage/registry';
import { RegistryView } from '../../core/storage/registry-view';
import { EntityReader } from './entity';
import { FeatureStatement, type Selection } from '../../core/storage/feature-statement';

interface Served {
  byId: Map<string, ServedGroup>;
  /** Every group at once, for `GET /features/{id}`. */
  entity: EntityReader;
  /** Statements of the feature sets asked for by POST /get-online-features, by their selection. */
  online: Map<string, FeatureStatement>;
}

export interface ServedGroup {
  id: string;
  registered: RegisteredGroup;
  /** The group's compiled spec: features, tables, history, ttl. */
  group: CompiledGroup;
  /** Every served feature: value features and window aggregates. */
  types: Map<string, FeatureType>;
  aggregateNames: Set<string>;
  historical: HistoricalReader;
}

function serve(registered: RegisteredGroup): ServedGroup {
  const { group } = registered;
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
  };
}

/** What can be served, reloaded from the registry when it changes. */
export class Catalog {
  private readonly view: RegistryView<Served>;

  constructor(pool: Pool, log: Logger, registry?: Registry) {
    this.view = new RegistryView(
      pool,
      log,
      servedGroups,
      { byId: new Map(), entity: new EntityReader([]), online: new Map() },
      registry,
    );
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

  /**
   * The one statement that reads these features of these groups for many entities (or, `one`, for
   * a single entity, which Postgres runs cheaper), built once per registry version and selection
   * (at most 1,000 kept).
   */
  onlineStatement(
    selections: readonly { group: ServedGroup; features: readonly string[] }[],
    one: boolean,
  ): FeatureStatement {
    const { online } = this.view.value;
    const key = `${one ? '1' : 'n'} ${selections.map((s) => `${s.group.id}:${s.features.join(',')}`).join(' ')}`;
    let statement = online.get(key);
    if (!statement) {
      if (online.size >= 1_000) online.clear();
      const chosen: Selection[] = selections.map((s) => ({ group: s.group.group, features: s.features }));
      statement = new FeatureStatement(chosen, one);
      online.set(key, statement);
    }
    return statement;
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
  return { byId, entity: new EntityReader([...byId.values()].map((g) => g.group)), online: new Map() };
}
