/**
 * No secret in any log line: ingest, serving and a consumer run at debug level with a database
 * password and bearer tokens of their own, through their error paths (wrong and right tokens, a
 * database refusing a wrong password, bad input, an unknown group); afterwards no line of their
 * output holds a password or a token, plain, URL-encoded or base64.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { testGroupSpec } from '../support/oracle';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { eventually, explainedBy, requireEnv, startService, type RunningService } from '../support/services';

describe('secrets in logs', () => {
  const name = uniqueName('sec');
  const role = `fs_logtest_${randomBytes(4).toString('hex')}`;
  // Characters that URL-encode differently, so an encoded leak is caught too.
  const password = `pw/${randomBytes(12).toString('hex')}+=`;
  const wrongPassword = `wrong/${randomBytes(12).toString('hex')}`;
  const tokens = [`tok-${randomBytes(16).toString('hex')}`, `tok-${randomBytes(16).toString('hex')}`];
  const dir = mkdtempSync(join(tmpdir(), 'fs-secrets-'));
  const services: RunningService[] = [];
  let pool: Pool;

  const urlWith = (secret: string): string => {
    const url = new URL(requireEnv('DATABASE_URL'));
    url.username = role;
    url.password = secret;
    return url.toString();
  };

  beforeAll(async () => {
    pool = testPool();
    await registerGroup(pool, { namespace: 'default', name }, testGroupSpec(`${name}-events`));
    await pool.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password.replace(/'/g, "''")}'`);
    writeFileSync(join(dir, 'tokens'), `${tokens.join('\n')}\n`);
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    if (pool) {
      await dropRegisteredGroups(pool);
      await pool.query(`DROP ROLE IF EXISTS ${role}`);
      await pool.end();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes none of them, whatever went wrong', async () => {
    const env = {
      DATABASE_URL: urlWith(password),
      KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
      AUTH_TOKENS_FILE: join(dir, 'tokens'),
      LOG_LEVEL: 'debug',
    };
    const ingest = await startService(
      'ingest',
      { ...env, INGEST_TOPICS: `${name}-events`, INGEST_DEFAULT_TOPIC: `${name}-events` },
      `${name}-ingest`,
    );
    const serving = await startService('serving', env, `${name}-serving`);
    const consumer = await startService('consumer', { ...env, FEATURE_GROUP: `default/${name}` }, `${name}-consumer`);
    services.push(ingest, serving, consumer);
    await Promise.all([ingest.waitReady(), serving.waitReady(), consumer.waitReady()]);
    // A consumer of a group that does not exist, and services whose database refuses the password.
    const lost = await startService('consumer', { ...env, FEATURE_GROUP: 'default/no-such-group' }, `${name}-lost`);
    const refusedServing = await startService(
      'serving',
      { ...env, DATABASE_URL: urlWith(wrongPassword) },
      `${name}-refused-serving`,
    );
    const refusedConsumer = await startService(
      'consumer',
      { ...env, DATABASE_URL: urlWith(wrongPassword), FEATURE_GROUP: `default/${name}` },
      `${name}-refused-consumer`,
    );
    services.push(lost, refusedServing, refusedConsumer);

    const call = (service: RunningService, path: string, authorization: string | undefined, body?: string) =>
      fetch(`${service.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { ...(authorization ? { authorization } : {}), 'content-type': 'application/json' },
        body,
      });
    const event = JSON.stringify({ entity_id: 'secret-user', action: 'click', timestamp: new Date().toISOString() });
    // As a client would: a 503 (Kafka briefly unable to take the event) is retried after its Retry-After.
    const publish = async (authorization: string): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        const response = await call(ingest, '/v1/events', authorization, event);
        await response.arrayBuffer();
        if (response.status !== 503 || attempt === 10) return response.status;
        await new Promise((r) => setTimeout(r, Number(response.headers.get('retry-after') ?? 1) * 1_000));
      }
    };
    const accepted: number[] = [];
    for (const token of [...tokens, `${tokens[0]}x`, 'nope']) {
      const auth = `Bearer ${token}`;
      accepted.push(await publish(auth));
      await call(ingest, '/v1/events', auth, '{bad json');
      await call(serving, '/features/secret-user', auth);
      await call(
        serving,
        '/get-online-features',
        auth,
        JSON.stringify({ features: ['nope:x'], entities: { user: ['a'] } }),
      );
      await call(refusedServing, '/features/secret-user', auth).catch(() => undefined);
    }
    // The event is in Kafka once, for each of the two real tokens; the wrong ones are refused.
    expect(accepted).toEqual([202, 202, 401, 401]);
    const served = eventually(
      async () => {
        const response = await call(serving, '/features/secret-user', `Bearer ${tokens[1]}`);
        if (response.ok) return response.json() as Promise<unknown>;
        throw new Error(`serving answered ${response.status} ${await response.text()}`);
      },
      'the event to be served',
      60_000,
    );
    await explainedBy(served, { ingest, consumer, serving });
    // Give the failing ones time to log their retries.
    await new Promise((r) => setTimeout(r, 3_000));

    const secrets = [password, wrongPassword, ...tokens];
    const forms = secrets.flatMap((s) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]);
    // The whole log of each process (RunningService keeps only the last lines in memory).
    const logOf = (label: string) => readFileSync(join(__dirname, '../../.local/test-logs', `${label}.log`), 'utf8');
    const labels = ['ingest', 'serving', 'consumer', 'lost', 'refused-serving', 'refused-consumer'].map(
      (l) => `${name}-${l}`,
    );
    const lines = labels.flatMap((label) =>
      logOf(label)
        .split('\n')
        .map((line) => `${label}: ${line}`),
    );
    expect(lines.length).toBeGreaterThan(20);
    // The failing services did log why they failed (so the check read real error lines).
    expect(logOf(`${name}-refused-consumer`)).toMatch(/password authentication failed/);
    expect(lines.filter((line) => forms.some((f) => line.includes(f)))).toEqual([]);
  });
});
