/**
 * Window aggregates from the stream: 50,000 events over a simulated week (shuffled, so many arrive
 * late; some records twice; some invalid), consumed while the consumer is killed with -9 again and
 * again. Every aggregate served equals an in-test oracle of the documented rule (README): the
 * stored events with event time in (T − W, T], the tail possibly rounded out by up to W/60. The
 * oracle knows nothing of tiles: it is exact where no event lies within W/60 before the window,
 * and elsewhere accepts exactly the values of the window widened to some such events, the newest
 * first. Events stored a second before a read count in it. Every point-in-time row of POST
 * /v1/historical-features equals the oracle too, never shows an event from after its row's time
 * (a leak check that catches the online reader asked about a past time), and equals what the online
 * read gave at that time.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Pool } from 'pg';
import { compileGroup } from '../../core/featuregroup/compiled';
import type { JsonValue } from '../../core/events/path';
import { featureGroupSpecSchema } from '../../core/featuregroup/schema';
import { replayStartOffsets } from '../../core/kafka';
import { FeatureStatement } from '../../core/storage/feature-statement';
import { replayGroup } from '../../core/storage/replay';
import { formatTime } from '../../core/time';
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
import { eventually, requireEnv, startService, type RunningService } from '../support/services';
import { random } from '../support/random';

const TOTAL = 50_000;
const ENTITIES = 200;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface Event {
  user: string;
  ts: number;
  action: string;
  amountCents?: number;
  page: string;
  /** Produce order: within one entity (one partition) it is the Kafka offset order. */
  seq: number;
}

const SPEC = (topic: string) =>
  featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'user' },
    source: { topic, eventTimeField: 'ts' },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      {
        name: 'clicks_1h',
        type: 'int64',
        aggregate: { fn: 'count', window: '1h', where: { field: 'action', equals: 'click' } },
      },
      {
        name: 'spend_1d',
        type: 'float64',
        aggregate: { fn: 'sum', field: 'amount', window: '1d', where: { field: 'action', in: ['buy'] } },
      },
      {
        name: 'avg_spend_7d',
        type: 'float64',
        aggregate: { fn: 'avg', field: 'amount', window: '7d', where: { field: 'action', equals: 'buy' } },
      },
      {
        name: 'min_spend_7d',
        type: 'float64',
        aggregate: { fn: 'min', field: 'amount', window: '7d', where: { field: 'action', equals: 'buy' } },
      },
      {
        name: 'max_spend_1d',
        type: 'float64',
        aggregate: { fn: 'max', field: 'amount', window: '1d', where: { field: 'action', equals: 'buy' } },
      },
      { name: 'first_seen_7d', type: 'timestamp', aggregate: { fn: 'min', field: 'ts', window: '7d' } },
      { name: 'recent_pages_1h', type: 'json', aggregate: { fn: 'last_n', field: 'page', window: '1h', limit: 3 } },
    ],
    ttl: '1d',
    history: { enabled: true },
    consumer: { batchSize: 500 },
  });

/** The windows of SPEC, as its durations say. */
const WINDOW_MS: Record<string, number> = {
  clicks_1h: HOUR,
  spend_1d: DAY,
  avg_spend_7d: 7 * DAY,
  min_spend_7d: 7 * DAY,
  max_spend_1d: DAY,
  first_seen_7d: 7 * DAY,
  recent_pages_1h: HOUR,
};

function valueOf(name: string, inWindow: readonly Event[]): JsonValue | undefined {
  if (inWindow.length === 0) return undefined;
  const cents = inWindow.map((e) => e.amountCents!);
  switch (name) {
    case 'clicks_1h':
      return inWindow.length;
    case 'spend_1d':
      return cents.reduce((a, b) => a + b, 0) / 100;
    case 'avg_spend_7d':
      return cents.reduce((a, b) => a + b, 0) / 100 / inWindow.length;
    case 'min_spend_7d':
      return Math.min(...cents) / 100;
    case 'max_spend_1d':
      return Math.max(...cents) / 100;
    case 'first_seen_7d':
      return formatTime(new Date(Math.min(...inWindow.map((e) => e.ts))));
    case 'recent_pages_1h':
      return [...inWindow]
        .sort((a, b) => b.ts - a.ts || b.seq - a.seq)
        .slice(0, 3)
        .map((e) => e.page);
  }
  throw new Error(`no oracle for ${name}`);
}

