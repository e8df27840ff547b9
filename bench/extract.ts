/**
 * The consumer's per-event work before any I/O: compiling a record into typed values (JSON parse,
 * depth check, validation of every feature type and the event time). Prints ns per event.
 *   node dist/bench/extract.js [--events 1000000] [--core dist/core]   (--core: another build's core/, to compare)
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type * as Extract from '../core/events/extract';
import type * as Schema from '../core/featuregroup/schema';
import type * as Compiled from '../core/featuregroup/compiled';

/* eslint-disable @typescript-eslint/no-require-imports -- `--core` loads another build's core/ at run time, to compare. */
function main(): void {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      core: { type: 'string', default: join(__dirname, '..', 'core') },
    },
  });
  const core = resolve(values.core);
  const { compileExtractor } = require(join(core, 'events/extract')) as typeof Extract;
  const { featureGroupSpecSchema } = require(join(core, 'featuregroup/schema')) as typeof Schema;
  const spec = featureGroupSpecSchema.parse({
    entity: { name: 'user', keyField: 'entity_id' },
    source: { topic: 'bench', eventTimeField: 'timestamp' },
    features: [
      { name: 'last_action', type: 'string', from: 'action' },
      { name: 'last_page', type: 'string', from: 'page' },
      { name: 'last_amount', type: 'float64', from: 'amount' },
      { name: 'qty', type: 'int64', from: 'qty' },
      { name: 'seen', type: 'timestamp', from: 'timestamp' },
      { name: 'meta', type: 'json', from: 'meta' },
    ],
  });
  // Builds before the compiled group took the spec itself.
  const compiledModule = join(core, 'featuregroup/compiled.js');
  const extract = existsSync(compiledModule)
    ? compileExtractor(
        (require(compiledModule) as typeof Compiled).compileGroup({ namespace: 'default', name: 'bench' }, spec),
      )
    : (compileExtractor as unknown as (s: typeof spec) => ReturnType<typeof compileExtractor>)(spec);
  const count = Number(values.events);
  const base = Date.parse('2026-01-01T00:00:00Z');
  const records = Array.from({ length: 1_000 }, (_, n) => ({
    value: Buffer.from(
      JSON.stringify({
        entity_id: `user_${n}`,
        action: 'click',
        page: `/p/${n}`,
        amount: n / 100,
        qty: n,
        timestamp: new Date(base + n).toISOString(),
        meta: { ref: `r${n}`, tags: ['a', 'b'] },
      }),
    ),
    timestamp: base + n,
  }));
  let valid = 0;
  for (let i = 0; i < 100_000; i++) if (extract(records[i % 1_000]!).kind === 'event') valid++; // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) if (extract(records[i % 1_000]!).kind === 'event') valid++;
  const ns = Number(process.hrtime.bigint() - start) / count;
  console.log(
    JSON.stringify({
      benchmark: 'extract',
      command: `node dist/bench/extract.js --events ${count}`,
      core,
      events: count,
      ns_per_event: Math.round(ns),
      valid,
    }),
  );
}

main();
