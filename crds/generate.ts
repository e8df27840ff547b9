import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { CRD_FILE, renderFeatureGroupCrd } from './featuregroup-crd';

const USAGE = 'usage: node dist/crds/generate.js [--check] [--out <file>]   (run from the repository root)';

/**
 * Writes crds/featuregroup.yaml from the zod schema (`make crds`), or with --check exits 1 when the
 * committed file differs from what would be written. Paths are relative to the working directory.
 */
export function main(argv: readonly string[]): number {
  let check = false;
  let out = CRD_FILE;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--check') check = true;
    else if (arg === '--out' && argv[i + 1] !== undefined) out = argv[++i]!;
    else {
      console.error(USAGE);
      return 2;
    }
  }
  const file = resolve(out);
  const shown = relative(process.cwd(), file) || file;
  const text = renderFeatureGroupCrd();

  if (check) {
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== text) {
      console.error(`${shown} is ${current === undefined ? 'missing' : 'stale'}: run make crds`);
      return 1;
    }
    console.log(`${shown} is up to date`);
    return 0;
  }

  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${shown}`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
