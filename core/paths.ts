import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The directory holding package.json, found from this file whether run from source or dist/. */
export function projectRoot(from: string = __dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

export const migrationsDir = (): string => process.env.FEATURESTORE_SQL_DIR ?? join(projectRoot(), 'sql');
