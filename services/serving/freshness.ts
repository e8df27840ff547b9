import type { Pool } from 'pg';
import { consumerGroupFor } from '../../core/kafka';
import { readPartitionProgress } from '../../core/storage/progress';
import { formatTime } from '../../core/time';
import type { ServedGroup } from './catalog';

export interface Freshness {
  /** The newest event time stored over all partitions; null before the first. */
  newestEventTime: string | null;
  /** How old that event is at the time of the request, in seconds. */
  newestEventAgeSeconds: number | null;
  /** When a batch was last stored. */
  lastStoredAt: string | null;
  partitions: {
    partition: number;
    nextOffset: number;
    newestEventTime: string | null;
    storedAt: string;
    lastError: string | null;
  }[];
}

/** How fresh a group's data is, from what its consumers stored with their offsets. */
export async function freshnessOf(pool: Pool, group: ServedGroup, nowMs = Date.now()): Promise<Freshness> {
  const progress = await readPartitionProgress(
    pool,
    consumerGroupFor(group.registered.ref),
    group.registered.spec.source.topic,
  );
  let newest: number | undefined;
  let stored: number | undefined;
  const partitions: Freshness['partitions'] = [];
  for (const p of progress.values()) {
    if (p.newestEventMs !== undefined) newest = Math.max(newest ?? -Infinity, p.newestEventMs);
    stored = Math.max(stored ?? -Infinity, p.updatedAt.getTime());
    partitions.push({
      partition: p.partition,
      nextOffset: p.nextOffset,
      newestEventTime: p.newestEventMs === undefined ? null : formatTime(p.newestEventMs),
      storedAt: formatTime(p.updatedAt),
      lastError: p.lastError ?? null,
    });
  }
  return {
    newestEventTime: newest === undefined ? null : formatTime(newest),
    newestEventAgeSeconds: newest === undefined ? null : Math.max(0, (nowMs - newest) / 1000),
    lastStoredAt: stored === undefined ? null : formatTime(stored),
    partitions,
  };
}
