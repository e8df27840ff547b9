import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

/**
 * Starts the real servers the integration tests need (Postgres, Kafka, kube-apiserver+etcd) unless
 * the caller gave DATABASE_URL, KAFKA_BROKERS and KUBECONFIG. A server that cannot start fails the run; nothing is skipped.
 */
export default async function globalSetup(): Promise<void> {
  if (!existsSync(join(root, 'dist/services/consumer/main.js'))) {
    throw new Error(
      'dist/ is missing: integration tests run the built services. Run `npm run build` (make test does).',
    );
  }
  if (process.env.DATABASE_URL && process.env.KAFKA_BROKERS && process.env.KUBECONFIG) return;
  execFileSync('bash', [join(root, 'test/servers/up.sh')], { stdio: 'inherit', env: process.env });
  const stateDir = process.env.FS_STATE_DIR ?? join(root, '.local');
  const envFile = join(stateDir, 'servers.env');
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match) process.env[match[1]!] = match[2]!;
  }
  if (!process.env.DATABASE_URL || !process.env.KAFKA_BROKERS || !process.env.KUBECONFIG) {
    throw new Error(`${envFile} did not name DATABASE_URL, KAFKA_BROKERS and KUBECONFIG`);
  }
  process.env.FS_TEST_STARTED_SERVERS = '1';
}
