/**
 * Stand-in for the operator on a machine without a cluster: applies the platform migrations, then
 * creates each FeatureGroup's table and registry row from YAML manifests.
 *   node dist/examples/register.js examples/user-activity.yaml [...]
 */
import { readFile } from 'node:fs/promises';
import { Pool } from 'pg';
import { databaseUrl, loadConfig } from '../core/config';
import { parseFeatureGroups } from '../core/featuregroup/manifest';
import { migrationsDir } from '../core/paths';
import { applyStore } from '../core/storage/store';
import { migrate } from '../core/storage/migrate';
import { z } from 'zod';

async function main(files: string[]): Promise<void> {
  if (files.length === 0) throw new Error('usage: register.js <manifest.yaml>...');
  const { DATABASE_URL } = loadConfig(z.object({ DATABASE_URL: databaseUrl }));
  const pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
  try {
    const applied = await migrate(pool, migrationsDir());
    if (applied.length) console.log(`applied migrations ${applied.join(', ')}`);
    for (const file of files) {
      for (const group of parseFeatureGroups(await readFile(file, 'utf8'), file)) {
        const ref = { namespace: group.metadata.namespace, name: group.metadata.name };
        const { table, statements } = await applyStore(pool, ref, group.spec, 1);
        console.log(`registered ${ref.namespace}/${ref.name} → features.${table}${statements.length ? ` (${statements.length} DDL)` : ''}`);
      }
    }
  } finally {
    await pool.end();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`register failed: ${(error as Error).message}`);
  process.exit(1);
});
