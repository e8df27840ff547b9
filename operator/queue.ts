import type { Logger } from '../core/logger';
import { backoffDelay } from '../core/retry';

/** What a reconcile asks of the queue when it succeeds: requeueAfterMs schedules the next run. */
export type ReconcileResult = { requeueAfterMs?: number };

export type ReconcileOutcome = 'success' | 'error';

export interface WorkQueueOptions {
  /** Keys processed at the same time (never the same key twice at once). Default 2. */
  concurrency?: number;
  /** First retry delay after a failure; doubles per consecutive failure of the key. Default 200. */
  baseDelayMs?: number;
  /** Cap of the per-key retry delay. Default 60 000. */
  maxDelayMs?: number;
  log: Logger;
  /** Called after every reconcile with its outcome and duration (e.g. for a histogram). */
  onResult?: (key: string, outcome: ReconcileOutcome, seconds: number) => void;
}

/**
 * A controller work queue with the semantics of client-go's rate-limited workqueue:
 *
 * - a key waits in the queue at most once (add() of a waiting key is a no-op);
 * - a key is never reconciled by two workers at once: added while being reconciled, it is marked
 *   dirty and queued again when the current run finishes (so the newest state is always seen);
 * - a reconcile that throws is retried after a per-key exponential backoff (baseDelayMs × 2^n with
 *   jitter, capped at maxDelayMs); a success resets ("forgets") the key's failure count;
 * - a success with requeueAfterMs is queued again after that delay, without counting a failure;
 * - stop() takes no more work, clears every pending timer and waits for the running reconciles.
 */
export class WorkQueue {
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly log: Logger;
  private readonly onResult: WorkQueueOptions['onResult'];

  /** Keys ready to be processed, in order. Each also is in `dirty`. */
  private readonly queue: string[] = [];
  /** Keys that need processing (queued, or added again while processing). */
  private readonly dirty = new Set<string>();
  /** Keys a worker is reconciling right now. */
  private readonly processing = new Set<string>();
  /** Delayed adds: one timer per key, for the earliest requested time. */
  private readonly delayed = new Map<string, { timer: NodeJS.Timeout; readyAt: number }>();
  /** Consecutive failures per key (client-go's NumRequeues). */
  private readonly failures = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private started = false;
  private stopping = false;

  constructor(
    private readonly worker: (key: string) => Promise<ReconcileResult>,
    options: WorkQueueOptions,
  ) {
    this.concurrency = options.concurrency ?? 2;
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.log = options.log;
    this.onResult = options.onResult;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      throw new Error(`WorkQueue concurrency must be an integer >= 1, got ${this.concurrency}`);
    if (!(this.baseDelayMs > 0) || !(this.maxDelayMs >= this.baseDelayMs)) {
      throw new Error(`WorkQueue needs 0 < baseDelayMs <= maxDelayMs, got ${this.baseDelayMs} and ${this.maxDelayMs}`);
    }
  }

  /** Queues `key` unless it is already waiting; if it is being processed, it runs again afterwards. */
  add(key: string): void {
    if (this.stopping) return;
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // requeued by finish()
    this.queue.push(key);
    this.pump();
  }

  /** Queues `key` after `ms`. Several pending delays for a key collapse to the earliest. */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const readyAt = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.readyAt <= readyAt) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { timer, readyAt });
  }

  /** Starts the workers. Keys added before start() wait until then. */
  start(): void {
    if (this.stopping) throw new Error('WorkQueue: start() after stop()');
    if (this.started) return;
    this.started = true;
    this.pump();
  }

  /** Takes no more work, drops waiting and delayed keys, and resolves when running reconciles end. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.dirty.clear();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Keys waiting to be processed now (not counting running or delayed ones). */
  size(): number {
    return this.queue.length;
  }

  /** Consecutive failures of `key` since its last success (0 if none). */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private pump(): void {
    while (this.started && !this.stopping && this.inFlight.size < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      const run: Promise<void> = this.process(key).finally(() => {
        this.inFlight.delete(run);
        this.finish(key);
      });
      this.inFlight.add(run);
    }
  }

  private async process(key: string): Promise<void> {
    const startedAt = performance.now();
    let outcome: ReconcileOutcome;
    try {
      const result = await this.worker(key);
      outcome = 'success';
      this.failures.delete(key); // forget
      const after = result?.requeueAfterMs;
      if (after !== undefined && after > 0) this.addAfter(key, after);
    } catch (error) {
      outcome = 'error';
      const failures = this.failures.get(key) ?? 0;
      this.failures.set(key, failures + 1);
      if (this.stopping) {
        this.log.warn({ err: error, key }, 'reconcile failed while stopping; not requeued');
      } else {
        const delayMs = backoffDelay(failures, { initialMs: this.baseDelayMs, maxMs: this.maxDelayMs });
        this.log.error({ err: error, key, failures: failures + 1, delayMs }, 'reconcile failed; requeued with backoff');
        this.addAfter(key, delayMs);
      }
    }
    const seconds = (performance.now() - startedAt) / 1000;
    try {
      this.onResult?.(key, outcome, seconds);
    } catch (error) {
      this.log.warn({ err: error, key }, 'WorkQueue onResult callback threw');
    }
  }

  private finish(key: string): void {
    this.processing.delete(key);
    // Added while it was being processed: run it again, after whatever is already waiting.
    if (this.dirty.has(key) && !this.stopping) this.queue.push(key);
    this.pump();
  }
}
