import type { Pool } from 'pg';
import { aggregateFeatures } from '../../core/aggregates/tiles';
import { applyRetention, retentionCutoffs } from '../../core/history/retention';
import { historyEnabled } from '../../core/history/store';
import type { Logger } from '../../core/logger';
import { tableNameFor } from '../../core/storage/identifiers';
import type { RegisteredGroup } from '../../core/storage/registry';

/**
 * Deletes expired tiles and history every `intervalMs`, in small batches beside the writes (never
 * inside a batch's transaction). Several replicas may run it at once: deleting twice is harmless.
 */
export function startRetention(pool: Pool, group: RegisteredGroup, intervalMs: number, log: Logger): () => void {
  const aggregates = aggregateFeatures(group.spec);
  if (intervalMs === 0 || (aggregates.length === 0 && !historyEnabled(group.spec))) return () => undefined;
  const table = tableNameFor(group.ref);
  let running = false;
  const sweep = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      const removed = await applyRetention(pool, table, retentionCutoffs(group.spec, aggregates, Date.now()));
      if (removed.tiles + removed.history > 0) log.info(removed, 'expired tiles and history removed');
    } catch (error) {
      log.warn({ err: error }, 'retention sweep failed; next one will retry');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
