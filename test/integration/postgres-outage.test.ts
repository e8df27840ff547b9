/**
 * Postgres goes away for ~5 s mid-stream, crashes under the consumer's asynchronous commits, or
 * stops answering (SIGSTOP) for longer than the statement timeout: the consumer retries with
 * backoff, commits nothing for the failed batches, stays up, and ends with the exact state.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { divergence, expectedState, generateStream, kafkaKeyOf, storedState, testGroupSpec } from '../support/oracle';
import {
  createTopic,
  dropRegisteredGroups,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
  idempotentProducer,
} from '../support/platform';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';
import { recordSoak } from '../support/soak';

const postgresScript = join(__dirname, '..', 'servers', 'postgres.sh');

/**
 * A group on its own topic with a 20,000-event stream, torn down after its describe; `restore`
 * brings Postgres back first whatever the test did to it. The servers must be make test's own.
 */
function streamedGroup(prefix: string, restore: () => void) {
  const name = uniqueName(prefix);
  const topic = `${name}-events`;
  const group = {
    name,
    stream: generateStream({ count: 20_000, entities: 500, prefix: `${name}:` }),
    pool: undefined as unknown as Pool,
    producer: undefined as unknown as Producer,
    table: '',
    send: (lines: string[]) =>
      group.producer.send({ topic, acks: -1, messages: lines.map((value) => ({ key: kafkaKeyOf(value), value })) }),
    storedOffsets: () => storedOffsetTotal(group.pool, `featurestore.default.${name}`),
    /**
     * Waits until every offset is stored with the consumer still running, then records the
     * fault's soak row, counted from the table against the oracle, and asserts the state exact.
     */
    endsExact: async (consumer: RunningService, fault: string, recoveringSince: number): Promise<void> => {
      await eventually(async () => {
        if (!consumer.running) throw new Error(`the consumer exited:\n${consumer.tail(20)}`);
        return (await group.storedOffsets()) === group.stream.lines.length ? true : undefined;
      }, `all offsets after: ${fault}`);
      const recoveredSeconds = (Date.now() - recoveringSince) / 1000;
      const [state, expected] = [
        await storedState((sql) => group.pool.query(sql), group.table),
        expectedState(group.stream.lines, group.stream.invalid),
      ];
      recordSoak({
        kind: 'fault',
        fault,
        events_sent: group.stream.lines.length,
        ...divergence(state, expected),
        recovered_s: Number(recoveredSeconds.toFixed(1)),
      });
      expect(state).toEqual(expected);
    },
  };
  beforeAll(async () => {
    if (process.env.FS_TEST_STARTED_SERVERS !== '1') {
      throw new Error(
        'this test stops or pauses Postgres: run it against the servers make test starts, not an external DATABASE_URL',
      );
    }
    group.pool = testPool();
    const kafka = testKafka();
    await createTopic(kafka, topic, 2);
    group.table = await registerGroup(
      group.pool,
      { namespace: 'default', name },
      testGroupSpec(topic, { batchSize: 500 }),
    );
    group.producer = await idempotentProducer(kafka);
  });
  afterAll(async () => {
    restore();
    await group.producer?.disconnect();
    if (group.pool) await dropRegisteredGroups(group.pool);
    await group.pool?.end();
  });
  return group;
}

describe('Postgres outage', () => {
  const g = streamedGroup('pgdown', () => execFileSync('bash', [postgresScript, 'start'], { stdio: 'inherit' }));

  it('retries through the outage and ends exact', async () => {
    const consumer = await startService(
      'consumer',
      {
        ...serverEnv(),
        FEATURE_GROUP: `default/${g.name}`,
        CONSUMER_MAX_BYTES_PER_PARTITION: '65536',
        CONSUMER_SESSION_TIMEOUT_MS: '6000',
      },
      `${g.name}-consumer`,
    );
    try {
      await consumer.waitReady();
      await g.send(g.stream.lines.slice(0, 5_000));
      execFileSync('bash', [postgresScript, 'stop'], { stdio: 'inherit' });
      const downAt = Date.now();
      await g.send(g.stream.lines.slice(5_000, 15_000));
      await new Promise((r) => setTimeout(r, Math.max(0, 5_000 - (Date.now() - downAt))));
      const retriesDuringOutage = await consumer.metric('featurestore_consumer_retries_total');
      execFileSync('bash', [postgresScript, 'start'], { stdio: 'inherit' });
      const backAt = Date.now();
      await g.send(g.stream.lines.slice(15_000));
      expect(retriesDuringOutage).toBeGreaterThan(0);
      await g.endsExact(consumer, 'Postgres stopped and restarted', backAt);
      expect(await consumer.stop()).toBe(0);
    } finally {
      await consumer.stop();
    }
  });
});

