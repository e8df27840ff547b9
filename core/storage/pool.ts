import { Pool, type PoolConfig } from 'pg';
import type { Logger } from '../logger';

/**
 * A Postgres pool whose dead connections are logged, never fatal. A connection that dies (a
 * restart, a crash, a network cut) emits 'error' on its client, and an 'error' with no listener
 * ends the process. pg's pool listens on idle clients only; a client checked out between two
 * queries of a transaction has none, so each connection gets its own listener as it opens. The
 * query in flight, or the next one, then fails by itself and the caller's retry takes over.
 */
export function createPool(config: PoolConfig, log: Logger): Pool {
  const pool = new Pool(config);
  pool.on('connect', (client) => {
    client.on('error', (error) => log.warn({ err: error }, 'postgres connection failed'));
  });
  // The same error, of an idle client: logged by the client's own listener above.
  pool.on('error', () => undefined);
  return pool;
}
