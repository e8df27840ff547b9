import type { Pool } from 'pg';
import { Gauge, type Registry } from 'prom-client';
import type { CompiledGroup } from '../../core/featuregroup/compiled';
import { groupId, type FeatureType } from '../../core/featuregroup/schema';
import type { Logger } from '../../core/logger';
import { FeatureReader } from '../../core/storage/feature-reader';
import { HistoricalReader } from '../../core/history/reader';
import { listGroups, registryVersion, type RegisteredGroup } from '../../core/storage/registry';

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
  private groups = new Map<string, ServedGroup>();
  private version = '';
  private timer: NodeJS.Timeout | undefined;
  loaded = false;

  private readonly invalidRows: Gauge | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.invalidRows =
      registry &&
      new Gauge({
        name: 'featurestore_registry_invalid_rows',
        help: 'Registry rows this version cannot read (skipped)',
        registers: [registry],
      });
  }

  get(id: string): ServedGroup | undefined {
    return this.groups.get(id);
  }

  all(): ServedGroup[] {
    return [...this.groups.values()];
  }

  async refresh(): Promise<void> {
    const version = await registryVersion(this.pool);
    if (version === this.version && this.loaded) return;
    const next = new Map<string, ServedGroup>();
    const { groups, invalid } = await listGroups(this.pool);
    for (const registered of groups) {
      const previous = this.groups.get(groupId(registered.ref));
      const unchanged = previous && previous.registered.version === registered.version;
      next.set(groupId(registered.ref), unchanged ? previous : serve(registered));
    }
    // A row that cannot be read is skipped, never allowed to stop the others being served.
    for (const row of invalid) this.log.error({ group: groupId(row.ref), reason: row.error }, 'registry row skipped');
    this.invalidRows?.set(invalid.length);
    this.groups = next;
    this.version = version;
    this.loaded = true;
    this.log.info({ groups: next.size }, 'catalog loaded');
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.log.warn({ err: error }, 'registry refresh failed; serving the last catalog'),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