/**
 * Every value the rule allows at `atMs`: the events in (T − W, T], plus, since the tail may be
 * rounded out by up to W/60, those of (T − W − W/60, T − W] from the newest down to any of them.
 * One value where no event sits in that edge.
 */
function oracle(feature: { name: string }, events: readonly Event[], atMs: number): (JsonValue | undefined)[] {
  const windowMs = WINDOW_MS[feature.name]!;
  const relevant = events.filter((e) => {
    if (feature.name === 'clicks_1h') return e.action === 'click';
    if (feature.name.includes('spend')) return e.action === 'buy';
    return true;
  });
  const inWindow = relevant.filter((e) => e.ts > atMs - windowMs && e.ts <= atMs);
  const edge = relevant.filter((e) => e.ts > atMs - windowMs - windowMs / 60 && e.ts <= atMs - windowMs);
  const thresholds = [...new Set(edge.map((e) => e.ts))].sort((a, b) => b - a);
  return [
    valueOf(feature.name, inWindow),
    ...thresholds.map((t) => valueOf(feature.name, [...inWindow, ...edge.filter((e) => e.ts >= t)])),
  ];
}

/** Whether a served value is one the oracle allows (avg to 1e-9). */
function allowed(
  feature: { name: string },
  served: JsonValue | null | undefined,
  candidates: readonly (JsonValue | undefined)[],
): boolean {
  return candidates.some((c) => {
    if (c === undefined) return served === null || served === undefined;
    if (feature.name === 'avg_spend_7d') return typeof served === 'number' && Math.abs(served - (c as number)) < 1e-9;
    return JSON.stringify(served) === JSON.stringify(c);
  });
}

