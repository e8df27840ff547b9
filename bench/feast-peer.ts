/**
 * Feast's own Python feature server, unmodified, as the serving benchmark's peer: the same Postgres,
 * the same entities (user_1..user_N with the values bench/platform.ts loads into our store), the same
 * load generator. bench/feast/peer.py writes the Feast repo into a temporary directory, runs
 * `feast apply` and loads the entities through FeatureStore.write_to_online_store; this file starts
 * `feast serve` on that repo, waits until it answers, and stops it again.
 *
 *   const feast = await startFeast({ databaseUrl, port: 6566, entities: 100_000, workers: 1, cpus: '0' });
 *   // POST `${feast.url}/get-online-features` {"features": feast.features, "entities": {"user": ["user_1"]}}
 *   // POST `${feast.url}/push` feast.pushBody('user_1', 'view')
 *   await feast.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../core/paths';

export interface FeastPeer {
  /** http://127.0.0.1:<port>, with POST /get-online-features and POST /push. */
  url: string;
  features: string[];
  entityKey: 'user';
  /** The gunicorn master's pid, which leads the server's process group. */
  pid: number;
  /** What peer.py reported for loading the entities through Feast's SDK. */
  load: FeastLoad;
  /** SIGTERMs the server's process group, waits for it, drops the online store's schema, removes the repo. */
  stop(): Promise<void>;
  /** The JSON body of POST /push that writes one row for `entity` with last_action `action` to the online store. */
  pushBody(entity: string, action: string): string;
}

/** peer.py setup's last stdout line: the write through write_to_online_store (one row per entity). */
export interface FeastLoad {
  entities: number;
  seconds: number;
  rows_per_second: number;
  apply_seconds: number;
}

export interface FeastOptions {
  databaseUrl: string;
  port: number;
  entities: number;
  /** gunicorn worker processes (uvicorn workers), each with its own connection pool. */
  workers: number;
  /** A taskset CPU list (e.g. '0' or '0,1') the server and its workers are pinned to. */
  cpus?: string;
}

/** POST /get-online-features's answer, as Feast 0.67 serialises it. */
export interface FeastOnlineResponse {
  metadata?: { feature_names?: string[] };
  results?: { values?: unknown[]; statuses?: string[]; event_timestamps?: string[] }[];
}

export const FEAST_FEATURES = ['bench_feast:last_action', 'bench_feast:last_amount'];

const READY_DEADLINE_MS = 120_000;
const POLL_MS = 200;
const STOP_GRACE_MS = 20_000;
const TAIL_CHARS = 8_000;

/**
 * The value of `feature` (a bare name such as 'last_action') for the request's entity number `row`.
 * Feast answers column-wise: metadata.feature_names[i] names results[i], and the first column is the
 * entity key itself (always PRESENT, even for an unknown entity).
 */
export function feastValue(body: FeastOnlineResponse, feature: string, row = 0): unknown {
  const column = body.metadata?.feature_names?.indexOf(feature) ?? -1;
  return column < 0 ? undefined : body.results?.[column]?.values?.[row];
}

