import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../../core/logger';
import { backoffDelay } from '../../core/retry';

/** Replica processes alive now: whatever way the runner exits, none outlives it (as a pod does not outlive its node). */
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

/** Below the runner's own 30 s shutdown budget, so a slow replica is killed before the runner gives up. */
const STOP_GRACE_MS = 20_000;

/** One replica of a Deployment as a local process, restarted with backoff when it dies. */
export class Replica {
  private child: ChildProcess | undefined;
  private restarts = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;

  /** Where the running process listens; picked anew at every start, so a lost port is not kept. */
  port: number | undefined;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly pickPort: () => Promise<number>,
    private readonly log: Logger,
  ) {}

  /** Resolves once the process is spawned (its port known), or its restart is scheduled. */
  async start(): Promise<void> {
    const startedAt = Date.now();
    let port: number;
    try {
      port = await this.pickPort();
    } catch (error) {
      this.restartLater(startedAt, { err: error }, 'no port for replica; retrying');
      return;
    }
    if (this.stopping) return;
    this.port = port;
    const child = spawn(this.command === 'node' ? process.execPath : this.command, this.args, {
      env: { ...process.env, ...this.env, PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.child = child;
    alive.add(child);
    this.log.info({ replica: this.name, port, pid: child.pid }, 'replica started');
    child.on('exit', (code, signal) => {
      alive.delete(child);
      if (!this.stopping) this.restartLater(startedAt, { code, signal, port }, 'replica exited; restarting');
    });
  }

  private restartLater(startedAt: number, why: Record<string, unknown>, message: string): void {
    if (Date.now() - startedAt > 60_000) this.restarts = 0;
    const delay = backoffDelay(this.restarts++, { initialMs: 1_000, maxMs: 60_000 });
    this.log.warn({ replica: this.name, ...why, restartInMs: delay }, message);
    this.timer = setTimeout(() => void this.start(), delay);
  }

  async ready(): Promise<boolean> {
    if (!this.child || this.child.exitCode !== null) return false;
    return fetch(`http://127.0.0.1:${this.port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timeout = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timeout);
  }
}
