import type { Pool } from 'pg';
import type { CompiledGroup } from '../featuregroup/compiled';
import { consumerGroupFor } from '../kafka';
import { PLATFORM_SCHEMA, qualified } from './identifiers';
import { withTransaction } from './transaction';

/** Annotations that ask the operator to rebuild a group's state from Kafka. */
export const REPLAY_FROM_ANNOTATION = 'featurestore.dev/replay-from';
export const REPLAY_ID_ANNOTATION = 'featurestore.dev/replay-id';

export interface ReplayRequest {
  /** `earliest`, or the epoch ms of a record timestamp to start from. */
  from: 'earliest' | number;
  /** What was asked, as recorded once carried out: the same request is never run twice. */
  token: string;
}

/**
 * Reads a replay request from a FeatureGroup's annotations: `replay-from: earliest` or an ISO-8601
 * time, with an optional `replay-id` so the same `from` can be asked for again.
 */
export function replayRequestOf(
  annotations: Record<string, string> | undefined,
): ReplayRequest | { error: string } | undefined {
  const from = annotations?.[REPLAY_FROM_ANNOTATION]?.trim();
  if (!from) return undefined;
  const id = annotations?.[REPLAY_ID_ANNOTATION]?.trim() ?? '';
  const token = id ? `${from}#${id}` : from;
  if (from === 'earliest') return { from, token };
  const ms = Date.parse(from);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(from) || Number.isNaN(ms))
    return {
      error: `${REPLAY_FROM_ANNOTATION} must be "earliest" or an ISO-8601 time, got ${JSON.stringify(from.slice(0, 64))}`,
    };
  return { from: ms, token };
}

/**
 * Rebuilds a group from Kafka: empties its values, tiles and history, sets each partition's
 * offset to where the replay starts, and bumps the replay epoch, in one transaction. Locks are
 * taken in the consumers' order (offset rows, then the registry row) so a batch in flight either
 * commits before (and is wiped) or is fenced after; nothing is counted twice or half. A request
 * whose token the registry already holds was carried out: checked under the registry row's lock,
 * so two operators (an old leader and a new one) never run the same request twice.
 */
export async function replayGroup(
  pool: Pool,
  group: CompiledGroup,
  startOffsets: ReadonlyMap<number, number>,
  token: string,
): Promise<{ epoch: number; replayed: boolean }> {
  const { ref, spec } = group;
  const consumerGroup = consumerGroupFor(ref);
  const offsets = qualified(PLATFORM_SCHEMA, 'consumer_offsets');
  return withTransaction(pool, async (client) => {
    await client.query(`SELECT 1 FROM ${offsets} WHERE consumer_group = $1 ORDER BY partition FOR UPDATE`, [
      consumerGroup,
    ]);
    const row = await client.query<{ replay_epoch: string; replay_token: string | null }>(
      `SELECT replay_epoch, replay_token FROM ${qualified(PLATFORM_SCHEMA, 'feature_groups')} WHERE namespace = $1 AND name = $2 FOR UPDATE`,
      [ref.namespace, ref.name],
    );
    if (!row.rows[0]) throw new Error(`feature group ${ref.namespace}/${ref.name} is not registered`);
    if (row.rows[0].replay_token === token) return { epoch: Number(row.rows[0].replay_epoch), replayed: false };
    await client.query(`TRUNCATE ${group.ownedTables.map((t) => t.sql).join(', ')}`);
    await client.query(`DELETE FROM ${offsets} WHERE consumer_group = $1`, [consumerGroup]);
    const partitions = [...startOffsets.keys()];
    await client.query(
      `INSERT INTO ${offsets} (consumer_group, topic, partition, next_offset) SELECT $1, $2, p, o FROM unnest($3::int[], $4::bigint[]) AS u(p, o)`,
      [consumerGroup, spec.source.topic, partitions, partitions.map((p) => startOffsets.get(p)!)],
    );
    const epoch = Number(row.rows[0].replay_epoch) + 1;
    await client.query(
      `UPDATE ${qualified(PLATFORM_SCHEMA, 'feature_groups')} SET replay_epoch = $3, replay_token = $4, updated_at = now() WHERE namespace = $1 AND name = $2`,
      [ref.namespace, ref.name, epoch, token],
    );
    return { epoch, replayed: true };
  });
}
