/**
 * Serving beside its peers, one run, one Postgres, one load generator (this process):
 *   ours        the serving process as shipped, with 10 groups registered, each holding every entity
 *   pg/express  the same lookup (one hand-written join of the 10 tables) on bare node:http + pg and
 *               in a bare Express app (bench/prototype-server.ts)
 *   static      node:http answering a fixed body: what this load generator and loopback allow
 *   feast       Feast's Python feature server (test/clients/requirements.txt), Postgres online store
 *               on the same Postgres, the same entities written through Feast's SDK
 * Every server runs as one process (Feast: one worker) pinned to `serverCpus`; run.sh pins the load
 * generator to the other core. While ours is loaded it is watched: GC and event-loop delay (its
 * /metrics, scraped before and after each phase), CPU and write syscalls per request (/proc), the
 * pool size swept at 2,000 rps, and RSS over a soak.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import type { Pool } from 'pg';
import { startFeast, type FeastPeer } from './feast-peer';
import { closedLoop, openLoop, type Target } from './load';
import { scrape, sumOf } from './metrics';
import { benchGroup, startComponent, stopComponent, type BenchGroup } from './setup';

export interface ServingBenchOptions {
  pool: Pool;
  /** The benchmark's own group (BENCH_VALUE_FEATURES): filled with the entities, kept afterwards. */
  group: BenchGroup;
  databaseUrl: string;
  seconds: number;
  entities: number;
  /** Groups registered (the benchmark's own plus extra ones), each holding every entity. */
  groups: number;
  port: number;
  serverCpus: string | undefined;
  soakSeconds: number;
  /** Feast's entities are written through its SDK (about 7,000 a second here), so it may hold fewer. */
  feastEntities: number;
  /** Which servers to measure: ours, prototypes, feast. */
  peers: ReadonlySet<string>;
  emit: (result: Record<string, unknown>) => void;
}

const CONNECTIONS = 8;
const OPEN_CONNECTIONS = 64;

/** The processes of `pid` and all its descendants (Feast: gunicorn and its worker). */
function processTree(pid: number): number[] {
  const children = readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
  );
  return [pid, ...children.flatMap(processTree)];
}

interface Counters {
  cpuTicks: number;
  writes: number;
  reads: number;
}

function counters(pid: number): Counters {
  let cpuTicks = 0;
  let writes = 0;
  let reads = 0;
  for (const p of processTree(pid)) {
    // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpuTicks += Number(fields[11]) + Number(fields[12]);
    const io = readFileSync(`/proc/${p}/io`, 'utf8');
    writes += Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN);
    reads += Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN);
  }
  return { cpuTicks, writes, reads };
}

const rssMb = (pid: number): number =>
  Math.round(
    processTree(pid).reduce(
      (sum, p) => sum + Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? NaN),
      0,
    ) / 102.4,
  ) / 10;

