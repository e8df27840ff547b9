/**
 * The OpenAPI documents are the API: schemathesis (pinned in test/clients/requirements.txt) runs
 * every check it has against serving's and ingest's `/openapi.json`, with a bounded number of
 * examples per operation (SCHEMATHESIS_EXAMPLES, 50 in `make test`) and a fixed seed
 * (SCHEMATHESIS_SEED) so a failure replays. Zero failures are allowed. Serving has a registered
 * group with history, so requests that name it reach the reads and writes themselves.
 * When it was first run it found undocumented 400s, schema-valid requests refused (a 400 for a
 * name the schema allowed, for feature_service, for `to: "offline"`), 404s where a method is not
 * allowed (now 405), and a 413 where a 400 belongs; each of those fails this test again.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { dropRegisteredGroups, registerGroup, testPool, uniqueName } from '../support/platform';
import { pythonEnv } from '../support/clients';
import { serverEnv, startService, type RunningService } from '../support/services';

const root = join(__dirname, '..', '..');
const EXAMPLES = process.env.SCHEMATHESIS_EXAMPLES ?? '50';
const SEED = process.env.SCHEMATHESIS_SEED ?? '1';

/** schemathesis' report without its reproduction commands (a failing body can be megabytes). */
const readable = (output: string): string =>
  output
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('curl '))
    .map((line) => (line.length > 300 ? `${line.slice(0, 300)}…` : line))
    .join('\n');

describe('the OpenAPI documents, checked by schemathesis', () => {
  const name = uniqueName('contract');
  const services: RunningService[] = [];
  let pool: Pool;
  let env: string;

  beforeAll(async () => {
    env = pythonEnv();
    pool = testPool();
    await registerGroup(
      pool,
      { namespace: 'default', name },
      {
        entity: { name: 'user', keyField: 'entity_id' },
        source: { topic: `${name}-events`, eventTimeField: 'timestamp' },
        features: [
          { name: 'last_action', type: 'string', from: 'action' },
          { name: 'clicks_1h', type: 'int64', aggregate: { fn: 'count', window: '1h' } },
        ],
        history: { enabled: true },
      },
    );
    const started = await Promise.all([
      startService('serving', serverEnv(), `${name}-serving`),
      startService('ingest', serverEnv(), `${name}-ingest`),
    ]);
    services.push(...started);
    await Promise.all(started.map((s) => s.waitReady()));
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    if (pool) await dropRegisteredGroups(pool);
    await pool?.end();
  });

  it.each([
    ['serving', 0],
    ['ingest', 1],
  ])('%s: every check, 0 failures', (_label, index) => {
    const url = `${services[index]!.url}/openapi.json`;
    const run = spawnSync(
      join(env, 'bin/st'),
      [
        'run',
        url,
        '--checks',
        'all',
        '--max-examples',
        EXAMPLES,
        '--seed',
        SEED,
        '--request-timeout',
        '30',
        '--no-color',
      ],
      {
        // Its example database goes under .local/, not into the tree.
        cwd: join(root, '.local'),
        encoding: 'utf8',
        timeout: 600_000,
        maxBuffer: 256 * 1024 * 1024,
        env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' },
      },
    );
    const report = readable(`${run.stdout}\n${run.stderr}`);
    if (run.status !== 0) throw new Error(`schemathesis (exit ${run.status}) against ${url}:\n${report.slice(-8000)}`);
    expect(report).toMatch(/No issues found|\d+ passed/);
  });
});
