/**
 * The whole data plane on real servers: HTTP ingest → Kafka → consumer → Postgres → HTTP serving.
 * 10,000 events with duplicates, out-of-order arrival and invalid records; what is served must
 * equal what the test computes on its own from the same events.
 */
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { DLQ_HEADERS } from '../../services/consumer/dead-letters';
import { expectedState, generateStream, HOSTILE_IDS, testGroupSpec, type Expected } from '../support/oracle';
import {
  createTopic,
  readTopic,
  dropRegisteredGroups,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, type RunningService, serverEnv, startService } from '../support/services';

const formatTime = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('end to end: ingest → Kafka → consumer → Postgres → serving', () => {
  const name = uniqueName('e2e');
  const topic = `${name}-events`;
  const prefix = `${name}:`;
  const stream = generateStream({ count: 10_000, entities: 400, prefix });
  const nonObjects = ['42', '"just a string"', '[1,2]', 'null'];
  let pool: Pool;
  let kafka: Kafka;
  let ingest: RunningService;
  let consumer: RunningService;
  let serving: RunningService;
  let accepted = 0;

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    await createTopic(kafka, topic, 4);
    await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(topic));
    const env = serverEnv();
    ingest = await startService('ingest', { ...env, INGEST_TOPICS: `raw-events,${topic}` }, `${name}-ingest`);
    consumer = await startService('consumer', { ...env, FEATURE_GROUP: `default/${name}` }, `${name}-consumer`);
    serving = await startService('serving', { ...env, REGISTRY_REFRESH_MS: '200' }, `${name}-serving`);
    await Promise.all([ingest.waitReady(), consumer.waitReady(), serving.waitReady()]);

    // Mixed request shapes: NDJSON batches, JSON arrays and single events.
    const lines = [...stream.lines, ...nonObjects];
    for (let i = 0; i < lines.length;) {
      const mode = ((i / 250) % 3) | 0;
      const size = mode === 2 ? 1 : 250;
      const chunk = lines.slice(i, i + size);
      i += size;
      const body = mode === 0 ? chunk.join('\n') : mode === 1 ? `[${chunk.join(',')}]` : chunk[0]!;
      const response = await fetch(`${ingest.url}/v1/events?topic=${topic}`, {
        method: 'POST',
        headers: { 'content-type': mode === 0 ? 'application/x-ndjson' : 'application/json' },
        body,
      });
      const answer = (await response.json()) as { accepted: number; rejected: number };
      expect([202, 400]).toContain(response.status);
      accepted += answer.accepted ?? 0;
    }
    await eventually(
      async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) === accepted ? true : undefined),
      'the consumer to reach the end of the topic',
    );
  });

  afterAll(async () => {
    await Promise.all([ingest?.stop(), consumer?.stop(), serving?.stop()]);
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('accepts every JSON object and rejects the rest at the door', () => {
    expect(accepted).toBe(stream.lines.length);
  });

  it('serves exactly what the events say, through the Feast-shaped batch API', async () => {
    const expected = expectedState(stream.lines, stream.invalid);
    const ids = stream.entities;
    for (let start = 0; start < ids.length; start += 200) {
      const batch = ids.slice(start, start + 200);
      const response = await fetch(`${serving.url}/get-online-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ features: [`${name}:last_action`, `${name}:last_amount`], entities: { user: batch } }),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        metadata: { feature_names: string[] };
        results: { values: unknown[]; statuses: string[]; event_timestamps: string[] }[];
      };
      expect(body.metadata.feature_names).toEqual(['user', 'last_action', 'last_amount']);
      expect(body.results[0]!.values).toEqual(batch);
      batch.forEach((id, i) => {
        const want: Expected | undefined = expected.get(id);
        const got = { action: body.results[1]!.values[i], amount: body.results[2]!.values[i] };
        expect({ id, ...got }).toEqual({ id, action: want?.last_action ?? null, amount: want?.last_amount ?? null });
        // Historical event times are far older than the group's ttl-less default: PRESENT, not stale.
        expect(body.results[1]!.statuses[i]).toBe(want ? 'PRESENT' : 'NOT_FOUND');
      });
    }
  });

  it('keeps the original GET /features/{entity_id} contract, hostile ids verbatim', async () => {
    const expected = expectedState(stream.lines, stream.invalid);
    for (const raw of HOSTILE_IDS) {
      const id = `${prefix}${raw}`;
      const want = expected.get(id);
      const response = await fetch(`${serving.url}/features/${encodeURIComponent(id)}`);
      if (!want) {
        expect(response.status).toBe(404);
        continue;
      }
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        entity_id: id,
        features: { last_action: want.last_action, last_amount: want.last_amount },
        last_updated: formatTime(want.last_updated),
      });
    }
    const missing = await fetch(`${serving.url}/features/${encodeURIComponent(`${prefix}nobody`)}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ detail: `No features found for entity_id=${prefix}nobody` });
  });

  it("serves the seed's own event for user_123 in the seed's shape", async () => {
    const timestamp = formatTime(Date.now() + 1000);
    const sent = await fetch(`${ingest.url}/v1/events?topic=${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ entity_id: 'user_123', action: 'click', timestamp }),
    });
    expect(sent.status).toBe(202);
    const body = await eventually(async () => {
      const response = await fetch(`${serving.url}/features/user_123`);
      const json = (await response.json()) as { last_updated?: string };
      return response.status === 200 && json.last_updated === timestamp ? json : undefined;
    }, 'user_123 to be served');
    expect(body).toEqual({
      entity_id: 'user_123',
      features: expect.objectContaining({ last_action: 'click' }),
      last_updated: timestamp,
    });
    accepted++;
  });

  it('dead-letters every invalid event with the reason in its headers', async () => {
    const invalidSent = stream.lines.filter((line) => stream.invalid.has(line));
    const letters = await readTopic(kafka, `featurestore.dlq.default.${name}`, invalidSent.length);
    expect(letters.map((l) => l.value).sort()).toEqual(invalidSent.sort());
    for (const letter of letters) {
      expect(letter.headers[DLQ_HEADERS.reason]).toMatch(/entity key|event time|feature last_amount/);
      expect(letter.headers[DLQ_HEADERS.group]).toBe(`default/${name}`);
      expect(letter.headers[DLQ_HEADERS.topic]).toBe(topic);
    }
    expect(await consumer.metric('featurestore_consumer_events_total')).toBe(accepted);
  });
});
