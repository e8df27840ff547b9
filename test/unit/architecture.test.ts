/**
 * The layout's rules, read from the sources' import statements (type-only imports included):
 * no import cycles, core/ imports nothing outside core/, and each component (operator/, each
 * services/*) imports only core/ and itself.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const SOURCE_ROOTS = ['core', 'operator', 'services', 'crds'];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s+'(\.[^']+)'/g)) {
    const target = normalize(join(dirname(file), match[1]!));
    const resolved = [`${target}.ts`, `${target}.d.ts`, join(target, 'index.ts')].find((candidate) =>
      existsSync(join(ROOT, candidate)),
    );
    if (!resolved) throw new Error(`${file}: cannot resolve ${match[1]}`);
    found.push(resolved);
  }
  return found;
}

const graph = new Map(SOURCE_ROOTS.flatMap(sources).map((file) => [file, importsOf(file)]));
const component = (file: string): string =>
  file.startsWith('services/') ? file.split('/').slice(0, 2).join('/') : file.split('/')[0]!;

test('the import graph has no cycles', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]): void => {
    state.set(file, 'open');
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...path.slice(path.indexOf(next)), next].join(' -> '));
      else if (!state.has(next)) visit(next, [...path, next]);
    }
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file, [file]);
  expect(cycles).toEqual([]);
});

test('core/ imports only core/; a component imports only core/ and itself', () => {
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    for (const target of imports) {
      const allowed =
        target.startsWith('core/') || (!file.startsWith('core/') && component(target) === component(file));
      if (!allowed) violations.push(`${relative('.', file)} imports ${target}`);
    }
  }
  expect(violations).toEqual([]);
});
