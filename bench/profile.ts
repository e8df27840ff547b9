/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): where the process spent its time, by owner
 * (our code, each npm package, Node's own modules, V8's garbage collector, idle) and by function.
 *   node dist/bench/profile.js <file.cpuprofile> [--top 15]
 * Prints one JSON line; bench/report.ts renders it.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  total_ms: number;
  /** Share of the sampled time by owner, largest first, idle included. */
  by_owner: { owner: string; percent: number }[];
  /** Functions by self time, idle excluded. */
  top_functions: { function: string; owner: string; percent: number }[];
}

/** Who a frame belongs to: an npm package, a Node module, our code, or a V8 pseudo-frame. */
export function ownerOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const ours = /\/dist\/([^/]+)\//.exec(url);
  return ours ? `ours:${ours[1]}` : url;
}

export function summarise(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  const owners = new Map<string, number>();
  const functions = new Map<string, { owner: string; micros: number }>();
  for (const [id, micros] of selfMicros) {
    const { callFrame } = byId.get(id)!;
    const owner = ownerOf(callFrame.url, callFrame.functionName);
    owners.set(owner, (owners.get(owner) ?? 0) + micros);
    if (owner === '(idle)') continue;
    const file = callFrame.url.split('/').slice(-1)[0] ?? '';
    const key =
      `${callFrame.functionName || '(anonymous)'} ${file}${file ? `:${callFrame.lineNumber + 1}` : ''}`.trim();
    const entry = functions.get(key) ?? { owner, micros: 0 };
    entry.micros += micros;
    functions.set(key, entry);
  }
  const percent = (micros: number) => Math.round((1000 * micros) / total) / 10;
  return {
    total_ms: Math.round(total / 1000),
    by_owner: [...owners].sort((a, b) => b[1] - a[1]).map(([owner, micros]) => ({ owner, percent: percent(micros) })),
    top_functions: [...functions]
      .sort((a, b) => b[1].micros - a[1].micros)
      .slice(0, top)
      .map(([fn, { owner, micros }]) => ({ function: fn, owner, percent: percent(micros) })),
  };
}

if (require.main === module) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '15' } },
  });
  const file = positionals[0];
  if (!file) {
    console.error('usage: node dist/bench/profile.js <file.cpuprofile> [--top 15]');
    process.exit(2);
  }
  console.log(JSON.stringify(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(values.top))));
}
