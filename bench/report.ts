/**
 * Turns one `make bench` results file into bench/REPORT.md: machine facts, every figure with the
 * command that produced it, ratios to the ceilings measured in the same run, targets met or not.
 *   node dist/bench/report.js bench/results/<date>.json > bench/REPORT.md
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

type Result = Record<string, unknown> & { benchmark: string };
interface Results {
  machine: Record<string, unknown>;
  results: Result[];
}

const file = process.argv[2];
if (!file) {
  console.error('usage: node dist/bench/report.js bench/results/<date>.json');
  process.exit(2);
}
const parsed = JSON.parse(readFileSync(file, 'utf8')) as Results;
const { machine } = parsed;
// A results file of an older run may hold a captured log line as a "result": not a figure.
const results = parsed.results.filter((r) => typeof r.benchmark === 'string');
const find = (benchmark: string, where: Record<string, unknown> = {}): Result | undefined =>
  results.find((r) => r.benchmark === benchmark && Object.entries(where).every(([k, v]) => r[k] === v));
const num = (r: Result | undefined, key: string): number | undefined =>
  r && typeof r[key] === 'number' ? r[key] : undefined;
const fmt = (x: number | undefined, unit = ''): string =>
  x === undefined ? 'not measured' : `${x.toLocaleString('en-US')}${unit}`;

const valueIngest = num(find('consumer_throughput_value_features'), 'events_per_second');
const aggregateIngest = num(find('consumer_throughput_4_values_4_aggregates'), 'events_per_second');
const upsertCeiling = num(find('ceiling_postgres_bulk_upsert'), 'rows_per_second');
const kafkaCeiling = num(find('ceiling_kafka_consume'), 'events_per_second');
const pgbench = num(find('ceiling_pgbench_select'), 'tps');
const closedGet = num(find('serving_get_closed_loop'), 'requests_per_second');
const get2k = find('serving_get_open_loop', { rate_rps: 2000 });
const online100at500 = find('serving_online_open_loop', { entities_per_request: 100, rate_rps: 500 });
const freshness = find('freshness');
const feastFreshness = find('feast_freshness');
const httpIngest100 = num(find('http_ingest_closed_loop', { events_per_request: 100 }), 'events_per_second');
const groupsServed = num(find('serving_setup'), 'groups');
const protoPg = num(find('prototype_pg_closed_loop'), 'requests_per_second');
const protoExpress = find('prototype_express_closed_loop');
const protoExpressOpen = find('prototype_express_open_loop');
const oursOnline = (size: number) =>
  num(find('serving_online_closed_loop', { entities_per_request: size }), 'requests_per_second');
const feastOnline = (size: number) =>
  num(find('feast_online_closed_loop', { entities_per_request: size }), 'requests_per_second');
const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 100) / 100 : undefined;
const soak = find('serving_soak');
const soakGrowth = num(soak, 'rss_growth_mb_first_to_last');
const soakFirst = num(soak, 'rss_mb_first');
const p99 = (r: Result | undefined) => num(r, 'p99_ms');

const targets: [string, string, boolean | undefined][] = [
  [
    'ingest, value features only, one consumer',
    `≥ 100,000 events/s: ${fmt(valueIngest)}`,
    valueIngest === undefined ? undefined : valueIngest >= 100_000,
  ],
  [
    'ingest with aggregates, one consumer',
    `≥ 50,000 events/s: ${fmt(aggregateIngest)}`,
    aggregateIngest === undefined ? undefined : aggregateIngest >= 50_000,
  ],
  [
    `serving GET p99, open loop 2,000 rps, ${fmt(groupsServed)} groups registered`,
    `≤ 5 ms: ${fmt(p99(get2k), ' ms')}`,
    get2k ? (p99(get2k) ?? Infinity) <= 5 && num(get2k, 'errors') === 0 : undefined,
  ],
  [
    'serving GET closed loop / bare node:http + pg, same lookup',
    `≥ 0.8: ${fmt(ratio(closedGet, protoPg))}`,
    ratio(closedGet, protoPg) === undefined ? undefined : ratio(closedGet, protoPg)! >= 0.8,
  ],
  [
    'serving GET vs bare Express + pg: closed loop ≥ 0.8×, p99 at 2,000 rps ≤ 1.25×',
    `${fmt(ratio(closedGet, num(protoExpress, 'requests_per_second')))}× / ${fmt(ratio(p99(get2k), p99(protoExpressOpen)))}×`,
    protoExpress && get2k
      ? (ratio(closedGet, num(protoExpress, 'requests_per_second')) ?? 0) >= 0.8 &&
        (ratio(p99(get2k), p99(protoExpressOpen)) ?? Infinity) <= 1.25
      : undefined,
  ],
  [
    'POST /get-online-features, 100 entities, p99 at 500 rps',
    `≤ 15 ms: ${fmt(p99(online100at500), ' ms')}`,
    online100at500 ? (p99(online100at500) ?? Infinity) <= 15 && num(online100at500, 'errors') === 0 : undefined,
  ],
  [
    'closed loop / Feast, 1 entity (same core, one worker each)',
    `≥ 5×: ${fmt(ratio(oursOnline(1), feastOnline(1)))}×`,
    ratio(oursOnline(1), feastOnline(1)) === undefined ? undefined : ratio(oursOnline(1), feastOnline(1))! >= 5,
  ],
  [
    'closed loop / Feast, 100 entities',
    `≥ 10×: ${fmt(ratio(oursOnline(100), feastOnline(100)))}×`,
    ratio(oursOnline(100), feastOnline(100)) === undefined
      ? undefined
      : ratio(oursOnline(100), feastOnline(100))! >= 10,
  ],
  [
    'freshness p99 at 1,000 events/s (Feast /push beside it)',
    `≤ 20 ms: ${fmt(p99(freshness), ' ms')} (Feast ${fmt(p99(feastFreshness), ' ms')})`,
    freshness ? (p99(freshness) ?? Infinity) <= 20 : undefined,
  ],
  [
    `serving RSS over a ${fmt(num(soak, 'seconds'))} s soak at 1,000 rps: flat (grows < 10%)`,
    `${fmt(soakFirst, ' MB')} → ${fmt(num(soak, 'rss_mb_last'), ' MB')} (max ${fmt(num(soak, 'rss_mb_max'), ' MB')})`,
    soakGrowth !== undefined && soakFirst !== undefined ? soakGrowth < 0.1 * soakFirst : undefined,
  ],
  [
    'HTTP ingest, batches of 100',
    `≥ 50,000 events/s: ${fmt(httpIngest100)}`,
    httpIngest100 === undefined ? undefined : httpIngest100 >= 50_000,
  ],
];

const lines: string[] = [];
lines.push('# Benchmark report', '');
lines.push(
  `Generated by \`node dist/bench/report.js ${file}\` from \`make bench\` (\`bench/run.sh\`), results file \`${basename(file)}\`.`,
  '',
);
lines.push(
  `Machine: ${Object.entries(machine)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(
      ', ',
    )}. Servers: PostgreSQL 15 (Debian, fsync on), Kafka 3.9.1 KRaft, all on this machine's loopback. In the serving comparisons each measured server runs alone on core 0 and the load generator on core 1 (taskset); Postgres is not pinned.`,
  '',
);
lines.push('## Targets', '', '| target | figure | met |', '| --- | --- | --- |');
for (const [what, figure, met] of targets)
  lines.push(`| ${what} | ${figure} | ${met === undefined ? '—' : met ? 'yes' : '**no**'} |`);
lines.push('', '## Ratios to the ceilings measured in the same run', '');
lines.push(
  `- value-only ingest / bulk-upsert ceiling: ${valueIngest && upsertCeiling ? `${fmt(valueIngest)} / ${fmt(upsertCeiling)} rows/s = ${(valueIngest / upsertCeiling).toFixed(2)}` : 'not measured'}`,
);
lines.push(
  `- value-only ingest / raw Kafka consume: ${valueIngest && kafkaCeiling ? `${fmt(valueIngest)} / ${fmt(kafkaCeiling)} = ${(valueIngest / kafkaCeiling).toFixed(2)}` : 'not measured'}`,
);
lines.push(
  `- aggregate ingest / bulk-upsert ceiling (a value row and one tile row per tile size, 2–3 here, per event): ${aggregateIngest && upsertCeiling ? (aggregateIngest / upsertCeiling).toFixed(2) : 'not measured'}`,
);
lines.push(
  `- serving closed loop / pgbench -S: ${closedGet && pgbench ? `${fmt(closedGet)} / ${fmt(pgbench)} tps = ${(closedGet / pgbench).toFixed(2)}` : 'not measured'}`,
);

// Where the time goes: serving beside bare servers and Feast, its own figures under load.
type Server = Record<string, number>;
const serverOf = (r: Result | undefined): Server | undefined => r?.['server'] as Server | undefined;
const cell = (x: number | undefined) => (x === undefined ? '—' : x.toLocaleString('en-US'));
lines.push('', '## Where the time goes', '');
lines.push(
  `### GET /features/{id}: ours beside the same lookup on bare servers (${fmt(groupsServed)} groups, same generator, same run, each server alone on its core)`,
  '',
  '| server | closed loop req/s | / bare node:http | open loop 2,000 rps p50 / p99 / p99.9 ms | CPU ms per request | minor GC avg ms | GC ms per 1k requests | writes per request |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
);
const servingRows: [string, Result | undefined, Result | undefined][] = [
  [
    'ours (Express served by createExpressServer, catalog, metrics, load shedding)',
    find('serving_get_closed_loop'),
    get2k,
  ],
  ['bare Express + pg, app.listen (bench/prototype-server.ts)', protoExpress, protoExpressOpen],
  [
    'bare Express + pg, createExpressServer',
    find('prototype_express-server_closed_loop'),
    find('prototype_express-server_open_loop'),
  ],
  ['bare node:http + pg', find('prototype_pg_closed_loop'), find('prototype_pg_open_loop')],
  [
    "bare node:http, fixed body, no database (the generator's floor)",
    find('prototype_static_closed_loop'),
    find('prototype_static_open_loop'),
  ],
];
for (const [what, closed, open] of servingRows) {
  const rps = num(closed, 'requests_per_second');
  lines.push(
    `| ${what} | ${fmt(rps)} | ${fmt(ratio(rps, protoPg))} | ${open ? `${cell(num(open, 'p50_ms'))} / ${cell(p99(open))} / ${cell(num(open, 'p999_ms'))}` : '—'} | ${cell(serverOf(open)?.['cpu_ms_per_request'])} | ${cell(serverOf(open)?.['gc_minor_avg_ms'])} | ${cell(serverOf(open)?.['gc_ms_per_1k_requests'])} | ${cell(serverOf(open)?.['write_syscalls_per_request'])} |`,
  );
}
lines.push(
  '',
  '### POST /get-online-features: ours beside Feast (same bodies, rates and connections; each server one process or worker on one core)',
  '',
  '| server | entities | closed loop req/s | p99 ms at the open-loop rates (rps: ms) | CPU ms per request (closed loop) |',
  '| --- | --- | --- | --- | --- |',
);
for (const size of [1, 100]) {
  for (const [who, closedName, openName] of [
    ['ours', 'serving_online_closed_loop', 'serving_online_open_loop'],
    ['Feast 0.67, Postgres online store', 'feast_online_closed_loop', 'feast_online_open_loop'],
  ] as const) {
    const closed = find(closedName, { entities_per_request: size });
    const opens = results.filter((r) => r.benchmark === openName && r['entities_per_request'] === size);
    const rates = opens
      .map(
        (r) =>
          `${cell(num(r, 'rate_rps'))}: ${typeof r['not_run'] === 'string' ? 'does not keep up' : `${cell(p99(r))}${(num(r, 'achieved_rps') ?? 0) < 0.95 * (num(r, 'rate_rps') ?? 0) ? ' (behind)' : ''}`}`,
      )
      .join(', ');
    lines.push(
      `| ${who} | ${size} | ${fmt(num(closed, 'requests_per_second'))} | ${rates || '—'} | ${cell(serverOf(closed)?.['cpu_ms_per_request'])} |`,
    );
  }
  lines.push(`| ours / Feast | ${size} | ${fmt(ratio(oursOnline(size), feastOnline(size)))}× | | |`);
}
const feastSetup = find('feast_setup');
if (feastSetup)
  lines.push(
    '',
    `Feast's entities (${fmt(num(feastSetup, 'entities'))}) were written through its SDK (\`write_to_online_store\`, ${fmt(num(feastSetup, 'rows_per_second'))} rows/s) into its own schema of the same Postgres; \`feast serve\` ran with 1 worker, no access log, no worker recycling (\`bench/feast-peer.ts\`).`,
  );
lines.push(
  '',
  '### Serving under load: its own figures in each phase (/metrics before and after, /proc)',
  '',
  '| phase | p99 ms | CPU ms / request | GC ms / 1k requests | minor GCs / 1k requests | GC pauses > 10 ms | event-loop delay p99 / max ms | RSS MB |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
);
for (const r of results.filter((x) => x.benchmark.startsWith('serving_') && serverOf(x))) {
  const server = serverOf(r)!;
  const what = [
    r.benchmark.replace('serving_', ''),
    num(r, 'entities_per_request') !== undefined ? `${cell(num(r, 'entities_per_request'))} entities` : '',
    num(r, 'rate_rps') !== undefined ? `${cell(num(r, 'rate_rps'))} rps` : '',
    num(r, 'pool_size') !== undefined ? `pool ${cell(num(r, 'pool_size'))}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  lines.push(
    `| ${what} | ${cell(p99(r))} | ${cell(server['cpu_ms_per_request'])} | ${cell(server['gc_ms_per_1k_requests'])} | ${cell(server['gc_minor_per_1k_requests'])} | ${cell(server['gc_pauses_over_10ms'])} | ${cell(server['eventloop_delay_p99_ms'])} / ${cell(server['eventloop_delay_max_ms'])} | ${cell(server['rss_mb'])} |`,
  );
}
if (soak)
  lines.push(
    '',
    `RSS during the soak, every 10 s (MB): ${(soak['rss_mb_samples'] as number[] | undefined)?.join(', ') ?? 'not sampled'}.`,
  );
lines.push('', '### Postgres execution time per event in the consumer (pg_stat_statements, µs)', '');
for (const name of ['consumer_throughput_value_features', 'consumer_throughput_4_values_4_aggregates']) {
  const postgres = find(name)?.['postgres_exec_us_per_event'];
  lines.push(
    `- ${name}: ${
      postgres && typeof postgres === 'object'
        ? Object.entries(postgres)
            .map(([k, v]) => `${k} ${String(v)}`)
            .join(', ')
        : typeof postgres === 'string'
          ? postgres
          : 'not measured'
    }`,
  );
}
interface ProfileResult {
  component: string;
  summary: {
    total_ms: number;
    by_owner: { owner: string; percent: number }[];
    top_functions: { function: string; owner: string; percent: number }[];
  };
}
for (const r of results.filter((x) => x.benchmark === 'cpu_profile') as unknown as ProfileResult[]) {
  const idle = r.summary.by_owner.find((o) => o.owner === '(idle)')?.percent ?? 0;
  const busy = (p: number) => `${Math.round((p / Math.max(1, 100 - idle)) * 1000) / 10}%`;
  lines.push(
    '',
    `### CPU profile: ${r.component} (\`node --cpu-prof\`, ${fmt(r.summary.total_ms)} ms sampled, ${idle}% idle; shares of busy time)`,
    '',
  );
  lines.push(
    `- by owner: ${r.summary.by_owner
      .filter((o) => o.owner !== '(idle)')
      .slice(0, 10)
      .map((o) => `${o.owner} ${busy(o.percent)}`)
      .join(', ')}`,
  );
  lines.push(
    `- top functions: ${r.summary.top_functions
      .slice(0, 8)
      .map((f) => `\`${f.function}\` (${f.owner}) ${busy(f.percent)}`)
      .join(', ')}`,
  );
}

// The misses, read from this run's own figures.
const aggregatePostgres = find('consumer_throughput_4_values_4_aggregates')?.['postgres_exec_us_per_event'] as
  Record<string, number> | undefined;
lines.push('', '## Reading the misses', '');
lines.push(
  `- **Aggregate ingest** is Postgres-bound: per event the tile upsert takes ${fmt(aggregatePostgres?.['tiles_upsert'])} µs and the value upsert ${fmt(aggregatePostgres?.['values_upsert'])} µs of Postgres execution time, ` +
    'while the consumer process waits on it (idle share in its profile above). An event writes a value row and one tile row per distinct tile size (three sizes in this benchmark: 1h, 1d, 7d windows); ' +
    'tiles already hold every aggregate of a size in one row, and batches whose keys are unique skip the GROUP BY fold. What would lift it further: binary COPY into a staging table instead of text arrays (pg serialises arrays in JS: `prepareValue`/`escapeElement` above), or more Postgres cores.',
);
const staticOpen = p99(find('prototype_static_open_loop'));
const pgOpen = p99(find('prototype_pg_open_loop'));
lines.push(
  `- **Serving GET p99 at 2,000 rps**: ours ${fmt(p99(get2k), ' ms')}, the same lookup on bare node:http ${fmt(pgOpen, ' ms')}, a fixed body with no database ${fmt(staticOpen, ' ms')} (the floor of this generator and loopback on two shared cores). ` +
    'What is left is what any Node server here pays: the response write (`writev`, in which loopback delivers to the receiver), Postgres on the same two cores, and the generator. ' +
    `The tail came from V8's garbage collector: Express swaps the prototype of every request and response (\`Object.setPrototypeOf\`). In this run a bare Express app started with \`app.listen\` averaged ${fmt(serverOf(protoExpressOpen)?.['gc_minor_avg_ms'], ' ms')} per scavenge at 2,000 rps and ${fmt(serverOf(protoExpressOpen)?.['gc_ms_per_1k_requests'], ' ms')} of GC per 1,000 requests; the same app served by \`createExpressServer\` (\`core/http/express-server.ts\`, whose requests and responses are born with Express's prototypes, so the swap changes nothing) ${fmt(serverOf(find('prototype_express-server_open_loop'))?.['gc_minor_avg_ms'], ' ms')} and ${fmt(serverOf(find('prototype_express-server_open_loop'))?.['gc_ms_per_1k_requests'], ' ms')}, bare node:http ${fmt(serverOf(find('prototype_pg_open_loop'))?.['gc_minor_avg_ms'], ' ms')} and ${fmt(serverOf(find('prototype_pg_open_loop'))?.['gc_ms_per_1k_requests'], ' ms')}. Serving runs on createExpressServer.`,
);
lines.push(
  `- **Against Feast**: ${fmt(ratio(oursOnline(1), feastOnline(1)))}× its closed-loop throughput for 1 entity and ${fmt(ratio(oursOnline(100), feastOnline(100)))}× for 100, on the same core. ` +
    'Per request both pay the same Postgres lookups; what separates them is the CPU per request in the table above. Where a ratio misses its target, Postgres (sharing the two cores) and the generator set the ceiling: see the bare node:http row for what no Node server here can pass.',
);
lines.push('', '## Every figure', '', '| benchmark | figures | command |', '| --- | --- | --- |');
for (const r of results.filter((x) => x.benchmark !== 'cpu_profile')) {
  const { benchmark, command, ...figures } = r;
  lines.push(
    `| ${benchmark} | ${Object.entries(figures)
      .map(
        ([k, v]) =>
          `${k}: ${typeof v === 'number' ? v.toLocaleString('en-US') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`,
      )
      .join('; ')} | ${typeof command === 'string' ? `\`${command}\`` : '`node dist/bench/platform.js`'} |`,
  );
}
lines.push(
  '',
  'Open-loop latencies are measured from when each request was due (coordinated omission corrected), by `bench/load.ts`.',
);
console.log(lines.join('\n'));