describe('Postgres crash (immediate shutdown) under asynchronous commits', () => {
  const g = streamedGroup('pgcrash', () => execFileSync('bash', [postgresScript, 'start'], { stdio: 'inherit' }));

  it('loses no event: what the crash took, offsets included, is written again from Kafka', async () => {
    const consumer = await startService(
      'consumer',
      {
        ...serverEnv(),
        FEATURE_GROUP: `default/${g.name}`,
        CONSUMER_SYNCHRONOUS_COMMIT: 'off',
        CONSUMER_MAX_BYTES_PER_PARTITION: '16384',
        CONSUMER_SESSION_TIMEOUT_MS: '6000',
      },
      `${g.name}-consumer`,
    );
    try {
      await consumer.waitReady();
      await g.send(g.stream.lines.slice(0, 12_000));
      // Mid-stream: some batches committed, more arriving, the newest of them not yet flushed.
      await eventually(async () => ((await g.storedOffsets()) > 2_000 ? true : undefined), 'the first batches');
      // The consumer is frozen around the crash, so that what Postgres kept can be read before it
      // writes again: commits seen before the crash but gone after it were not yet flushed.
      process.kill(consumer.proc.pid!, 'SIGSTOP');
      let seenBeforeCrash: number;
      let keptByCrash: number;
      try {
        seenBeforeCrash = await g.storedOffsets();
        execFileSync('bash', [postgresScript, 'crash'], { stdio: 'inherit' });
        execFileSync('bash', [postgresScript, 'start'], { stdio: 'inherit' });
        // (The test's own idle connections died with the server: the first query may fail.)
        keptByCrash = await eventually(() => g.storedOffsets(), 'Postgres back after the crash', 30_000);
      } finally {
        process.kill(consumer.proc.pid!, 'SIGCONT');
      }
      const crashedAt = Date.now();
      await g.send(g.stream.lines.slice(12_000));
      // (endsExact fails if the consumer exits: a checked-out connection that died used to end it
      // with an unhandled 'error'.)
      expect(keptByCrash).toBeLessThanOrEqual(seenBeforeCrash);
      await g.endsExact(
        consumer,
        `Postgres crashed, async commit (${seenBeforeCrash - keptByCrash} of ${seenBeforeCrash} offsets undone)`,
        crashedAt,
      );
    } finally {
      await consumer.stop();
    }
  });
});

describe('Postgres paused (SIGSTOP) past the statement timeout', () => {
  /** Every process of the cluster: the postmaster would not stop its backends for us. */
  const signalCluster = (signal: 'STOP' | 'CONT'): void => {
    const pid = execFileSync('bash', [postgresScript, 'pid'], { encoding: 'utf8' }).trim();
    execFileSync('bash', ['-c', `kill -${signal} ${pid}; pkill -${signal} -P ${pid} || true`]);
  };
  const g = streamedGroup('pgstop', () => signalCluster('CONT'));

  it('abandons the stuck batches, retries after the pause and ends exact', async () => {
    const consumer = await startService(
      'consumer',
      {
        ...serverEnv(),
        FEATURE_GROUP: `default/${g.name}`,
        DB_STATEMENT_TIMEOUT_MS: '1000',
        CONSUMER_SESSION_TIMEOUT_MS: '30000',
      },
      `${g.name}-consumer`,
    );
    try {
      await consumer.waitReady();
      await g.send(g.stream.lines.slice(0, 5_000));
      await eventually(async () => ((await g.storedOffsets()) > 0 ? true : undefined), 'the first batches');
      // The database stops answering for 8 s while the rest streams in: the consumer's writes hang
      // until the client gives up on them (statement timeout 1 s + 5 s), then retry.
      signalCluster('STOP');
      let resumedAt = 0;
      try {
        await g.send(g.stream.lines.slice(5_000));
        await new Promise((r) => setTimeout(r, 8_000));
      } finally {
        signalCluster('CONT');
        resumedAt = Date.now();
      }
      expect(await consumer.metric('featurestore_consumer_retries_total')).toBeGreaterThan(0);
      await g.endsExact(consumer, 'Postgres paused (SIGSTOP) 8 s, statement timeout 1 s', resumedAt);
    } finally {
      await consumer.stop();
    }
  });
});
