import type { Pool } from 'pg';
import { Gauge, type Registry } from 'prom-client';

/** The pg pool's connections by state and the queries queued for one, read at each scrape. */
export function registerPoolMetrics(pool: Pool, registry: Registry): void {
  new Gauge({
    name: 'featurestore_db_pool_connections',
    help: 'Postgres pool connections, by state (idle or busy)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'busy' }, pool.totalCount - pool.idleCount);
    },
  });
  new Gauge({
    name: 'featurestore_db_pool_waiting',
    help: 'Queries waiting for a Postgres pool connection',
    registers: [registry],
    collect() {
      this.set(pool.waitingCount);
    },
  });
}
