/**
 * One batch's transaction, driven directly against Postgres: what it stores, how many round trips
 * it takes, and the replay fence, including a replay that commits while the batch waits for its
 * offset row (the batch must then see the new epoch and write nothing).
 */
import type { Pool, PoolClient } from 'pg';
import { compileGroup, type CompiledGroup } from '../../core/featuregroup/compiled';
import { featureGroupSpecSchema } from '../../core/featuregroup/schema';
import type { OffsetEvent } from '../../core/events/extract';
import { FencedError, GroupWriter, type PartitionBatch } from '../../core/storage/writer';
import { testGroupSpec } from '../support/oracle';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { eventually } from '../support/services';

describe('a batch write', () => {
  const name = uniqueName('batch');
  const ref = { namespace: 'default', name };
  const consumerGroup = `featurestore.default.${name}`;
  let pool: Pool;
  let group: CompiledGroup;
  const spec = testGroupSpec(`${name}-events`);

  beforeAll(async () => {
    pool = testPool();
    await registerGroup(pool, ref, spec);
    group = compileGroup(ref, featureGroupSpecSchema.parse(spec));
  });

  afterAll(async () => {
    await dropRegisteredGroups(pool);
    await pool.end();
  });

  let nextOffset = 0;
  /** A batch of `n` events for partition 0, continuing where the last one ended. */
  const batch = (n: number, label: string): PartitionBatch => {
    const from = nextOffset;
    const events: OffsetEvent[] = Array.from({ length: n }, (_, i) => ({
      offset: from + i,
      event: {
        entityId: `u${(from + i) % 3}`,
        eventTimeMs: 1_700_000_000_000 + from + i,
        values: [`${label}-${from + i}`, (from + i) / 4],
        contributions: [],
      },
    }));
    return { consumerGroup, topic: spec.source.topic, partition: 0, fetchedFrom: from, nextOffset: from + n, events };
  };
  const written = (b: PartitionBatch) => {
    nextOffset = b.nextOffset;
  };

  const epoch = async () =>
    Number(
      (
        await pool.query<{ replay_epoch: string }>(
          'SELECT replay_epoch FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2',
          [ref.namespace, ref.name],
        )
      ).rows[0]!.replay_epoch,
    );
  const storedOffset = async () =>
    Number(
      (
        await pool.query<{ next_offset: string }>(
          'SELECT next_offset FROM featurestore.consumer_offsets WHERE consumer_group = $1 AND partition = 0',
          [consumerGroup],
        )
      ).rows[0]?.next_offset ?? -1,
    );
  const rows = async () =>
    (
      await pool.query<{ entity_id: string; last_action: string; last_amount: number }>(
        `SELECT entity_id, last_action, last_amount FROM ${group.tables.values.sql} ORDER BY entity_id`,
      )
    ).rows;
  const writer = (at: number) => new GroupWriter(group, undefined, undefined, { ...ref, epoch: at });
  const noDeadLetters = async () => {
    throw new Error('nothing should be dead-lettered');
  };

  /** Every statement the writer sends on the connections it takes from `pool`. */
  const countingStatements = (): { pool: Pool; sent: string[] } => {
    const sent: string[] = [];
    const counted = Object.create(pool) as Pool;
    counted.connect = (async () => {
      const client = await pool.connect();
      const query = client.query.bind(client) as (config: unknown) => Promise<unknown>;
      const proxy = Object.create(client) as PoolClient;
      (proxy as unknown as { query: (config: unknown) => Promise<unknown> }).query = (config: unknown) => {
        sent.push(typeof config === 'string' ? config : (config as { text: string }).text.split(/\s/)[0]!);
        return query(config);
      };
      proxy.release = (error?: Error | boolean) => client.release(error);
      return proxy;
    }) as Pool['connect'];
    return { pool: counted, sent };
  };

  it('stores the newest value per entity and the next offset in four round trips', async () => {
    const first = batch(7, 'a');
    const { pool: counted, sent } = countingStatements();
    const outcome = await writer(await epoch()).write(counted, first, noDeadLetters);
    written(first);
    expect(outcome).toEqual({ applied: 7, replayed: 0, rejected: [] });
    expect(sent).toEqual(['BEGIN', 'INSERT', 'WITH', 'COMMIT']);
    expect(await storedOffset()).toBe(7);
    // Offsets 0..6 over entities u0,u1,u2: the newest of each is the last offset ≡ its index mod 3.
    expect(await rows()).toEqual([
      { entity_id: 'u0', last_action: 'a-6', last_amount: 1.5 },
      { entity_id: 'u1', last_action: 'a-4', last_amount: 1 },
      { entity_id: 'u2', last_action: 'a-5', last_amount: 1.25 },
    ]);
  });

  it('writes nothing once the group was replayed, and says so', async () => {
    const before = await rows();
    const current = await epoch();
    await pool.query(
      'UPDATE featurestore.feature_groups SET replay_epoch = replay_epoch + 1 WHERE namespace = $1 AND name = $2',
      [ref.namespace, ref.name],
    );
    await expect(writer(current).write(pool, batch(3, 'stale'), noDeadLetters)).rejects.toThrow(
      new FencedError(`the feature group was replayed (epoch ${current} → ${current + 1})`),
    );
    expect(await rows()).toEqual(before);
    expect(await storedOffset()).toBe(7);
  });

  it('sees a replay that commits while the batch waits for its offset row', async () => {
    const before = await rows();
    const current = await epoch();
    // The replay's order: lock the group's offset rows, then move the epoch, then commit.
    const replay = await pool.connect();
    try {
      await replay.query('BEGIN');
      await replay.query('SELECT 1 FROM featurestore.consumer_offsets WHERE consumer_group = $1 FOR UPDATE', [
        consumerGroup,
      ]);
      await replay.query(
        'UPDATE featurestore.feature_groups SET replay_epoch = replay_epoch + 1 WHERE namespace = $1 AND name = $2',
        [ref.namespace, ref.name],
      );
      const pending = writer(current).write(pool, batch(3, 'raced'), noDeadLetters);
      const settled = pending.then(
        () => 'written',
        (error: unknown) => error,
      );
      await eventually(
        async () =>
          Number(
            (
              await pool.query<{ n: string }>(
                `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%consumer_offsets%'`,
              )
            ).rows[0]!.n,
          ) > 0 || undefined,
        'the batch to wait for the offset row',
        30_000,
      );
      await replay.query('COMMIT');
      expect(await settled).toBeInstanceOf(FencedError);
    } finally {
      replay.release();
    }
    expect(await rows()).toEqual(before);
    expect(await storedOffset()).toBe(7);
  });

  it('goes on at the current epoch', async () => {
    const next = batch(2, 'b');
    const outcome = await writer(await epoch()).write(pool, next, noDeadLetters);
    written(next);
    expect(outcome.applied).toBe(2);
    expect(await storedOffset()).toBe(9);
    expect((await rows()).map((r) => r.last_action)).toEqual(['a-6', 'b-7', 'b-8']);
  });

  it('refuses a group that is no longer registered', async () => {
    await pool.query('DELETE FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2', [
      ref.namespace,
      ref.name,
    ]);
    await expect(writer(0).write(pool, batch(1, 'gone'), noDeadLetters)).rejects.toThrow(
      'the feature group is no longer registered',
    );
    expect(await storedOffset()).toBe(9);
  });
});
