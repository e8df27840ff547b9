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

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    readonly port: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    const child = spawn(this.command === 'node' ? process.execPath : this.command, this.args, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.child = child;
    alive.add(child);
    const startedAt = Date.now();
    child.on('exit', (code, signal) => {
      alive.delete(child);
      if (this.stopping) return;
      if (Date.now() - startedAt > 60_000) this.restarts = 0;
      const delay = backoffDelay(this.restarts++, { initialMs: 1_000, maxMs: 60_000 });
      this.log.warn({ replica: this.name, code, signal, restartInMs: delay }, 'replica exited; restarting');
      this.timer = setTimeout(() => this.start(), delay);
    });
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
