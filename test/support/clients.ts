import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

/** The real clients' Python environment (test/clients/python-env.sh, built once into the cache); missing, the caller fails. */
export function pythonEnv(): string {
  const built = spawnSync('bash', [join(root, 'test/clients/python-env.sh'), 'path'], {
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (built.status !== 0) throw new Error(`the Python clients' environment could not be built:\n${built.stderr}`);
  return built.stdout.trim();
}
