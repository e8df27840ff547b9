import type { Pool } from 'pg';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger';
import { listGroups, registryVersion, type RegisteredGroup } from './registry';

/**
 * What a component derives from the registry (serving's catalog, ingest's topic routes), kept
 * current without a restart: the registry's fingerprint is polled, and only when it changed are
 * the rows read again and `build` run. A row this version cannot read is skipped and counted,
 * never allowed to stop the others. Refreshes never overlap: a caller that asks while one runs
 * waits for it.
 */
export class RegistryView<T> {
  private version = '';
  private current: T;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastRefreshAt = 0;
  loaded = false;
  private readonly invalidRows: Gauge | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
    private readonly build: (groups: readonly RegisteredGroup[], previous: T) => T,
    initial: T,
    registry?: Registry,
  ) {
    this.current = initial;
    this.invalidRows =
      registry &&
      new Gauge({
        name: 'featurestore_registry_invalid_rows',
        help: 'Registry rows this version cannot read (skipped)',
        registers: [registry],
      });
  }

  get value(): T {
    return this.current;
  }

  /** Milliseconds since the last refresh that reached the database (Infinity before the first). */
  get ageMs(): number {
    return this.lastRefreshAt === 0 ? Infinity : Date.now() - this.lastRefreshAt;
  }

  refresh(): Promise<void> {
    this.running ??= this.load().finally(() => (this.running = undefined));
    return this.running;
  }

  private async load(): Promise<void> {
    const version = await registryVersion(this.pool);
    this.lastRefreshAt = Date.now();
    if (version === this.version && this.loaded) return;
    const { groups, invalid } = await listGroups(this.pool);
    for (const row of invalid) {
      this.log.error({ group: `${row.ref.namespace}/${row.ref.name}`, reason: row.error }, 'registry row skipped');
    }
    this.invalidRows?.set(invalid.length);
    this.current = this.build(groups, this.current);
    this.version = version;
    this.loaded = true;
    this.log.info({ groups: groups.length }, 'registry loaded');
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.log.warn({ err: error }, 'registry refresh failed; keeping the last one'),
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
