/**
 * Faults, the fast subset (`make soak` runs the long ones): load beyond a process's in-flight limit
 * is shed with 503 + Retry-After while its probes keep answering, and overload held for
 * LOAD_SECONDS leaves both services up within their memory bound; under a Kafka broker outage the
 * ingest API answers 503 + Retry-After and never accepts an event it could not hand to Kafka.
 */
import { execFileSync } from 'node:child_process';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { ConfigResourceTypes } from 'kafkajs';
import type { Pool } from 'pg';
import { closedLoop } from '../../bench/load';
import { divergence, expectedState, generateStream, kafkaKeyOf, storedState, testGroupSpec } from '../support/oracle';
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
import { eventually, type RunningService, serverEnv, startService } from '../support/services';
import { rawRequest } from '../support/http';
import { recordSoak } from '../support/soak';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
}

async function call(port: number, agent: Agent, method: string, path: string, body?: string): Promise<Answer> {
  try {
    const answer = await rawRequest(
      port,
      method,
      path,
      body === undefined ? {} : { 'content-type': 'application/json' },
      body,
      agent,
    );
    let code: string | undefined;
    try {
      code = (JSON.parse(answer.body) as { code?: string }).code;
    } catch {
      code = undefined;
    }
    const retryAfter = answer.headers['retry-after'];
    return { status: answer.status, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined, code };
  } catch {
    return { status: 0, retryAfter: undefined, code: undefined };
  }
}

const kafkaScript = join(__dirname, '../servers/kafka.sh');
/** How long overload is held: a few seconds in `make test`, a minute in `make soak`. */
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 5);
/** Resident memory a service may reach while shedding load. */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;

