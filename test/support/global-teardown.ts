import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Stops the servers global-setup started; FS_KEEP_SERVERS=1 keeps them for the next run. */
export default async function globalTeardown(): Promise<void> {
  if (process.env.FS_TEST_STARTED_SERVERS !== '1' || process.env.FS_KEEP_SERVERS === '1') return;
  execFileSync('bash', [join(__dirname, '..', 'servers', 'down.sh')], { stdio: 'inherit' });
}
