/**
 * Consumers scale with partitions: replicas of one group share its Kafka consumer group. During a
 * stream of 100,000 events (SCALE_EVENTS) over 8 partitions, a fourth replica is added to three,
 * one is killed with -9 and one stopped with SIGTERM. Rebalances hand partitions over; at every
 * fault the stored state is exactly the oracle over the records below the stored offsets (no
 * offset ran ahead of its data, no batch written twice: the per-entity event counts would show
 * it), and at the end it is the oracle over all of them.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import {
  expectedState,
  generateStream,
  kafkaKeyOf,
  storedState,
  testGroupSpec,
  type Expected,
} from '../support/oracle';
import {
  createTopic,
  dropRegisteredGroups,
  idempotentProducer,
  readTopic,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';
import { recordSoak } from '../support/soak';

const TOTAL = Number(process.env.SCALE_EVENTS ?? 100_000);
const PARTITIONS = 8;

interface Snapshot {
  offsets: Map<number, bigint>;
  state: Map<string, Expected>;
  /** Events counted per entity in the tiles: a batch written twice would count twice. */
  counts: Map<string, number>;
}

describe('scale-out: replicas share partitions exactly', () => {
  const name = uniqueName('scale');
  const topic = `${name}-events`;
  const consumerGroup = `featurestore.default.${name}`;
  const stream = generateStream({ count: TOTAL, entities: 3_000, prefix: `${name}:` });
  let pool: Pool;
  let kafka: Kafka;
  let producer: Producer;
  let table: string;
  const replicas: RunningService[] = [];

  const startReplica = async (): Promise<RunningService> => {
    const replica = await startService(
      'consumer',
      {
        ...serverEnv(),
        FEATURE_GROUP: `default/${name}`,
        CONSUMER_MAX_BYTES_PER_PARTITION: '65536',
        CONSUMER_SESSION_TIMEOUT_MS: '6000',
        CONSUMER_PROGRESS_INTERVAL_MS: '0',
      },
      `${name}-replica-${replicas.length}`,
    );
    replicas.push(replica);
    await replica.waitReady();
    return replica;
  };

  async function snapshot(): Promise<Snapshot> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const offsets = await client.query<{ partition: number; next_offset: string }>(
        'SELECT partition, next_offset FROM featurestore.consumer_offsets WHERE consumer_group = $1',
        [consumerGroup],
      );
      const state = await storedState((sql) => client.query(sql), table);
      const counts = await client.query<{ entity_id: string; n: string }>(
        `SELECT entity_id, sum(events__n) AS n FROM features."${table}__tiles" GROUP BY entity_id`,
      );
      await client.query('COMMIT');
      return {
        offsets: new Map(offsets.rows.map((r) => [r.partition, BigInt(r.next_offset)])),
        state,
        counts: new Map(counts.rows.map((r) => [r.entity_id, Number(r.n)])),
      };
    } finally {
      client.release();
    }
  }

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    await createTopic(kafka, topic, PARTITIONS);
    const spec = testGroupSpec(topic, { batchSize: 200 });
    table = await registerGroup(
      pool,
      { namespace: 'default', name },
      {
        ...spec,
        features: [...spec.features, { name: 'events', type: 'int64', aggregate: { fn: 'count', window: '7d' } }],
      },
    );
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    for (const r of replicas) await r.crash();
    await producer?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('adds, kills and stops replicas mid-stream and ends exact', async () => {
    for (let i = 0; i < 3; i++) await startReplica();
    const producing = (async () => {
      for (let i = 0; i < stream.lines.length; i += 2_000) {
        await producer.send({
          topic,
          acks: -1,
          messages: stream.lines.slice(i, i + 2_000).map((value) => ({ key: kafkaKeyOf(value), value })),
        });
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const stored = () => storedOffsetTotal(pool, consumerGroup);
    const reach = (fraction: number) =>
      eventually(
        async () => ((await stored()) >= TOTAL * fraction ? true : undefined),
        `${fraction * 100}% of the events stored`,
        300_000,
      );
    const snapshots: Snapshot[] = [];

    await reach(0.1);
    await startReplica(); // a fourth member joins: partitions move to it
    snapshots.push(await snapshot());
    await reach(0.35);
    await replicas[0]!.crash(); // kill -9: its partitions move once its session expires
    snapshots.push(await snapshot());
    await reach(0.6);
    expect(await replicas[1]!.stop()).toBe(0); // SIGTERM: drains, commits, leaves the group
    snapshots.push(await snapshot());
    await producing;
    await eventually(
      async () => ((await stored()) === TOTAL ? true : undefined),
      `all ${TOTAL} offsets stored`,
      300_000,
    );
    const final = await snapshot();

    const records = await readTopic(kafka, topic, TOTAL);
    const below = (offsets: Map<number, bigint>): string[] =>
      records.filter((r) => r.offset < (offsets.get(r.partition) ?? 0n)).map((r) => r.value);
    const countsOf = (lines: string[]): Map<string, number> => {
      const counts = new Map<string, number>();
      for (const line of lines) {
        if (stream.invalid.has(line)) continue;
        const id = (JSON.parse(line) as { entity_id: string }).entity_id;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      return counts;
    };
    let mismatched = 0;
    for (const s of [...snapshots, final]) {
      const lines = s === final ? stream.lines : below(s.offsets);
      expect(s.state).toEqual(expectedState(lines, stream.invalid));
      expect(s.counts).toEqual(countsOf(lines));
      mismatched += [...countsOf(lines)].filter(([id, n]) => s.counts.get(id) !== n).length;
    }
    expect(snapshots.some((s) => [...s.offsets.values()].reduce((a, b) => a + b, 0n) < BigInt(TOTAL))).toBe(true);
    // Each replica, the added one too, held partitions at some point.
    for (const r of replicas) {
      const assigned = r.logEntries<{ partitions: number[] }>('partitions assigned').map((entry) => entry.partitions);
      expect(assigned.some((p) => p.length > 0)).toBe(true);
    }
    const survivors = replicas.filter((r) => r.running);
    expect(survivors.length).toBe(2);
    for (const r of survivors) expect(await r.stop()).toBe(0);
    const counted = [...final.counts.values()].reduce((a, b) => a + b, 0);
    const expectedCount = [...countsOf(stream.lines).values()].reduce((a, b) => a + b, 0);
    recordSoak({
      kind: 'fault',
      fault: '3 consumer replicas: one added, one killed -9, one stopped',
      events_sent: TOTAL,
      lost: Math.max(0, expectedCount - counted),
      duplicated: Math.max(0, counted - expectedCount) + mismatched,
      recovered_s: null,
    });
  });
});
