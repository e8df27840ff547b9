/**
 * Feast's own Python SDK (pinned in test/clients/requirements.txt), unmodified, against the
 * platform: `feast apply` of examples/feast (the mirror of examples/user-activity.yaml), reads with
 * and without full feature names, and `store.push` and `store.write_to_online_store`, whose writes
 * go through Kafka and the group's consumer and are read back through the SDK. The expected values
 * come from the events this test sent, not from the platform.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { parse } from 'yaml';
import type { FeatureGroupSpecInput } from '../../core/featuregroup/schema';
import {
  createTopic,
  dropRegisteredGroups,
  registerGroup,
  storedOffsetTotal,
  testKafka,
  testPool,
  uniqueName,
} from '../support/platform';
import { pythonEnv } from '../support/clients';
import { eventually, serverEnv, startService, type RunningService } from '../support/services';

const root = join(__dirname, '..', '..');

describe("Feast's SDK against the platform", () => {
  const name = uniqueName('feast');
  const topic = `${name}-events`;
  const repo = mkdtempSync(join(tmpdir(), 'fs-feast-'));
  const services: RunningService[] = [];
  let pool: Pool;
  let servingUrl: string;
  let output: {
    read: Record<string, unknown[]>;
    read_full: Record<string, unknown[]>;
    written: Record<string, unknown[]>;
  };

  const events = [
    { entity_id: 'u1', action: 'view', page: '/a', amount: 1.5, timestamp: '2026-01-01T00:00:01Z' },
    { entity_id: 'u1', action: 'click', page: '/b', amount: 2.25, timestamp: '2026-01-01T00:00:03Z' },
    // Older than u1's click: it must not win.
    { entity_id: 'u1', action: 'late', page: '/old', amount: 9, timestamp: '2026-01-01T00:00:02Z' },
    { entity_id: 'u2', action: 'buy', page: '/c', amount: 10, timestamp: '2026-01-01T00:00:05Z' },
  ];

  beforeAll(async () => {
    const env = pythonEnv();
    pool = testPool();
    await createTopic(testKafka(), topic, 2);
    // examples/user-activity.yaml itself, on a topic of its own.
    const manifest = parse(readFileSync(join(root, 'examples/user-activity.yaml'), 'utf8')) as {
      spec: FeatureGroupSpecInput;
    };
    await registerGroup(
      pool,
      { namespace: 'default', name },
      { ...manifest.spec, source: { ...manifest.spec.source, topic } },
    );
    const server = serverEnv();
    const started = await Promise.all([
      startService('ingest', server, `${name}-ingest`),
      startService('consumer', { ...server, FEATURE_GROUP: `default/${name}` }, `${name}-consumer`),
      startService('serving', { ...server, REGISTRY_REFRESH_MS: '200' }, `${name}-serving`),
    ]);
    services.push(...started);
    await Promise.all(started.map((s) => s.waitReady()));
    const [ingest, , serving] = started;
    servingUrl = serving!.url;
    const sent = await fetch(`${ingest!.url}/v1/events?topic=${topic}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(events),
    });
    expect(sent.status).toBe(202);
    await eventually(
      async () =>
        (await storedOffsetTotal(pool, `featurestore.default.${name}`)) === events.length ? true : undefined,
      'the consumer to store the events',
    );

    // examples/feast, with the group's name and serving's URL.
    cpSync(join(root, 'examples/feast'), repo, { recursive: true });
    const yaml = join(repo, 'feature_store.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('http://127.0.0.1:8080', serving!.url));
    const definitions = join(repo, 'user_activity.py');
    writeFileSync(definitions, readFileSync(definitions, 'utf8').replaceAll('"user-activity', `"${name}`));
    const run = spawnSync(
      join(env, 'bin/python'),
      [join(root, 'test/clients/feast_sdk_check.py'), repo, name, 'u1', 'u2', 'u3'],
      {
        encoding: 'utf8',
        timeout: 300_000,
        env: { ...process.env, PATH: `${join(env, 'bin')}:${process.env.PATH ?? ''}`, FEAST_USAGE: 'False' },
      },
    );
    if (run.status !== 0)
      throw new Error(`the Feast SDK check failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
    output = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as typeof output;
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
    rmSync(repo, { recursive: true, force: true });
  });

  it('get_online_features: the newest value by event time per user, None where there is none', () => {
    expect(output.read).toEqual({
      user: ['u1', 'u2', 'u3'],
      last_action: ['click', 'buy', null],
      last_page: ['/b', '/c', null],
      last_amount: [2.25, 10, null],
      last_seen_at: ['2026-01-01T00:00:03Z', '2026-01-01T00:00:05Z', null],
    });
  });

  it('get_online_features with full feature names: view__feature', () => {
    expect(Object.keys(output.read_full)).toEqual([
      'user',
      ...['last_action', 'last_page', 'last_amount', 'last_seen_at'].map((f) => `${name}__${f}`),
    ]);
    expect(output.read_full[`${name}__last_action`]).toEqual(['click', 'buy', null]);
  });

  it('push and write_to_online_store go through Kafka and are read back through the SDK', () => {
    expect(output.written).toEqual({
      user: ['feast_pushed', 'feast_written'],
      last_action: ['pushed', 'written'],
      last_page: ['/feast', '/feast'],
      last_amount: [12.5, 12.5],
      last_seen_at: ['2026-02-03T04:05:06Z', '2026-02-03T04:05:06Z'],
    });
  });

  const post = (path: string, body: unknown) =>
    fetch(`${servingUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it("POST /push, Feast's feature-server push: answered once Kafka has it, then served; bad frames are 400s naming the column", async () => {
    const df = {
      user: ['http_pushed'],
      last_action: ['http'],
      event_timestamp: ['2026-03-01T00:00:00'],
      created: [null],
    };
    const pushed = await post('/push', { push_source_name: name, df, to: 'online' });
    expect([pushed.status, await pushed.json()]).toEqual([200, { status: 'success', written: 1 }]);
    const served = await eventually(async () => {
      const answer = await fetch(`${servingUrl}/features/http_pushed`);
      return answer.status === 200
        ? ((await answer.json()) as { features: Record<string, unknown>; last_updated: string })
        : undefined;
    }, 'the pushed row to be served');
    expect(served).toMatchObject({ features: { last_action: 'http' }, last_updated: '2026-03-01T00:00:00Z' });

    const offline = await post('/push', { push_source_name: name, df, to: 'offline' });
    expect([offline.status, ((await offline.json()) as { field: string }).field]).toEqual([400, 'to']);
    const ragged = await post('/write-to-online-store', {
      feature_view_name: name,
      df: { ...df, last_action: ['a', 'b'] },
    });
    expect([ragged.status, ((await ragged.json()) as { field: string }).field]).toEqual([400, 'df.last_action']);
    const noKey = await post('/write-to-online-store', {
      feature_view_name: name,
      df: { last_action: ['a'], event_timestamp: ['2026-03-01T00:00:00'] },
    });
    expect([noKey.status, ((await noKey.json()) as { field: string }).field]).toEqual([400, 'df.user']);
    const badValue = await post('/write-to-online-store', {
      feature_view_name: name,
      df: { ...df, last_amount: ['not a number'] },
    });
    expect(badValue.status).toBe(400);
    expect(((await badValue.json()) as { detail: string }).detail).toMatch(/row 0: feature last_amount/);
    const unknown = await post('/write-to-online-store', { feature_view_name: `${name}-nope`, df });
    expect([unknown.status, ((await unknown.json()) as { code: string }).code]).toEqual([404, 'E_UNKNOWN_GROUP']);
  });
});
