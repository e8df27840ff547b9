import type { Pool } from 'pg';
import { readStoredOffsets } from '../../core/storage/writer';
import type { ConditionInput } from '../conditions';
import { ConditionType, type ReplayStatus } from '../resource';

/** How many records each partition's consumers still have to store to reach the replay's targets. */
export async function replayBehind(
  pool: Pool,
  consumerGroup: string,
  topic: string,
  replay: ReplayStatus,
): Promise<Map<number, number>> {
  const stored = await readStoredOffsets(pool, consumerGroup, topic);
  return new Map(
    replay.targets.map(({ partition, offset }) => [partition, Math.max(0, offset - (stored.get(partition) ?? 0))]),
  );
}

const count = (n: number): string => n.toLocaleString('en-US');

/**
 * Replaying (True while the consumers are behind the high watermarks the topic had when the replay
 * began: Ready waits for it) and Replayed, which flips to False when a replay begins and to True
 * when it has caught up, so each replay id gets its own lastTransitionTime.
 */
export function replayConditions(replay: ReplayStatus, behind: ReadonlyMap<number, number>): ConditionInput[] {
  const total = [...behind.values()].reduce((a, b) => a + b, 0);
  const records = replay.targets.reduce((a, t) => a + t.offset, 0);
  if (total === 0) {
    return [
      {
        type: ConditionType.Replaying,
        status: 'False',
        reason: 'CaughtUp',
        message: `replay ${replay.id} caught up with the offsets the topic had when it began`,
      },
      {
        type: ConditionType.Replayed,
        status: 'True',
        reason: 'Replayed',
        message: `state rebuilt ${replay.description}, epoch ${replay.epoch}; caught up with ${count(records)} records`,
      },
    ];
  }
  const partitions = [...behind]
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a - b)
    .map(([p, n]) => `partition ${p}: ${count(n)}`)
    .join(', ');
  return [
    {
      type: ConditionType.Replaying,
      status: 'True',
      reason: 'Replaying',
      message: `${count(total)} records behind the offsets the topic had when replay ${replay.id} began (${partitions})`,
    },
    {
      type: ConditionType.Replayed,
      status: 'False',
      reason: 'Replaying',
      message: `rebuilding state ${replay.description}, epoch ${replay.epoch}`,
    },
  ];
}
