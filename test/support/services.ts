import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const ENTRY = {
  ingest: 'dist/services/ingest/main.js',
  serving: 'dist/services/serving/main.js',
  consumer: 'dist/services/consumer/main.js',
  operator: 'dist/operator/main.js',
  'local-runner': 'dist/services/local-runner/main.js',
} as const;
export type ServiceKind = keyof typeof ENTRY;

/**
 * Every service process the tests started, over the whole jest run (one set on `process`, which
 * test files share, unlike their module state). A test that fails or times out before it stops
 * its services leaves them running; they are killed, by pid, when the run exits, so that none
 * outlives it to consume from the next run's servers or to load a benchmark.
 */
const CHILDREN = Symbol.for('featurestore.test-services');
type WithChildren = NodeJS.Process & { [CHILDREN]?: Set<ChildProcess> };
function startedServices(): Set<ChildProcess> {
  const holder = process as WithChildren;
  if (!holder[CHILDREN]) {
    const children = new Set<ChildProcess>();
    holder[CHILDREN] = children;
    process.on('exit', () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  }
  return holder[CHILDREN];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A built service running as its own OS process, as it would in a pod. */
export class RunningService {
  private exited: Promise<number | null>;
  readonly output: string[] = [];

  constructor(
    readonly kind: ServiceKind,
    readonly proc: ChildProcess,
    readonly port: number,
    readonly logFile: string,
  ) {
    const log = createWriteStream(logFile, { flags: 'a' });
    const keep = (chunk: Buffer): void => {
      log.write(chunk);
      this.output.push(...chunk.toString().split('\n').filter(Boolean));
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Every line the service wrote so far (its log file; `output` keeps only the last 200). */
  logLines(): string[] {
    return readFileSync(this.logFile, 'utf8').split('\n').filter(Boolean);
  }

  /** The service's pino entries whose `msg` is `message`, oldest first (lines that are not JSON skipped). */
  logEntries<T extends object>(message: string): T[] {
    return this.logLines().flatMap((line) => {
      try {
        const entry = JSON.parse(line) as T & { msg?: unknown };
        return entry.msg === message ? [entry] : [];
      } catch {
        return [];
      }
    });
  }

  tail(lines = 30): string {
    return this.output.slice(-lines).join('\n');
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.kind} exited before it was ready:\n${this.tail()}`);
      const ok = await fetch(`${this.url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.kind} not ready after ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** kill -9: no drain, no goodbye, as when a node dies. */
  async crash(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait for a graceful exit; returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.running) this.proc.kill('SIGTERM');
    return this.exited;
  }

  /** The sum of a metric's samples, of those with all of `labels` when given. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    return text
      .split('\n')
      .filter((line) => line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{'))
      .filter((line) => wanted.every((pair) => line.slice(0, line.lastIndexOf(' ')).includes(pair)))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  }
}

export async function startService(
  kind: ServiceKind,
  env: Record<string, string>,
  label: string = kind,
): Promise<RunningService> {
  const port = await freePort();
  const logDir = join(root, '.local', 'test-logs');
  mkdirSync(logDir, { recursive: true });
  const proc = spawn(process.execPath, [join(root, ENTRY[kind])], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const children = startedServices();
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return new RunningService(kind, proc, port, join(logDir, `${label}.log`));
}

export function requireEnv(name: 'DATABASE_URL' | 'KAFKA_BROKERS'): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: integration tests need the real servers (make test starts them)`);
  return value;
}

/** Where the servers are, as every service's environment names them. */
export function serverEnv(): { DATABASE_URL: string; KAFKA_BROKERS: string } {
  return { DATABASE_URL: requireEnv('DATABASE_URL'), KAFKA_BROKERS: requireEnv('KAFKA_BROKERS') };
}

/**
 * Ingest and serving on the test servers, started together and ready: `<label>-ingest` and
 * `<label>-serving`, each with the servers' environment plus its own.
 */
export async function startIngestAndServing(
  label: string,
  ingestEnv: Record<string, string> = {},
  servingEnv: Record<string, string> = {},
): Promise<[RunningService, RunningService]> {
  const services = await Promise.all([
    startService('ingest', { ...serverEnv(), ...ingestEnv }, `${label}-ingest`),
    startService('serving', { ...serverEnv(), ...servingEnv }, `${label}-serving`),
  ]);
  await Promise.all(services.map((s) => s.waitReady()));
  return services;
}

/**
 * `wait`, and if it fails, its error followed by the last lines each service wrote, so that a
 * timeout in CI says what the processes were doing.
 */
export async function explainedBy<T>(
  wait: Promise<T>,
  services: Record<string, RunningService>,
  lines = 15,
): Promise<T> {
  try {
    return await wait;
  } catch (error) {
    const tails = Object.entries(services).map(([name, service]) => `${name}'s last lines:\n${service.tail(lines)}`);
    throw new Error([(error as Error).message, ...tails].join('\n'), { cause: error });
  }
}

export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
