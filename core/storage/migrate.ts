import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { PLATFORM_SCHEMA } from './identifiers';

/** Serialises concurrent migrators (several pods starting at once) on one advisory lock. */
const MIGRATION_LOCK = 727_210_001;
const MIGRATION_FILE = /^(\d{3})_[a-z0-9_]+\.sql$/;

export interface Migration {
  version: string;
  file: string;
}

export async function listMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file) => {
    const match = MIGRATION_FILE.exec(file);
    if (!match) throw new Error(`migration ${file} must be named NNN_name.sql`);
    return { version: match[1]!, file: join(dir, file) };
  });
}

/** Applies the migrations not yet applied, in order, each in its own transaction. Returns their versions. */
export async function migrate(pool: Pool, dir: string): Promise<string[]> {
  const migrations = await listMigrations(dir);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${PLATFORM_SCHEMA}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${PLATFORM_SCHEMA}.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await client.query<{ version: string }>(`SELECT version FROM ${PLATFORM_SCHEMA}.schema_migrations`)).rows.map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      const sql = await readFile(m.file, 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query(`INSERT INTO ${PLATFORM_SCHEMA}.schema_migrations (version) VALUES ($1)`, [m.version]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.file} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
