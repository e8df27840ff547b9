/**
 * The product image, built for real from the Dockerfile with buildah (test/servers/image.sh:
 * a debootstrap base with Node from npm, no Docker engine, no pulls), and run: every component
 * starts from it as its numeric non-root user and explains missing configuration; it carries the
 * four processes' compiled code and production dependencies only. (This replaces the earlier
 * rebuild of the final stage as a file tree.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const script = join(root, 'test/servers/image.sh');

const image = (...args: string[]) => spawnSync('bash', [script, ...args], { encoding: 'utf8', timeout: 900_000 });

/** Runs a shell command in a fresh container of the image; its exit status and output. */
function inImage(command: string): { status: number | null; output: string } {
  const run = image('run', 'sh', '-c', command);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('the image, built with buildah and run', () => {
  beforeAll(() => {
    const built = image('build');
    if (built.status !== 0) throw new Error(`the image could not be built:\n${built.stderr.slice(-4000)}`);
  });

  it('runs as a numeric non-root user, serving by default, from /app', () => {
    const [user, cmd, workdir] = image(
      'inspect',
      '{{.OCIv1.Config.User}}|{{range .OCIv1.Config.Cmd}}{{.}} {{end}}|{{.OCIv1.Config.WorkingDir}}',
    )
      .stdout.trim()
      .split('|');
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(cmd!.trim().split(' ')).toEqual(['node', 'dist/services/serving/main.js']);
    expect(workdir).toBe('/app');
    expect(inImage('id -u').output.trim()).toBe(user!.split(':')[0]);
  });

  it('carries the runtime only: no npm, compiler, test tools, sources, benchmarks or local runner', () => {
    const listing = inImage(
      'ls -1 /app /app/dist /app/dist/services; command -v npm npx tsc || true; ls node_modules | grep -xE "typescript|jest|eslint|prettier" || true',
    );
    expect(listing.output.split('\n').filter(Boolean)).toEqual(
      [
        '/app:',
        'dist',
        'node_modules',
        'package.json',
        'sql',
        '',
        '/app/dist:',
        'core',
        'operator',
        'services',
        '',
        '/app/dist/services:',
        'consumer',
        'ingest',
        'serving',
      ].filter(Boolean),
    );
  });

  it.each([
    [
      'serving (the default CMD)',
      'dist/services/serving/main.js',
      /serving failed to start: invalid configuration: DATABASE_URL/,
    ],
    ['ingest', 'dist/services/ingest/main.js', /invalid configuration: KAFKA_BROKERS/],
    ['consumer (the operator starts it)', 'dist/services/consumer/main.js', /invalid configuration: .*DATABASE_URL/],
    ['operator', 'dist/operator/main.js', /operator failed to start: invalid configuration: DATABASE_URL/],
  ])('%s loads every module it needs from the image and explains missing configuration', (_label, entry, expected) => {
    const run = inImage(`exec node ${entry}`);
    expect(run.output).not.toMatch(/Cannot find module/);
    expect(run.status).not.toBe(0);
    expect(run.output).toMatch(expected);
  });

  it('the operator starts consumers with a command the image has', () => {
    const consumerCommand = readFileSync(join(root, 'operator/reconcile/consumer.ts'), 'utf8').match(
      /command: \['node', '([^']+)'\]/,
    )?.[1];
    expect(consumerCommand).toBe('dist/services/consumer/main.js');
    expect(inImage(`test -f ${consumerCommand!}`).status).toBe(0);
  });
});