describe('faults (fast subset)', () => {
  const name = uniqueName('fault');
  const topic = `${name}-events`;
  let pool: Pool;
  const services: RunningService[] = [];

  beforeAll(async () => {
    pool = testPool();
    await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic));
    await createTopic(testKafka(), topic, 2);
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('sheds load past the in-flight limit with 503 + Retry-After, and keeps answering probes', async () => {
    const env = { ...serverEnv(), HTTP_MAX_IN_FLIGHT: '4' };
    const serving = await startService('serving', env, `${name}-serving`);
    services.push(serving);
    await serving.waitReady();
    const agent = new Agent({ keepAlive: true, maxSockets: 400 });
    const burst = Array.from({ length: 400 }, (_, i) => call(serving.port, agent, 'GET', `/features/user_${i}`));
    const probe = call(serving.port, new Agent(), 'GET', '/healthz');
    const answers = await Promise.all(burst);
    expect((await probe).status).toBe(200);
    const shed = answers.filter((a) => a.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    expect(shed.every((a) => a.retryAfter === '1' && a.code === 'E_OVERLOADED')).toBe(true);
    // Everything else was answered (200, or 404 for users no group holds), nothing failed otherwise.
    expect(answers.filter((a) => a.status !== 503 && a.status !== 404 && a.status !== 200)).toEqual([]);
    expect(answers.length - shed.length).toBeGreaterThanOrEqual(4);
    expect(await serving.metric('featurestore_http_shed_total')).toBe(shed.length);
    agent.destroy();
    recordSoak({
      kind: 'input',
      target: `serving: ${answers.length} at once, limit 4 (${shed.length} shed with 503)`,
      inputs: answers.length,
      server_errors: answers.filter((a) => a.status >= 500 && a.status !== 503).length,
      crashes: serving.running ? 0 : 1,
    });
  });

  it('holds overload on ingest and serving: sheds with 503, never fails otherwise, memory bounded', async () => {
    // 256 clients without pause against a limit of 32 in flight: far beyond what either process
    // answers (its benchmark rate), for LOAD_SECONDS.
    // A topic of its own: the broker-outage test reads its topic back from the start.
    const loadTopic = `${name}-load`;
    await createTopic(testKafka(), loadTopic, 2);
    const env = { ...serverEnv(), HTTP_MAX_IN_FLIGHT: '32', INGEST_TOPICS: loadTopic, INGEST_DEFAULT_TOPIC: loadTopic };
    const [ingest, serving] = await Promise.all([
      startService('ingest', env, `${name}-load-ingest`),
      startService('serving', env, `${name}-load-serving`),
    ]);
    services.push(ingest, serving);
    await Promise.all([ingest.waitReady(), serving.waitReady()]);
    const events = (i: number) =>
      JSON.stringify(
        Array.from({ length: 100 }, (_, k) => ({
          entity_id: `load_${(i * 100 + k) % 10_000}`,
          action: 'view',
          timestamp: new Date().toISOString(),
        })),
      );
    const [ingested, served] = await Promise.all([
      closedLoop({ url: ingest.url, method: 'POST', path: () => '/v1/events', body: events }, LOAD_SECONDS, 256),
      closedLoop({ url: serving.url, method: 'GET', path: (i) => `/features/load_${i % 10_000}` }, LOAD_SECONDS, 256),
    ]);
    const unexpected = (statuses: Record<number, number>, ok: number[]) =>
      Object.entries(statuses).filter(([status]) => !ok.includes(Number(status)));
    expect(unexpected(ingested.statuses, [202, 503])).toEqual([]);
    expect(unexpected(served.statuses, [200, 404, 503])).toEqual([]);
    expect((ingested.statuses[503] ?? 0) + (served.statuses[503] ?? 0)).toBeGreaterThan(0);
    for (const service of [ingest, serving]) {
      expect(service.running).toBe(true);
      expect(await service.metric('featurestore_process_resident_memory_bytes')).toBeLessThan(RSS_BOUND_BYTES);
      expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    }
    const shed = (statuses: Record<number, number>) => statuses[503] ?? 0;
    const total = (statuses: Record<number, number>) => Object.values(statuses).reduce((a, b) => a + b, 0);
    recordSoak({
      kind: 'input',
      target: `ingest overloaded ${LOAD_SECONDS} s, 256 clients (${shed(ingested.statuses)} shed)`,
      inputs: total(ingested.statuses),
      server_errors: 0,
      crashes: 0,
    });
    recordSoak({
      kind: 'input',
      target: `serving overloaded ${LOAD_SECONDS} s, 256 clients (${shed(served.statuses)} shed)`,
      inputs: total(served.statuses),
      server_errors: 0,
      crashes: 0,
    });
  });

  it('answers 503 + Retry-After during a broker outage and accepts only what Kafka has', async () => {
    const env = { ...serverEnv(), INGEST_TOPICS: topic, INGEST_DEFAULT_TOPIC: topic, HTTP_REQUEST_TIMEOUT_MS: '4000' };
    const ingest = await startService('ingest', env, `${name}-ingest`);
    services.push(ingest);
    await ingest.waitReady();
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const accepted: string[] = [];
    const refused: Answer[] = [];
    let sequence = 0;
    const sendOne = async (): Promise<Answer> => {
      const id = `e${sequence++}`;
      const answer = await call(
        ingest.port,
        agent,
        'POST',
        '/v1/events',
        JSON.stringify({ entity_id: id, action: 'click', timestamp: new Date().toISOString() }),
      );
      if (answer.status === 202) accepted.push(id);
      else refused.push(answer);
      return answer;
    };
    for (let i = 0; i < 50; i++) expect((await sendOne()).status).toBe(202);

    execFileSync('bash', [kafkaScript, 'stop'], { stdio: 'ignore' });
    try {
      // Until the producer notices, a request may still be in flight; within a few tries it is refused.
      await eventually(
        async () => ((await sendOne()).status === 503 ? true : undefined),
        'ingest to refuse with the broker down',
        30_000,
      );
      for (let i = 0; i < 5; i++) await sendOne();
    } finally {
      execFileSync('bash', [kafkaScript, 'start'], { stdio: 'ignore' });
    }
    const brokerBack = Date.now();
    await eventually(
      async () => ((await sendOne()).status === 202 ? true : undefined),
      'ingest to accept again after the broker returned',
      120_000,
    );
    const recoveredSeconds = (Date.now() - brokerBack) / 1000;
    for (let i = 0; i < 50; i++) await sendOne();
    agent.destroy();

    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const answer of refused) {
      expect(answer.status).toBe(503);
      expect(answer.retryAfter).toMatch(/^\d+$/);
      expect(['E_BROKER_UNAVAILABLE', 'E_TIMEOUT']).toContain(answer.code);
    }
    // Every accepted event is in Kafka; a refused one may be too (the client retries: at least once).
    const records = (await readTopic(testKafka(), topic, accepted.length, 120_000)).map(
      (r) => (JSON.parse(r.value) as { entity_id: string }).entity_id,
    );
    const stored = new Set(records);
    expect(accepted.filter((id) => !stored.has(id))).toEqual([]);
    // Duplicates in Kafka would be the producer's retries; idempotence keeps them out.
    const acceptedSet = new Set(accepted);
    const duplicated = records.filter((id) => acceptedSet.has(id)).length - acceptedSet.size;
    recordSoak({
      kind: 'fault',
      fault: 'Kafka broker restarted under ingest',
      events_sent: sequence,
      lost: accepted.filter((id) => !stored.has(id)).length,
      duplicated,
      recovered_s: Number(recoveredSeconds.toFixed(1)),
    });
    recordSoak({
      kind: 'input',
      target: `ingest during the outage (${refused.length} refused with 503)`,
      inputs: sequence,
      server_errors: refused.filter((a) => a.status !== 503).length,
      crashes: ingest.running ? 0 : 1,
    });
  });

  it('holds a batch while its dead-letter topic refuses writes, loses nothing, and goes on once it accepts', async () => {
    const sourceTopic = `${name}-dlqsrc`;
    const dlq = `${name}-dlqfull`;
    const group = `${name}-dlq`;
    const kafka = testKafka();
    await createTopic(kafka, sourceTopic, 2);
    // A dead-letter topic that refuses every record: as good as a full one, for its writers.
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: dlq, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '16' }] }],
      waitForLeaders: true,
    });
    const table = await registerGroup(
      pool,
      { namespace: 'default', name: group },
      testGroupSpec(sourceTopic, { deadLetterTopic: dlq, batchSize: 500 }),
    );
    const stream = generateStream({ count: 5_000, entities: 200, prefix: `${group}:` });
    const producer = await idempotentProducer(kafka);
    await producer.send({
      topic: sourceTopic,
      acks: -1,
      messages: stream.lines.map((value) => ({ key: kafkaKeyOf(value), value })),
    });
    await producer.disconnect();
    const consumer = await startService(
      'consumer',
      { ...serverEnv(), FEATURE_GROUP: `default/${group}` },
      `${group}-consumer`,
    );
    services.push(consumer);
    try {
      await consumer.waitReady();
      const stored = () => storedOffsetTotal(pool, `featurestore.default.${group}`);
      await eventually(
        async () => ((await consumer.metric('featurestore_consumer_retries_total')) > 0 ? true : undefined),
        'the consumer to retry the batch whose dead letters were refused',
      );
      await new Promise((r) => setTimeout(r, 2_000));
      // Held: the batches with invalid records are not committed past their dead letters.
      expect(await stored()).toBeLessThan(stream.lines.length);
      expect(consumer.running).toBe(true);
      const heldAt = Date.now();
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: dlq,
            configEntries: [{ name: 'max.message.bytes', value: '1048588' }],
          },
        ],
      });
      await eventually(
        async () => ((await stored()) === stream.lines.length ? true : undefined),
        'every offset once the dead-letter topic accepts again',
        120_000,
      );
      const recoveredSeconds = (Date.now() - heldAt) / 1000;
      const [state, expected] = [
        await storedState((sql) => pool.query(sql), table),
        expectedState(stream.lines, stream.invalid),
      ];
      const invalidSent = stream.lines.filter((line) => stream.invalid.has(line));
      const letters = await readTopic(kafka, dlq, invalidSent.length);
      const lettered = new Set(letters.map((l) => l.value));
      const { lost, duplicated } = divergence(state, expected);
      // Lost: values missing or wrong, and invalid records that never reached the dead letters.
      recordSoak({
        kind: 'fault',
        fault: 'dead-letter topic refusing writes',
        events_sent: stream.lines.length,
        lost: lost + invalidSent.filter((l) => !lettered.has(l)).length,
        duplicated: duplicated + letters.length - invalidSent.length,
        recovered_s: Number(recoveredSeconds.toFixed(1)),
      });
      expect(state).toEqual(expected);
      expect(letters.map((l) => l.value).sort()).toEqual(invalidSent.sort());
    } finally {
      await consumer.stop();
      await admin.disconnect();
    }
  });
});