/** What bench/prototype-server.ts counts of its garbage collector (GET on its port + 1). */
interface GcStats {
  minor: number;
  minor_ms: number;
  major: number;
  major_ms: number;
  other: number;
  other_ms: number;
  over_10ms: number;
}
const gcStats = async (url: string): Promise<GcStats> => (await (await fetch(url)).json()) as GcStats;

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Runs `load` and returns its figures with the server's own for the same interval: CPU and system
 * calls per request from /proc; with `metricsUrl`, GC and event-loop delay from its /metrics (the
 * scrape before resets prom-client's event-loop histogram, so the one after covers the phase).
 */
async function watched<
  T extends { requests_per_second?: number; requests?: number; statuses?: Record<number, number> },
>(
  pid: number,
  sources: { metricsUrl?: string; gcUrl?: string },
  load: () => Promise<T>,
): Promise<T & { server: Record<string, number> }> {
  const { metricsUrl, gcUrl } = sources;
  const before = metricsUrl ? await scrape(metricsUrl) : undefined;
  const gcBefore = gcUrl ? await gcStats(gcUrl) : undefined;
  const startCounters = counters(pid);
  const result = await load();
  const endCounters = counters(pid);
  const after = metricsUrl ? await scrape(metricsUrl) : undefined;
  const gcAfter = gcUrl ? await gcStats(gcUrl) : undefined;
  const requests = result.requests ?? Object.values(result.statuses ?? {}).reduce((a, b) => a + b, 0);
  const per = (x: number) => round(x / Math.max(1, requests), 3);
  const server: Record<string, number> = {
    cpu_ms_per_request: per((endCounters.cpuTicks - startCounters.cpuTicks) * 10),
    write_syscalls_per_request: per(endCounters.writes - startCounters.writes),
    read_syscalls_per_request: per(endCounters.reads - startCounters.reads),
    rss_mb: rssMb(pid),
  };
  if (gcBefore && gcAfter) {
    const d = (k: keyof GcStats) => gcAfter[k] - gcBefore[k];
    Object.assign(server, {
      gc_minor_per_1k_requests: round((d('minor') / Math.max(1, requests)) * 1000),
      gc_minor_avg_ms: round(d('minor_ms') / Math.max(1, d('minor'))),
      gc_major: d('major'),
      gc_ms_per_1k_requests: round(((d('minor_ms') + d('major_ms') + d('other_ms')) * 1000) / Math.max(1, requests)),
      gc_pauses_over_10ms: d('over_10ms'),
    });
  }
  if (before && after) {
    const gc = (kind: string, part: string) =>
      sumOf(after, `featurestore_nodejs_gc_duration_seconds_${part}`, { kind }) -
      sumOf(before, `featurestore_nodejs_gc_duration_seconds_${part}`, { kind });
    const pausesOver10ms = ['minor', 'major', 'incremental', 'weakcb'].reduce(
      (n, kind) =>
        n +
        gc(kind, 'count') -
        (sumOf(after, 'featurestore_nodejs_gc_duration_seconds_bucket', { le: '0.01', kind }) -
          sumOf(before, 'featurestore_nodejs_gc_duration_seconds_bucket', { le: '0.01', kind })),
      0,
    );
    Object.assign(server, {
      gc_minor_per_1k_requests: round((gc('minor', 'count') / Math.max(1, requests)) * 1000),
      gc_minor_avg_ms: round((gc('minor', 'sum') * 1000) / Math.max(1, gc('minor', 'count'))),
      gc_major: gc('major', 'count'),
      gc_ms_per_1k_requests: round(
        (['minor', 'major', 'incremental', 'weakcb'].reduce((s, k) => s + gc(k, 'sum'), 0) * 1e6) /
          Math.max(1, requests),
      ),
      gc_pauses_over_10ms: pausesOver10ms,
      // prom-client samples the loop with a 10 ms timer and reports the whole interval: the delay is beyond it.
      eventloop_delay_p99_ms: round(
        Math.max(0, sumOf(after, 'featurestore_nodejs_eventloop_lag_p99_seconds') * 1000 - 10),
      ),
      eventloop_delay_max_ms: round(
        Math.max(0, sumOf(after, 'featurestore_nodejs_eventloop_lag_max_seconds') * 1000 - 10),
      ),
      heap_used_mb: round(sumOf(after, 'featurestore_nodejs_heap_size_used_bytes') / 1048576, 1),
      pool_waiting_at_end: sumOf(after, 'featurestore_db_pool_waiting'),
    });
  }
  return { ...result, server };
}

const onlineBody = (features: string[], ids: (k: number) => string, size: number) => (i: number) =>
  JSON.stringify({ features, entities: { user: Array.from({ length: size }, (_, k) => ids(i * size + k)) } });

/** Extra groups beside the benchmark's own: three value features each, every entity in each. */
export async function registerGroups(
  pool: Pool,
  main: BenchGroup,
  count: number,
  entities: number,
): Promise<BenchGroup[]> {
  const groups = [main];
  for (let g = 1; g < count; g++)
    groups.push(
      await benchGroup(pool, `bench-x${g}`, {
        features: [
          { name: `x${g}_label`, type: 'string', from: 'label' },
          { name: `x${g}_score`, type: 'float64', from: 'score' },
          { name: `x${g}_count`, type: 'int64', from: 'count' },
        ],
      }),
    );
  const extra = groups.slice(1);
  await pool.query(
    `INSERT INTO features."${main.table}" (entity_id, last_action, last_action__ts, last_action__off, last_page, last_page__ts, last_page__off, last_amount, last_amount__ts, last_amount__off)
     SELECT 'user_' || g, 'click', now(), g, '/p/' || (g % 50), now(), g, g / 100.0, now(), g FROM generate_series(1, $1::bigint) g`,
    [entities],
  );
  for (const [k, group] of extra.entries()) {
    const g = k + 1;
    await pool.query(
      `INSERT INTO features."${group.table}" (entity_id, x${g}_label, x${g}_label__ts, x${g}_label__off, x${g}_score, x${g}_score__ts, x${g}_score__off, x${g}_count, x${g}_count__ts, x${g}_count__off)
       SELECT 'user_' || i, 'label_' || (i % 97), now() - interval '1 minute', i, i / 7.0, now() - interval '1 minute', i, i * ${g}, now() - interval '1 minute', i
       FROM generate_series(1, $1::bigint) i`,
      [entities],
    );
  }
  for (const group of groups) await pool.query(`ANALYZE features."${group.table}"`);
  return groups;
}

export async function servingBench(o: ServingBenchOptions): Promise<void> {
  const { pool, emit, seconds } = o;
  const id = (i: number): string => `user_${1 + ((i * 7919) % o.entities)}`;
  const groups = await registerGroups(pool, o.group, o.groups, o.entities);
  const name = groups[0]!.name;
  const url = `http://127.0.0.1:${o.port}`;
  const getOne: Target = { url, method: 'GET', path: (i) => `/features/${id(i)}` };
  const ourFeatures = [`${name}:last_action`, `${name}:last_amount`];
  const online = (size: number): Target => ({
    url,
    method: 'POST',
    path: () => '/get-online-features',
    body: onlineBody(ourFeatures, id, size),
  });
  const children: ChildProcess[] = [];
  const start = async (entry: string, env: Record<string, string>, probe?: string): Promise<ChildProcess> => {
    const child = await startComponent(entry, env, o.port, {
      ...(probe ? { probe } : {}),
      cpus: o.serverCpus,
      profile: env.BENCH_PROFILE === '1',
    });
    children.push(child);
    return child;
  };
  try {
    const registered = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM featurestore.feature_groups');
    emit({
      benchmark: 'serving_setup',
      groups: registered.rows[0]!.n,
      entities_per_group: o.entities,
      server_cpus: o.serverCpus ?? 'not pinned',
      note: 'GET /features/{id} reads every registered group',
    });

    if (o.peers.has('ours')) await oursBench(o, start, getOne, online);
    if (o.peers.has('prototypes')) {
      // The same lookup on bare servers; static shows what the generator and loopback allow.
      const gcUrl = `http://127.0.0.1:${o.port + 1}/`;
      for (const mode of ['static', 'pg', 'express', 'express-server']) {
        const prototype = await start(
          'dist/bench/prototype-server.js',
          { PROTOTYPE_MODE: mode, BENCH_TABLES: groups.map((g) => g.table).join(',') },
          `/features/${id(0)}`,
        );
        await closedLoop(getOne, 2, CONNECTIONS);
        emit({
          benchmark: `prototype_${mode}_closed_loop`,
          connections: CONNECTIONS,
          ...(await watched(prototype.pid!, { gcUrl }, () => closedLoop(getOne, seconds, CONNECTIONS))),
        });
        emit({
          benchmark: `prototype_${mode}_open_loop`,
          rate_rps: 2000,
          connections: OPEN_CONNECTIONS,
          ...(await watched(prototype.pid!, { gcUrl }, () => openLoop(getOne, 2000, seconds, OPEN_CONNECTIONS))),
        });
        await stopComponent(prototype);
      }
    }
  } finally {
    await Promise.all(children.map(stopComponent));
    for (const group of groups.slice(1)) await group.drop();
    await pool.query(`TRUNCATE features."${o.group.table}"`);
  }
  if (o.peers.has('feast')) await feastBench(o);
}

/** Ours: every load, the soak, the pool-size sweep, and a CPU profile in a process of its own. */
async function oursBench(
  o: ServingBenchOptions,
  start: (entry: string, env: Record<string, string>) => Promise<ChildProcess>,
  getOne: Target,
  online: (size: number) => Target,
): Promise<void> {
  const { emit, seconds } = o;
  const url = getOne.url;
  // 8 pool connections, as every peer gets (the product default is 10); Express on createExpressServer.
  const serving = await start('dist/services/serving/main.js', { DB_POOL_SIZE: String(CONNECTIONS) });
  const pid = serving.pid!;
  const ours = <T extends { requests_per_second?: number; requests?: number }>(load: () => Promise<T>) =>
    watched(pid, { metricsUrl: url }, load);
  await closedLoop(getOne, 2, CONNECTIONS); // warm-up: prepared statements, connections, JIT
  emit({
    benchmark: 'serving_get_closed_loop',
    connections: CONNECTIONS,
    ...(await ours(() => closedLoop(getOne, seconds, CONNECTIONS))),
  });
  for (const rate of [500, 1000, 2000])
    emit({
      benchmark: 'serving_get_open_loop',
      rate_rps: rate,
      connections: OPEN_CONNECTIONS,
      ...(await ours(() => openLoop(getOne, rate, seconds, OPEN_CONNECTIONS))),
    });
  for (const size of [1, 100])
    emit({
      benchmark: 'serving_online_closed_loop',
      entities_per_request: size,
      connections: CONNECTIONS,
      ...(await ours(() => closedLoop(online(size), seconds, CONNECTIONS))),
    });
  for (const [size, rates] of [
    [1, [500, 1000, 2000]],
    [100, [200, 500, 1000]],
  ] as const)
    for (const rate of rates)
      emit({
        benchmark: 'serving_online_open_loop',
        entities_per_request: size,
        rate_rps: rate,
        connections: OPEN_CONNECTIONS,
        ...(await ours(() => openLoop(online(size), rate, seconds, OPEN_CONNECTIONS))),
      });
  if (o.soakSeconds > 0) {
    // RSS over a long open loop: sampled every 10 s, flat or not is read from the samples.
    const samples: number[] = [];
    const timer = setInterval(() => samples.push(rssMb(pid)), 10_000);
    const soak = await ours(() => openLoop(getOne, 1000, o.soakSeconds, OPEN_CONNECTIONS));
    clearInterval(timer);
    const first = samples[0] ?? NaN;
    const last = samples[samples.length - 1] ?? NaN;
    emit({
      benchmark: 'serving_soak',
      rate_rps: 1000,
      seconds: o.soakSeconds,
      ...soak,
      rss_mb_samples: samples,
      rss_mb_first: first,
      rss_mb_last: last,
      rss_mb_max: Math.max(...samples),
      rss_growth_mb_first_to_last: round(last - first, 1),
    });
  }
  await stopComponent(serving);

  // The pool's queue: the same 2,000 rps with fewer and more connections.
  for (const size of [2, 4, 16]) {
    const swept = await start('dist/services/serving/main.js', { DB_POOL_SIZE: String(size) });
    await closedLoop(getOne, 2, CONNECTIONS);
    emit({
      benchmark: 'serving_get_open_loop_pool_size',
      pool_size: size,
      rate_rps: 2000,
      connections: OPEN_CONNECTIONS,
      ...(await watched(swept.pid!, { metricsUrl: url }, () => openLoop(getOne, 2000, seconds, OPEN_CONNECTIONS))),
    });
    await stopComponent(swept);
  }

  // A CPU profile of ours under the closed loop, in a process of its own: the profiler's cost
  // stays out of every figure above.
  if (process.env.BENCH_CPU_PROF_DIR) {
    const profiled = await start('dist/services/serving/main.js', {
      DB_POOL_SIZE: String(CONNECTIONS),
      BENCH_PROFILE: '1',
    });
    await closedLoop(getOne, seconds, CONNECTIONS);
    await stopComponent(profiled);
  }
}

/** Feast's feature server, loaded exactly as ours: the same bodies, rates, connections and core. */
async function feastBench(o: ServingBenchOptions): Promise<void> {
  const { emit, seconds } = o;
  const entities = Math.min(o.entities, o.feastEntities);
  const id = (i: number): string => `user_${1 + ((i * 7919) % entities)}`;
  let feast: FeastPeer | undefined;
  try {
    feast = await startFeast({
      databaseUrl: o.databaseUrl,
      port: o.port,
      entities,
      workers: 1,
      ...(o.serverCpus ? { cpus: o.serverCpus } : {}),
    });
    const peer = feast;
    emit({ benchmark: 'feast_setup', workers: 1, ...peer.load, server_cpus: o.serverCpus ?? 'not pinned' });
    const online = (size: number): Target => ({
      url: peer.url,
      method: 'POST',
      path: () => '/get-online-features',
      body: onlineBody(peer.features, id, size),
    });
    const closed: Record<number, number> = {};
    for (const size of [1, 100]) {
      await closedLoop(online(size), 2, CONNECTIONS);
      const result = await watched(peer.pid, {}, () => closedLoop(online(size), seconds, CONNECTIONS));
      closed[size] = result.requests_per_second;
      emit({ benchmark: 'feast_online_closed_loop', entities_per_request: size, connections: CONNECTIONS, ...result });
    }
    for (const [size, rates] of [
      [1, [500, 1000, 2000]],
      [100, [200, 500, 1000]],
    ] as const)
      for (const rate of rates) {
        // A rate well past what the closed loop reached only queues in the generator: named, not run.
        if (rate > 1.5 * (closed[size] ?? 0)) {
          emit({
            benchmark: 'feast_online_open_loop',
            entities_per_request: size,
            rate_rps: rate,
            not_run: `does not keep up: its closed loop reached ${closed[size]} req/s`,
          });
          continue;
        }
        emit({
          benchmark: 'feast_online_open_loop',
          entities_per_request: size,
          rate_rps: rate,
          connections: OPEN_CONNECTIONS,
          ...(await watched(peer.pid, {}, () => openLoop(online(size), rate, seconds, OPEN_CONNECTIONS))),
        });
      }
    emit({ benchmark: 'feast_freshness', ...(await feastFreshness(peer)) });
  } finally {
    await feast?.stop();
  }
}

/**
 * Feast's `/push` returned → value served by its `/get-online-features`, with pushes of 10 rows
 * every 10 ms (1,000 rows/s) in the background: the figure beside our ingest → Kafka → consumer path.
 */
async function feastFreshness(feast: FeastPeer): Promise<Record<string, number>> {
  let background = true;
  let rows = 0;
  const loadStart = performance.now();
  const load = (async () => {
    for (let i = 0; background; i++) {
      const due = loadStart + i * 10;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      const users = Array.from({ length: 10 }, (_, k) => `user_${1 + ((i * 10 + k) % 1000)}`);
      const now = new Date().toISOString();
      await fetch(`${feast.url}/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          push_source_name: 'bench_push',
          df: {
            user: users,
            last_action: users.map(() => 'view'),
            last_page: users.map(() => '/p'),
            last_amount: users.map(() => 1.0),
            event_timestamp: users.map(() => now),
          },
          to: 'online',
        }),
      });
      rows += 10;
    }
  })();
  const samples: number[] = [];
  // As many probes as ours (bench/platform.ts), so both p99s are the 10th worst of 1,000.
  for (let n = 0; n < 1_000; n++) {
    const entity = `fresh_${n}`;
    const action = `a${n}_${Math.random().toString(16).slice(2, 8)}`;
    const sent = await fetch(`${feast.url}/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: feast.pushBody(entity, action),
    });
    if (!sent.ok) throw new Error(`feast /push answered ${sent.status}`);
    const accepted = performance.now();
    for (;;) {
      const body = (await (
        await fetch(`${feast.url}/get-online-features`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: ['bench_feast:last_action'], entities: { user: [entity] } }),
        })
      ).json()) as { results?: { values?: unknown[] }[] };
      if (body.results?.some((r) => r.values?.[0] === action)) break;
      if (performance.now() - accepted > 30_000) throw new Error('a pushed row was not served by Feast within 30 s');
      await new Promise((r) => setTimeout(r, 2));
    }
    samples.push(performance.now() - accepted);
    await new Promise((r) => setTimeout(r, 50));
  }
  background = false;
  await load;
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!, 1);
  return {
    background_rows_per_second: Math.round(rows / ((performance.now() - loadStart) / 1000)),
    probes: samples.length,
    p50_ms: at(0.5),
    p99_ms: at(0.99),
    max_ms: round(sorted[sorted.length - 1]!, 1),
  };
}