describe('window aggregates, exact across kill -9', () => {
  const name = uniqueName('agg');
  const topic = `${name}-events`;
  const spec = SPEC(topic);
  const group = compileGroup({ namespace: 'default', name }, spec);
  // Only the names come from the compiled group: the oracle has its own windows and rules.
  const features = group.aggregates.map((a) => ({ name: a.name }));
  const now0 = Date.now();
  const rand = random(42);
  const events: Event[] = [];
  const lines: { key: string; value: string }[] = [];
  let pool: Pool;
  let kafka: Kafka;
  let producer: Producer;

  // A week of events, a third of them in the last two hours so the short windows hold plenty; the
  // list is shuffled, so most arrive after newer ones (late). Some records are sent twice (two
  // Kafka records: both count), some are invalid (dead letters, counted nowhere).
  for (let i = 0; i < TOTAL; i++) {
    const user = `${name}:u${Math.floor(rand() * ENTITIES)}`;
    const ago = rand() < 0.33 ? rand() * 2 * HOUR : rand() * 7 * DAY;
    const ts = Math.floor(now0 - 1_000 - ago);
    const action = ['click', 'view', 'buy'][Math.floor(rand() * 3)]!;
    const amountCents = action === 'buy' ? Math.floor(rand() * 100_000) : undefined;
    const page = `/p/${Math.floor(rand() * 50)}`;
    events.push({ user, ts, action, page, seq: 0, ...(amountCents !== undefined ? { amountCents } : {}) });
  }
  // A user whose only events are two to three days old: inside the 7d windows, outside the 1d ttl.
  for (let i = 0; i < 5; i++)
    events.push({
      user: `${name}:stale`,
      ts: now0 - 2 * DAY - i * HOUR,
      action: 'buy',
      amountCents: 1_000 + i,
      page: '/old',
      seq: 0,
    });
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  const counted: Event[] = [];
  const record = (e: Event) =>
    JSON.stringify({
      user: e.user,
      ts: new Date(e.ts).toISOString(),
      action: e.action,
      page: e.page,
      ...(e.amountCents !== undefined ? { amount: e.amountCents / 100 } : {}),
    });
  for (const e of events) {
    const copies = rand() < 0.02 ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const seq = lines.length;
      counted.push({ ...e, seq });
      lines.push({ key: e.user, value: record(e) });
    }
    if (rand() < 0.005)
      lines.push({
        key: e.user,
        value: JSON.stringify({
          user: e.user,
          ts: new Date(e.ts).toISOString(),
          action: 'buy',
          page: '/x',
          amount: 'lots',
        }),
      });
  }
  const byUser = new Map<string, Event[]>();
  for (const e of counted) byUser.set(e.user, [...(byUser.get(e.user) ?? []), e]);
  const users = [...byUser.keys()].sort();

  const env = (): Record<string, string> => ({
    DATABASE_URL: requireEnv('DATABASE_URL'),
    KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
    FEATURE_GROUP: `default/${name}`,
    CONSUMER_MAX_BYTES_PER_PARTITION: '65536',
    CONSUMER_SESSION_TIMEOUT_MS: '6000',
  });

  /** Online reads recorded at their time, for the point-in-time test to ask about again. */
  const recorded: { atMs: number; values: Map<string, (JsonValue | null)[]> }[] = [];
  /** The online read's values and event times, per user, aligned with ['last_action', ...features]. */
  const readOnline = async (ids: string[], atMs: number) => {
    const names = ['last_action', ...features.map((f) => f.name)];
    const statement = new FeatureStatement([{ group, features: names }], false);
    const columns = names.map((n) => statement.groups[0]!.byName.get(n)!);
    const rows = await statement.read(pool, ids, atMs);
    return new Map(
      ids.map((id) => {
        const row = rows.get(id)!;
        return [
          id,
          columns.map((c) => {
            const eventMs = c.eventMs(row);
            return eventMs === null ? null : { value: c.value(row), eventMs };
          }),
        ];
      }),
    );
  };

  /** Every value and aggregate of every user, read at one moment, against the oracle; the read is recorded. */
  const compareWithOracle = async (): Promise<number> => {
    const atMs = Date.now();
    const stored = await readOnline(users, atMs);
    recorded.push({
      atMs,
      values: new Map(users.map((u) => [u, stored.get(u)?.map((f) => f?.value ?? null) ?? []])),
    });
    let compared = 0;
    for (const user of users) {
      const own = byUser.get(user)!;
      const latest = [...own].sort((a, b) => b.ts - a.ts || b.seq - a.seq)[0]!;
      expect([user, stored.get(user)?.[0]?.value]).toEqual([user, latest.action]);
      for (const [i, feature] of features.entries()) {
        const candidates = oracle(feature, own, atMs);
        const got = stored.get(user)?.[i + 1]?.value ?? null;
        const label = `${user} ${feature.name} at ${atMs}`;
        expect([label, got, allowed(feature, got, candidates)]).toEqual([label, got, true]);
        if (candidates[0] !== undefined) compared++;
      }
    }
    return compared;
  };

  beforeAll(async () => {
    pool = testPool();
    kafka = testKafka();
    await createTopic(kafka, topic, 4);
    await registerGroup(pool, { namespace: 'default', name }, spec);
    await registerGroup(
      pool,
      { namespace: 'default', name: `${name}-nohist` },
      {
        entity: { name: 'user', keyField: 'user' },
        source: { topic },
        features: [{ name: 'last_action', type: 'string', from: 'action' }],
      },
    );
    producer = await idempotentProducer(kafka);
  });

  afterAll(async () => {
    await producer?.disconnect();
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it('serves every aggregate equal to the oracle after the consumer was killed mid-stream', async () => {
    const producing = (async () => {
      for (let i = 0; i < lines.length; i += 2_500) {
        await producer.send({ topic, acks: -1, messages: lines.slice(i, i + 2_500) });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let consumer: RunningService = await startService('consumer', env(), `${name}-consumer`);
    await consumer.waitReady();
    for (let kill = 0; kill < 3; kill++) {
      await eventually(
        async () =>
          (await storedOffsetTotal(pool, `featurestore.default.${name}`)) > (kill + 1) * 8_000 ? true : undefined,
        `progress before kill ${kill + 1}`,
      );
      await consumer.crash();
      consumer = await startService('consumer', env(), `${name}-consumer-${kill + 1}`);
      await consumer.waitReady();
    }
    await producing;
    await eventually(
      async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) === lines.length ? true : undefined),
      'every record consumed',
      180_000,
    );
    await consumer.stop();

    expect(await compareWithOracle()).toBeGreaterThan(ENTITIES * 4);
  });

  it('counts events stored a second before the read: the head of every window is exact', async () => {
    const fresh: Event[] = [];
    const since = recorded.at(-1)!.atMs;
    // Not the stale user, whose events must stay days old.
    for (const user of users.filter((u) => !u.endsWith(':stale')).slice(0, 40)) {
      for (let i = 0; i < 5; i++) {
        const action = ['click', 'buy'][i % 2]!;
        // 1 to 5 s before now, and after the last recorded read (which must stay what it was).
        const ts = Math.max(since + 1, Date.now() - 1_000 - Math.floor(rand() * 4_000));
        fresh.push({
          user,
          ts,
          action,
          page: `/fresh/${i}`,
          seq: lines.length + fresh.length,
          ...(action === 'buy' ? { amountCents: 100 + i } : {}),
        });
      }
    }
    for (const e of fresh) {
      byUser.get(e.user)!.push(e);
      lines.push({ key: e.user, value: record(e) });
    }
    await producer.send({ topic, acks: -1, messages: lines.slice(-fresh.length) });
    const consumer = await startService('consumer', env(), `${name}-consumer-fresh`);
    await consumer.waitReady();
    await eventually(
      async () => ((await storedOffsetTotal(pool, `featurestore.default.${name}`)) === lines.length ? true : undefined),
      'the fresh events stored',
    );
    await consumer.stop();
    expect(await compareWithOracle()).toBeGreaterThan(ENTITIES * 4);
    // Read within seconds of the events: a rule that left out the open tile (up to W/60) would miss them.
    expect(recorded.at(-1)!.atMs - Math.min(...fresh.map((e) => e.ts))).toBeLessThan(HOUR / 60);
  });

  it('serves them over HTTP with Feast statuses: OUTSIDE_MAX_AGE past the ttl, NOT_FOUND for an empty window', async () => {
    const serving = await startService('serving', { DATABASE_URL: requireEnv('DATABASE_URL') }, `${name}-serving`);
    try {
      await serving.waitReady();
      const refs = features.map((f) => `${name}:${f.name}`);
      const regular = users.find((u) => !u.endsWith(':stale'))!;
      const ask = [regular, `${name}:stale`];
      const before = Date.now();
      const response = await fetch(`${serving.url}/get-online-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ features: refs, entities: { user: ask } }),
      });
      const after = Date.now();
      const answer = { body: (await response.json()) as { results: { values: JsonValue[]; statuses: string[] }[] } };
      features.forEach((feature, i) => {
        const column = answer.body.results[i + 1]!;
        // Served at some moment between before and after: any value the rule allows at either end.
        const candidates = [
          ...oracle(feature, byUser.get(regular)!, before),
          ...oracle(feature, byUser.get(regular)!, after),
        ];
        expect([feature.name, column.values[0], allowed(feature, column.values[0], candidates)]).toEqual([
          feature.name,
          column.values[0],
          true,
        ]);
        expect(column.statuses[0]).toBe(column.values[0] === null ? 'NOT_FOUND' : 'PRESENT');
      });
      const stale = (feature: string) => answer.body.results[features.findIndex((f) => f.name === feature) + 1]!;
      expect(stale('avg_spend_7d')).toMatchObject({
        values: [expect.any(Number), 10.02],
        statuses: ['PRESENT', 'OUTSIDE_MAX_AGE'],
      });
      expect(stale('clicks_1h').statuses[1]).toBe('NOT_FOUND');

      const one = (await (await fetch(`${serving.url}/features/${encodeURIComponent(`${name}:stale`)}`)).json()) as {
        features: Record<string, JsonValue>;
      };
      expect(one.features).toMatchObject({
        last_action: 'buy',
        min_spend_7d: 10,
        first_seen_7d: formatTime(new Date(now0 - 2 * DAY - 4 * HOUR)),
      });
    } finally {
      await serving.stop();
    }
  });

  it("answers point-in-time rows equal to the oracle, with no event from after a row's time (JSON and NDJSON)", async () => {
    const serving = await startService(
      'serving',
      { DATABASE_URL: requireEnv('DATABASE_URL') },
      `${name}-serving-history`,
    );
    try {
      await serving.waitReady();
      const refs = ['last_action', ...features.map((f) => f.name)].map((f) => `${name}:${f}`);
      const rows: { user: string; timestamp: string | number }[] = [];
      for (let i = 0; i < 3_000; i++) {
        const user = users[Math.floor(rand() * users.length)]!;
        const own = byUser.get(user)!;
        // A third of the rows sit exactly on one of the user's event times: "at or before" is inclusive.
        const at = rand() < 0.33 ? own[Math.floor(rand() * own.length)]!.ts : Math.floor(now0 - rand() * 8 * DAY);
        rows.push({ user, timestamp: i % 2 ? new Date(at).toISOString() : at });
      }
      const asJson = await fetch(`${serving.url}/v1/historical-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ features: refs, entities: rows }),
      });
      expect(asJson.status).toBe(200);
      const body = (await asJson.json()) as {
        features: string[];
        rows: { user: string; values: JsonValue[]; statuses: string[]; event_timestamps: string[] }[];
      };
      expect(body.features).toEqual(refs);
      expect(body.rows).toHaveLength(rows.length);

      let present = 0;
      body.rows.forEach((answer, r) => {
        const atMs = typeof rows[r]!.timestamp === 'number' ? rows[r]!.timestamp : Date.parse(rows[r]!.timestamp);
        const own = byUser.get(rows[r]!.user)!;
        expect(answer.user).toBe(rows[r]!.user);
        // Leakage: nothing served comes from after the row's time.
        answer.event_timestamps.forEach((t, k) => {
          if (answer.statuses[k] !== 'NOT_FOUND') expect([r, k, Date.parse(t) <= atMs]).toEqual([r, k, true]);
        });
        const latest = own.filter((e) => e.ts <= atMs).sort((a, b) => b.ts - a.ts || b.seq - a.seq)[0];
        expect([r, 'last_action', answer.values[0]]).toEqual([r, 'last_action', latest ? latest.action : null]);
        if (latest) expect(answer.statuses[0]).toBe(atMs - latest.ts > DAY ? 'OUTSIDE_MAX_AGE' : 'PRESENT');
        features.forEach((feature, k) => {
          const candidates = oracle(feature, own, atMs);
          const got = answer.values[k + 1];
          if (candidates[0] !== undefined) present++;
          expect([r, feature.name, got, allowed(feature, got, candidates)]).toEqual([r, feature.name, got, true]);
        });
      });
      expect(present).toBeGreaterThan(rows.length);

      // At the times the online reads were taken, point in time gives what they gave.
      for (const read of recorded) {
        const response = await fetch(`${serving.url}/v1/historical-features`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: refs, entities: users.map((user) => ({ user, timestamp: read.atMs })) }),
        });
        const asOf = (await response.json()) as { rows: { user: string; values: JsonValue[] }[] };
        const online = users.map((u) => [u, read.values.get(u)]);
        expect(asOf.rows.map((row) => [row.user, row.values])).toEqual(online);
      }

      // The leak check above is not blind: the online reader asked about a past time (it reads the
      // whole open tile) shows events from after it, and the check finds them.
      const leaksOf = (answers: { atMs: number; eventTimes: (number | undefined)[] }[]) =>
        answers.filter((a) => a.eventTimes.some((t) => t !== undefined && t > a.atMs)).length;
      const probes = users.slice(0, 60).map((user) => {
        const own = byUser.get(user)!.filter((e) => e.ts < now0 - HOUR);
        return { user, atMs: own[Math.floor(rand() * own.length)]!.ts - 1 };
      });
      const online = await Promise.all(
        probes.map(async (p) => ({
          atMs: p.atMs,
          eventTimes: ((await readOnline([p.user], p.atMs)).get(p.user) ?? []).map((f) => f?.eventMs),
        })),
      );
      expect(leaksOf(online)).toBeGreaterThan(0);
      const pit = (await (
        await fetch(`${serving.url}/v1/historical-features`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: refs, entities: probes.map((p) => ({ user: p.user, timestamp: p.atMs })) }),
        })
      ).json()) as { rows: { statuses: string[]; event_timestamps: string[] }[] };
      expect(
        leaksOf(
          pit.rows.map((row, i) => ({
            atMs: probes[i]!.atMs,
            eventTimes: row.event_timestamps.map((t, k) =>
              row.statuses[k] === 'NOT_FOUND' ? undefined : Date.parse(t),
            ),
          })),
        ),
      ).toBe(0);

      const ndjson = [JSON.stringify({ features: refs }), ...rows.map((row) => JSON.stringify(row))].join('\n');
      const asNdjson = await fetch(`${serving.url}/v1/historical-features`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: ndjson,
      });
      expect(asNdjson.status).toBe(200);
      expect(asNdjson.headers.get('content-type')).toMatch(/application\/x-ndjson/);
      const lines = (await asNdjson.text())
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as unknown);
      expect(lines[0]).toEqual({ features: refs });
      expect(lines.slice(1)).toEqual(body.rows);

      const refused = async (payload: unknown, status: number, code: string, field: string) => {
        const response = await fetch(`${serving.url}/v1/historical-features`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(payload),
        });
        expect([response.status, await response.json()]).toEqual([status, expect.objectContaining({ code, field })]);
      };
      await refused({ features: [`${name}-nohist:last_action`], entities: [] }, 409, 'E_NO_HISTORY', 'features.0');
      await refused({ features: refs, entities: [{ timestamp: 1 }] }, 400, 'E_BAD_ROW', 'entities.0.user');
      await refused(
        { features: refs, entities: [{ user: 'u', timestamp: 'yesterday' }] },
        400,
        'E_BAD_ROW',
        'entities.0.timestamp',
      );
      await refused({ features: [`${name}:nope`], entities: [] }, 404, 'E_UNKNOWN_FEATURE', 'features.0');
    } finally {
      await serving.stop();
    }
  });

  it('rebuilds the same state after a full replay, fencing off the consumer that ran before it', async () => {
    const consumerGroup = `featurestore.default.${name}`;
    const before = await startService('consumer', env(), `${name}-before-replay`);
    await before.waitReady();
    const admin = kafka.admin();
    await admin.connect();
    const { epoch } = await replayGroup(pool, group, await replayStartOffsets(admin, topic, 'earliest'), 'earliest');
    await admin.disconnect();
    expect(epoch).toBe(1);
    expect(Number((await pool.query(`SELECT count(*) FROM ${group.tables.values.sql}`)).rows[0].count)).toBe(0);

    // New records reach the consumer started before the replay: its next write is refused, it exits.
    const extra: Event[] = [];
    for (let i = 0; i < 5_000; i++) {
      const user = users[Math.floor(rand() * users.length)]!;
      extra.push({
        user,
        ts: Math.floor(now0 - rand() * HOUR),
        action: 'click',
        page: `/new/${i % 7}`,
        seq: lines.length + i,
      });
    }
    await producer.send({ topic, acks: -1, messages: extra.map((e) => ({ key: e.user, value: record(e) })) });
    for (const e of extra) byUser.get(e.user)!.push(e);
    const exitCode = await eventually(
      async () => (before.running ? undefined : before.proc.exitCode),
      'the pre-replay consumer to be fenced off',
      60_000,
    );
    expect(exitCode).toBe(75);
    expect(before.tail(50)).toMatch(/fenced by a replay/);

    // Restarted (as its Deployment would be), it rebuilds everything from the earliest record.
    const after = await startService('consumer', env(), `${name}-after-replay`);
    await after.waitReady();
    await eventually(
      async () => ((await storedOffsetTotal(pool, consumerGroup)) === lines.length + extra.length ? true : undefined),
      'the replay to catch up',
      180_000,
    );
    await after.stop();
    expect(await compareWithOracle()).toBeGreaterThan(ENTITIES * 4);
  });
});
