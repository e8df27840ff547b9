import type { Pool } from 'pg';
import type { CompiledGroup } from '../../core/featuregroup/compiled';
import { applyRetention, retentionCutoffs } from '../../core/history/retention';
import type { Logger } from '../../core/logger';

/**
 * Deletes expired tiles and history every `intervalMs`, in small batches beside the writes (never
 * inside a batch's transaction). Several replicas may run it at once: deleting twice is harmless.
 */
export function startRetention(pool: Pool, group: CompiledGroup, intervalMs: number, log: Logger): () => void {
  if (intervalMs === 0 || (group.aggregates.length === 0 && !group.history.enabled)) return () => undefined;
  let running = false;
  const sweep = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      const removed = await applyRetention(pool, group, retentionCutoffs(group, Date.now()));
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