/** Runs `python args` with stderr passed through (peer.py's progress); resolves with its stdout. */
function runPython(python: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${python} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

/** The clients' venv (test/clients/python-env.sh, built on first use). */
async function pythonEnv(root: string): Promise<string> {
  const out = await runPython('bash', [join(root, 'test/clients/python-env.sh'), 'path']);
  const dir = out.trim().split('\n').pop() ?? '';
  if (!dir.startsWith('/')) throw new Error(`test/clients/python-env.sh path printed no directory: ${out}`);
  return dir;
}

const groupAlive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

const killGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** SIGTERM, then SIGKILL after STOP_GRACE_MS, until no process of the group is left. */
async function stopGroup(pid: number): Promise<void> {
  killGroup(pid, 'SIGTERM');
  const deadline = performance.now() + STOP_GRACE_MS;
  while (groupAlive(pid) && performance.now() < deadline) await sleep(100);
  if (!groupAlive(pid)) return;
  killGroup(pid, 'SIGKILL');
  while (groupAlive(pid)) await sleep(100);
}

/** Whether Feast answers user_1 with the values peer.py wrote for it. */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/get-online-features`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: FEAST_FEATURES, entities: { user: ['user_1'] } }),
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status !== 200) return false;
    const body = (await res.json()) as FeastOnlineResponse;
    return feastValue(body, 'last_action') === 'click' && feastValue(body, 'last_amount') === 0.01;
  } catch {
    return false;
  }
}

function serve(venv: string, repo: string, opts: FeastOptions): ChildProcess {
  const feast = [
    join(venv, 'bin/feast'),
    '--chdir',
    repo,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--workers',
    String(opts.workers),
    // Uvicorn's access log writes a line per request: our serving logs none at LOG_LEVEL=warn.
    '--no-access-log',
    // Feast's default 1000 makes gunicorn restart each worker every ~1000 requests (plus up to 50 of
    // jitter), dropping its keep-alive connections and its pool mid-run; 0 turns that off, as a
    // server that is not recycled (ours) runs.
    '--max-requests',
    '0',
    // Feast's default 60 re-reads the registry in a background thread every 60 s; 0 reads it once at
    // start-up. It does not change during the run (feature_store.yaml's cache_ttl_seconds: 0 keeps the
    // request path from re-reading it too).
    '--registry_ttl_sec',
    '0',
    // Left at Feast's defaults: no --metrics (off by default, so its Prometheus server and counters
    // are off), --keep-alive-timeout 30 (longer than any pause of the load generator),
    // --worker-connections (not used by the uvicorn worker), type http.
  ];
  if (opts.cpus !== undefined && !/^[0-9]+([,-][0-9]+)*$/.test(opts.cpus))
    throw new Error(`cpus must be a taskset list such as '0' or '0,1', got '${opts.cpus}'`);
  const [command, ...args] = opts.cpus !== undefined ? ['taskset', '-c', opts.cpus, ...feast] : feast;
  return spawn(command!, args, {
    // Its own process group, so that stop() reaches the gunicorn master and every worker.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // gunicorn (>= 25.1) opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl, else
    // ~/.gunicorn/gunicorn.ctl, and Feast's CLI cannot pass --no-control-socket: the repo's
    // directory keeps it out of $HOME and away from any other gunicorn.
    env: { ...process.env, XDG_RUNTIME_DIR: repo },
  });
}

/** Writes the Feast repo, loads `entities` users, starts `feast serve` and waits until it answers. */
export async function startFeast(opts: FeastOptions): Promise<FeastPeer> {
  if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error('workers must be a positive integer');
  if (!Number.isInteger(opts.entities) || opts.entities < 1) throw new Error('entities must be a positive integer');
  const root = projectRoot();
  const venv = await pythonEnv(root);
  const python = join(venv, 'bin/python');
  const peer = join(root, 'bench/feast/peer.py');
  const repo = await mkdtemp(join(tmpdir(), 'feast-peer-'));
  const drop = async (): Promise<void> => {
    await runPython(python, [peer, 'drop', repo, '--database-url', opts.databaseUrl]);
    await rm(repo, { recursive: true, force: true });
  };

  let load: FeastLoad;
  try {
    const out = await runPython(python, [
      peer,
      'setup',
      repo,
      '--database-url',
      opts.databaseUrl,
      '--entities',
      String(opts.entities),
    ]);
    load = JSON.parse(out.trim().split('\n').pop() ?? '') as FeastLoad;
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }

  const server = serve(venv, repo, opts);
  let tail = '';
  const keep = (chunk: string): void => {
    tail = (tail + chunk).slice(-TAIL_CHARS);
  };
  server.stdout?.setEncoding('utf8').on('data', keep);
  server.stderr?.setEncoding('utf8').on('data', keep);
  let exited: string | undefined;
  server.on('error', (err) => (exited = err.message));
  server.on('exit', (code, signal) => (exited = signal ?? `exit ${code}`));
  const pid = server.pid;
  // A bench that dies without stop() must not leave Feast on the port.
  const onExit = (): void => {
    if (pid !== undefined) killGroup(pid, 'SIGKILL');
  };
  process.once('exit', onExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.removeListener('exit', onExit);
      if (pid !== undefined) await stopGroup(pid);
      await drop();
    })());

  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = performance.now() + READY_DEADLINE_MS;
  for (;;) {
    if (exited === undefined && (await answers(url))) break;
    if (exited !== undefined || performance.now() > deadline) {
      await stop().catch(() => undefined);
      const why = exited !== undefined ? `exited (${exited})` : `did not answer within ${READY_DEADLINE_MS / 1000} s`;
      throw new Error(`feast serve on port ${opts.port} ${why}; its output ended:\n${tail}`);
    }
    await sleep(POLL_MS);
  }

  return {
    url,
    features: FEAST_FEATURES,
    entityKey: 'user',
    pid: pid!,
    load,
    stop,
    pushBody: (entity, action) =>
      JSON.stringify({
        push_source_name: 'bench_push',
        df: {
          user: [entity],
          last_action: [action],
          last_page: ['/f'],
          last_amount: [1.0],
          event_timestamp: [new Date().toISOString()],
        },
        to: 'online',
      }),
  };
}
