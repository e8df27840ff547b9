/**
 * Property-based hostile input (fast-check) against the real ingest and serving processes: random
 * bodies, content types, headers and paths drawn from their OpenAPI routes (huge and deeply nested
 * JSON, invalid UTF-8, path traversal, SQL metacharacters, 64 KB ids). Every answer is a 4xx with
 * the JSON error shape or a success; never a 5xx, never a crash, and memory stays bounded.
 * FUZZ_RUNS sets the runs per property (a few hundred in `make test`; `make soak` runs thousands).
 */
import fc from 'fast-check';
import type { Pool } from 'pg';
import { consumerGroupFor } from '../../core/kafka';
import { testGroupSpec } from '../support/oracle';
import {
  createTopic,
  dropRegisteredGroups,
  readTopic,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { eventually, type RunningService, serverEnv, startIngestAndServing, startService } from '../support/services';
import { rawRequest } from '../support/http';
import { recordSoak } from '../support/soak';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
/** Resident memory either process may reach after the fuzzing (it starts near 100 MB). */
const RSS_BOUND_BYTES = 400 * 1024 * 1024;

interface Answer {
  status: number;
  body: string;
}

async function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<Answer> {
  try {
    return await rawRequest(port, method, path, headers, body);
  } catch (error) {
    // A request head past Node's 16 KiB limit is refused by the HTTP parser with 431 and a closed
    // socket, which a client still writing sees as a reset: the refusal, not a failure.
    const head = path.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
    const code = (error as NodeJS.ErrnoException).code;
    if (head > 16 * 1024 && (code === 'ECONNRESET' || code === 'EPIPE')) return { status: 431, body: '' };
    throw error;
  }
}

/** A 4xx must carry the one error shape; a 5xx is a defect (503 only if shedding, which must not happen here). */
function expectHandled(answer: Answer, what: string): void {
  if (answer.status >= 500 || answer.status === 0)
    throw new Error(`${what} → ${answer.status}: ${answer.body.slice(0, 300)}`);
  // 404 and 431 may come from Node or the router itself, without the APIs' error shape.
  if (answer.status >= 400 && answer.status !== 404 && answer.status !== 431) {
    const parsed = JSON.parse(answer.body) as { detail?: unknown; code?: unknown };
    if (typeof parsed.detail !== 'string' || typeof parsed.code !== 'string')
      throw new Error(`${what} → ${answer.status} without the error shape: ${answer.body.slice(0, 300)}`);
  }
}

// Pieces of hostile text: traversal, SQL and shell metacharacters, format strings, control bytes.
const nasty = fc.constantFrom(
  "'; DROP TABLE features.x; --",
  '../../../../etc/passwd',
  '..%2f..%2f',
  '%00',
  '${jndi:ldap://x}',
  '%s%s%n',
  '\u0000',
  '\ud800',
  'ü',
  '🙂',
  '"',
  '\\',
  '$1',
  '*',
);
const hostileString = fc.oneof(
  fc.string({ maxLength: 64 }),
  nasty,
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.constant('x'.repeat(64 * 1024)),
);
const nestedJson = fc.integer({ min: 1, max: 200_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));
const eventLike = fc.record(
  {
    entity_id: fc.oneof(hostileString, fc.integer(), fc.constant(null)),
    action: fc.oneof(hostileString, fc.jsonValue()),
    amount: fc.oneof(fc.double(), hostileString),
    timestamp: fc.oneof(fc.date({ noInvalidDate: false }).map(String), hostileString),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.array(eventLike, { maxLength: 50 }).map((a) => Buffer.from(JSON.stringify(a))),
  eventLike.map((e) => Buffer.from(JSON.stringify(e))),
  fc.array(eventLike, { maxLength: 20 }).map((a) => Buffer.from(a.map((e) => JSON.stringify(e)).join('\n'))),
  fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)),
  nestedJson.map((s) => Buffer.from(s)),
  hostileString.map((s) => Buffer.from(s)),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/x-ndjson',
  'application/json; charset=latin1',
  'text/plain',
  'application/octet-stream',
  '',
  '*/*',
  'application/json; boundary=%%%',
);
// Header values Node lets a client send (visible ASCII); names from what the services read.
const headerValue = fc.string({ maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const extraHeaders = fc.dictionary(
  fc.constantFrom(
    'authorization',
    'accept',
    'x-request-id',
    'accept-encoding',
    'content-encoding',
    'transfer-encoding-x',
  ),
  headerValue,
  { maxKeys: 3 },
);
/** Percent-encodes any string; lone surrogates (which encodeURIComponent refuses) go byte by byte. */
const encode = (s: string): string => {
  try {
    return encodeURIComponent(s);
  } catch {
    return Buffer.from(s).toString('hex').replace(/../g, '%$&');
  }
};
/** A path segment: encoded random text, or raw malformed percent escapes and traversal. */
const segment = fc.oneof(
  hostileString.map(encode),
  fc.constantFrom('%', '%zz', '%E0%A4%A', '..', '.%2e', '%2e%2e%2f', '%C0%AF', '%FF', 'a%00b', ''),
);

describe('hostile input (property-based)', () => {
  const name = uniqueName('fuzz');
  let pool: Pool;
  let ingest: RunningService;
  let serving: RunningService;

  beforeAll(async () => {
    pool = testPool();
    await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(`${name}-events`));
    [ingest, serving] = await startIngestAndServing(
      name,
      { INGEST_TOPICS: `${name}-events`, INGEST_DEFAULT_TOPIC: `${name}-events` },
      { REGISTRY_REFRESH_MS: '200' },
    );
  });

  afterAll(async () => {
    await Promise.all([ingest?.stop(), serving?.stop()]);
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('ingest answers every random request with a 2xx or a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        body,
        contentType,
        extraHeaders,
        fc.option(hostileString.map(encode)),
        async (payload, type, headers, topic) => {
          const path = `/v1/events${topic === null ? '' : `?topic=${topic}`}`;
          expectHandled(
            await send(ingest.port, 'POST', path, { ...headers, 'content-type': type }, payload),
            `POST ${path.slice(0, 80)} (${type})`,
          );
        },
      ),
      { numRuns: RUNS },
    );
    recordSoak({
      kind: 'input',
      target: 'ingest: random bodies, types, headers, topics',
      inputs: RUNS,
      server_errors: 0,
      crashes: ingest.running ? 0 : 1,
    });
  });

  it('serving answers every random request with a 2xx or a 4xx', async () => {
    const routes = fc.oneof(
      segment.map((s) => ({ method: 'GET', path: `/features/${s}`, body: undefined as Buffer | undefined })),
      fc.tuple(segment, segment).map(([a, b]) => ({
        method: 'GET',
        path: `/v1/feature-groups/${a}/${b}`,
        body: undefined as Buffer | undefined,
      })),
      body.map((b) => ({ method: 'POST', path: '/get-online-features', body: b as Buffer | undefined })),
      body.map((b) => ({ method: 'POST', path: '/v1/historical-features', body: b as Buffer | undefined })),
      fc
        .record({
          features: fc.array(fc.oneof(hostileString, fc.constant(`${name}:last_action`)), { maxLength: 5 }),
          entities: fc.dictionary(
            fc.constantFrom('user', 'item', ''),
            fc.array(fc.oneof(hostileString, fc.integer()), { maxLength: 5 }),
          ),
        })
        .map((r) => ({
          method: 'POST',
          path: '/get-online-features',
          body: Buffer.from(JSON.stringify(r)) as Buffer | undefined,
        })),
    );
    await fc.assert(
      fc.asyncProperty(routes, contentType, extraHeaders, async (route, type, headers) => {
        const answer = await send(
          serving.port,
          route.method,
          route.path,
          { ...headers, ...(route.body ? { 'content-type': type } : {}) },
          route.body,
        );
        expectHandled(answer, `${route.method} ${route.path.slice(0, 80)}`);
      }),
      { numRuns: RUNS },
    );
    recordSoak({
      kind: 'input',
      target: 'serving: random paths, bodies, headers',
      inputs: RUNS,
      server_errors: 0,
      crashes: serving.running ? 0 : 1,
    });
  });

  it('the consumer takes random Kafka payloads without getting stuck: valid ones stored, the rest dead-lettered', async () => {
    const topic = `${name}-random`;
    const group = `${name}-c`;
    const ref = { namespace: 'default', name: group };
    const dlq = `${name}-dlq`;
    await registerGroup(pool, ref, testGroupSpec(topic, { deadLetterTopic: dlq }));
    await createTopic(testKafka(), topic, 2);
    await createTopic(testKafka(), dlq, 1);
    const event = (id: string, action: unknown = 'click') =>
      JSON.stringify({ entity_id: id, action, amount: 1, timestamp: '2026-11-26T00:00:00Z' });
    type Kind = 'valid' | 'invalid' | 'either';
    const payload: fc.Arbitrary<{ kind: Kind; value: Buffer | null }> = fc.oneof(
      hostileString.map((id) => ({ kind: 'either' as Kind, value: Buffer.from(event(id)) })),
      fc
        .uint8Array({ maxLength: 2048 })
        .map((b) => ({ kind: 'invalid' as Kind, value: Buffer.concat([Buffer.from([0xff]), Buffer.from(b)]) })),
      fc
        .string({ maxLength: 40 })
        .map((id) => ({ kind: 'invalid' as Kind, value: Buffer.from(event(id).slice(0, -3)) })),
      fc.constant({ kind: 'invalid' as Kind, value: null }),
      fc
        .jsonValue({ maxDepth: 3 })
        .filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))
        .map((v) => ({ kind: 'invalid' as Kind, value: Buffer.from(JSON.stringify(v)) })),
      fc.constant({ kind: 'either' as Kind, value: Buffer.from(event('huge', 'x'.repeat(512 * 1024))) }),
      fc.integer({ min: 65, max: 100_000 }).map((depth) => ({
        kind: 'invalid' as Kind,
        value: Buffer.from(`{"entity_id":"deep","action":${'['.repeat(depth)}${']'.repeat(depth)}}`),
      })),
    );
    const random = fc.sample(payload, Math.max(200, RUNS * 2));
    const valid = Array.from({ length: 200 }, (_, i) => ({
      kind: 'valid' as Kind,
      value: Buffer.from(event(`fz_valid_${i}`)),
    }));
    const records = [...random, ...valid].sort(() => Math.random() - 0.5);
    const producer = testKafka().producer();
    await producer.connect();
    for (let i = 0; i < records.length; i += 50)
      await producer.send({ topic, messages: records.slice(i, i + 50).map((r) => ({ value: r.value })) });
    await producer.disconnect();

    const consumer = await startService(
      'consumer',
      { ...serverEnv(), FEATURE_GROUP: `default/${group}` },
      `${name}-consumer`,
    );
    try {
      await consumer.waitReady();
      // Not stuck: every partition's stored offset reaches its end.
      await eventually(
        async () => ((await storedOffsetTotal(pool, consumerGroupFor(ref))) >= records.length ? true : undefined),
        `the consumer to pass all ${records.length} records`,
        120_000,
      );
      expect(consumer.running).toBe(true);
      const table = (
        await pool.query<{ table_name: string }>(
          'SELECT table_name FROM featurestore.feature_groups WHERE namespace = $1 AND name = $2',
          ['default', group],
        )
      ).rows[0]!.table_name;
      const stored = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM features."${table}" WHERE entity_id LIKE 'fz_valid_%'`,
      );
      expect(Number(stored.rows[0]!.n)).toBe(valid.length);
      const invalid = records.filter((r) => r.kind === 'invalid').length;
      const either = records.filter((r) => r.kind === 'either').length;
      const dead = await readTopic(testKafka(), dlq, invalid, 60_000);
      expect(dead.length).toBeGreaterThanOrEqual(invalid);
      expect(dead.length).toBeLessThanOrEqual(invalid + either);
      expect(dead.every((r) => (r.headers['fs-error-reason'] ?? '').length > 0)).toBe(true);
      const rss = await consumer.metric('featurestore_process_resident_memory_bytes');
      expect(rss).toBeLessThan(RSS_BOUND_BYTES);
      recordSoak({
        kind: 'input',
        target: `consumer: random Kafka payloads (${dead.length} dead-lettered)`,
        inputs: records.length,
        server_errors: 0,
        crashes: consumer.running ? 0 : 1,
      });
    } finally {
      await consumer.stop();
    }
  });

  it('both processes are alive and within their memory bound afterwards', async () => {
    for (const service of [ingest, serving]) {
      expect((await send(service.port, 'GET', '/healthz', {})).status).toBe(200);
      const metrics = (await send(service.port, 'GET', '/metrics', {})).body;
      const rss = Number(/process_resident_memory_bytes(?:\{[^}]*\})? (\d+)/.exec(metrics)?.[1]);
      expect(rss).toBeGreaterThan(0);
      expect(rss).toBeLessThan(RSS_BOUND_BYTES);
    }
  });
});
