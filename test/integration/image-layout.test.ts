/**
 * No Docker engine runs here, so the image is checked by rebuilding its final stage's file tree:
 * the paths the Dockerfile's last stage copies, production dependencies only (npm ci --omit=dev),
 * and every component started from it. A runtime import of a dev dependency, or a file the image
 * does not carry, fails here instead of in a cluster.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

/** The last stage of the Dockerfile: its COPY sources and destinations, its USER and CMD. */
function finalStage(): {
  copies: { from?: string; source: string; dest: string }[];
  user?: string;
  cmd?: string[];
  run: string[];
} {
  const lines = readFileSync(join(root, 'Dockerfile'), 'utf8').split('\n');
  const start = lines
    .map((l, i) => (/^FROM\s/i.test(l) ? i : -1))
    .filter((i) => i >= 0)
    .at(-1)!;
  const stage = lines.slice(start);
  const copies = stage
    .map((l) => /^COPY\s+(?:--from=(\S+)\s+)?(\S+)\s+(\S+)\s*$/i.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ ...(m[1] ? { from: m[1] } : {}), source: m[2]!, dest: m[3]! }));
  const user = stage.map((l) => /^USER\s+(\S+)/i.exec(l)?.[1]).find(Boolean);
  const cmdLine = stage.map((l) => /^CMD\s+(\[.*\])\s*$/i.exec(l)?.[1]).find(Boolean);
  return {
    copies,
    ...(user ? { user } : {}),
    ...(cmdLine ? { cmd: JSON.parse(cmdLine) as string[] } : {}),
    run: stage.filter((l) => /^RUN\s/i.test(l)),
  };
}

describe('container image (final stage rebuilt as a file tree)', () => {
  const app = mkdtempSync(join(tmpdir(), 'fs-image-'));
  const stage = finalStage();

  beforeAll(() => {
    // What each COPY brings, from where it would come in the build: the build stage compiles to
    // dist/ (we have it built), runtime-deps installs production node_modules, the rest is the context.
    for (const copy of stage.copies) {
      const dest = join(app, copy.dest);
      if (copy.from === 'runtime-deps') {
        cpSync(join(root, 'package.json'), join(app, 'package.json'));
        cpSync(join(root, 'package-lock.json'), join(app, 'package-lock.json'));
        execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
          cwd: app,
          stdio: 'pipe',
        });
        rmSync(join(app, 'package-lock.json'));
      } else if (copy.from === 'build') {
        cpSync(join(root, copy.source.replace(/^\/src\//, '')), dest, { recursive: true });
      } else {
        cpSync(join(root, copy.source), dest, { recursive: true });
      }
    }
  });

  afterAll(() => rmSync(app, { recursive: true, force: true }));

  it('runs as a numeric non-root user and ships neither npm nor sources', () => {
    expect(stage.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(stage.run.join('\n')).toMatch(/rm -rf .*\/usr\/local\/bin\/npm/);
    expect(stage.copies.map((c) => c.dest).sort()).toEqual([
      './dist/core',
      './dist/operator',
      './dist/services/consumer',
      './dist/services/ingest',
      './dist/services/serving',
      './node_modules',
      './package.json',
      './sql',
    ]);
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/jest'))).toBe(false);
  });

  it('carries only the runtime: no benchmarks, CRD generator, examples, local runner or tests', () => {
    for (const path of [
      'dist/bench',
      'dist/crds',
      'dist/examples',
      'dist/services/local-runner',
      'dist/test',
      'bench',
      'test',
    ]) {
      expect([path, existsSync(join(app, path))]).toEqual([path, false]);
    }
    expect(readdirSync(join(app, 'dist')).sort()).toEqual(['core', 'operator', 'services']);
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
    expect(existsSync(join(app, entry))).toBe(true);
    const started = spawnSync(process.execPath, [entry], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(started.stderr).not.toMatch(/Cannot find module/);
    expect(started.status).toBe(1);
    expect(`${started.stdout}${started.stderr}`).toMatch(expected);
  });

  it('the default CMD is the serving entry point, and the operator starts consumers with a path the image has', () => {
    expect(stage.cmd).toEqual(['node', 'dist/services/serving/main.js']);
    const consumerCommand = readFileSync(join(root, 'operator/reconcile/consumer.ts'), 'utf8').match(
      /command: \['node', '([^']+)'\]/,
    )?.[1];
    expect(consumerCommand).toBe('dist/services/consumer/main.js');
    expect(existsSync(join(app, consumerCommand!))).toBe(true);
  });
});
