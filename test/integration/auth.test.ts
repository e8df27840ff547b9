/**
 * Bearer-token auth on ingest and serving: tokens from a file (a mounted Secret), several at once
 * for rotation, one 401 for every way of failing, probes and metrics open, rotation without restart.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, type RunningService, startIngestAndServing } from '../support/services';

describe('bearer-token auth', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-auth-'));
  const tokensFile = join(dir, 'tokens');
  const [oldToken, newToken] = ['old-token-6f1c2a9e8d', 'new-token-b7e4d1c0a5'];
  let ingest: RunningService;
  let serving: RunningService;

  beforeAll(async () => {
    writeFileSync(tokensFile, `# rotation: both accepted\n${oldToken}\n${newToken}\n`);
    const env = { AUTH_TOKENS_FILE: tokensFile };
    [ingest, serving] = await startIngestAndServing('auth', env, env);
  });

  afterAll(async () => {
    await Promise.all([ingest?.stop(), serving?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const call = (service: RunningService, path: string, authorization?: string, body?: unknown) =>
    fetch(`${service.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        ...(authorization !== undefined ? { authorization } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  const event = { entity_id: 'auth-user', action: 'click', timestamp: new Date().toISOString() };

  it('refuses every way of not having a valid token with the same 401', async () => {
    const attempts = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from(`u:${oldToken}`).toString('base64')}`,
      `Bearer ${oldToken}x`,
      `Bearer ${oldToken.slice(0, -1)}`,
      `Bearer ${'a'.repeat(5000)}`,
    ];
    const bodies = new Set<string>();
    for (const authorization of attempts) {
      for (const [service, path, body] of [
        [serving, '/features/u1', undefined],
        [serving, '/v1/feature-groups', undefined],
        [ingest, '/v1/events', event],
      ] as const) {
        const response = await call(service, path, authorization, body);
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer realm="feature-store"');
        bodies.add(await response.text());
      }
    }
    expect([...bodies]).toEqual([
      JSON.stringify({ detail: 'a valid bearer token is required', code: 'E_UNAUTHORIZED' }),
    ]);
  });

  it('accepts each listed token, any case of the scheme', async () => {
    for (const authorization of [`Bearer ${oldToken}`, `bearer ${newToken}`]) {
      expect((await call(serving, '/v1/feature-groups', authorization)).status).toBe(200);
      expect((await call(ingest, '/v1/events', authorization, event)).status).toBe(202);
    }
  });

  it('leaves probes and metrics open for kubelet and Prometheus', async () => {
    for (const service of [ingest, serving]) {
      for (const path of ['/healthz', '/readyz', '/metrics']) expect((await call(service, path)).status).toBe(200);
    }
    expect((await call(serving, '/health')).status).toBe(200);
  });

  it('picks up a rotated token file without a restart', async () => {
    writeFileSync(tokensFile, `${newToken}\n`);
    const later = new Date(Date.now() + 2_000);
    utimesSync(tokensFile, later, later);
    await eventually(
      async () => ((await call(serving, '/v1/feature-groups', `Bearer ${oldToken}`)).status === 401 ? true : undefined),
      'the old token to be refused',
      15_000,
    );
    expect((await call(serving, '/v1/feature-groups', `Bearer ${newToken}`)).status).toBe(200);
    await eventually(
      async () => ((await call(ingest, '/v1/events', `Bearer ${oldToken}`, event)).status === 401 ? true : undefined),
      'ingest to refuse the old token',
      15_000,
    );
  });

  it('never writes a token into a log line', () => {
    const logs = [...ingest.output, ...serving.output].join('\n');
    expect(logs).not.toContain(oldToken);
    expect(logs).not.toContain(newToken);
    expect(logs).toMatch(/auth tokens loaded/);
  });
});
