import { createLogger } from '../../core/logger';
import { sleep } from '../../core/retry';
import { type ReconcileResult, WorkQueue } from '../../operator/queue';

const log = createLogger('queue-test', 'silent');

async function waitFor(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const activeTimeouts = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

const queues: WorkQueue[] = [];
function makeQueue(
  worker: (key: string) => Promise<ReconcileResult>,
  options: Partial<ConstructorParameters<typeof WorkQueue>[1]> = {},
): WorkQueue {
  const queue = new WorkQueue(worker, { log, ...options });
  queues.push(queue);
  return queue;
}
afterEach(async () => {
  await Promise.all(queues.splice(0).map((queue) => queue.stop()));
});

test('a key waits in the queue once however often it is added', async () => {
  const runs: string[] = [];
  const queue = makeQueue(async (key) => {
    runs.push(key);
    return {};
  });
  queue.add('a');
  queue.add('a');
  queue.add('b');
  queue.add('a');
  expect(queue.size()).toBe(2);
  queue.start();
  await waitFor(() => runs.length === 2);
  await sleep(30);
  expect(runs.sort()).toEqual(['a', 'b']);
  expect(queue.size()).toBe(0);
});

test('a key added while it is processed runs again afterwards, never concurrently with itself', async () => {
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  const firstRunStarted = deferred();
  const queue = makeQueue(
    async () => {
      runs++;
      active++;
      maxActive = Math.max(maxActive, active);
      if (runs === 1) firstRunStarted.resolve();
      await sleep(80);
      active--;
      return {};
    },
    { concurrency: 4 },
  );
  queue.start();
  queue.add('slow');
  await firstRunStarted.promise;
  // Dirty while processing: not queued for another (idle) worker, remembered once.
  queue.add('slow');
  queue.add('slow');
  expect(queue.size()).toBe(0);
  await waitFor(() => runs === 2 && active === 0);
  await sleep(120);
  expect(runs).toBe(2);
  expect(maxActive).toBe(1);
});

test('different keys run in parallel up to the concurrency limit', async () => {
  let active = 0;
  let maxActive = 0;
  const done: string[] = [];
  const queue = makeQueue(
    async (key) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(40);
      active--;
      done.push(key);
      return {};
    },
    { concurrency: 2 },
  );
  for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key);
  queue.start();
  await waitFor(() => done.length === 5);
  expect(maxActive).toBe(2);
});

test('failures back off exponentially per key; a success forgets the failures', async () => {
  const base = 20;
  const failFirst = 6;
  const times: number[] = [];
  const outcomes: Array<'success' | 'error'> = [];
  let failNext = 0;
  const queue = makeQueue(
    async () => {
      times.push(performance.now());
      if (times.length <= failFirst || failNext > 0) {
        if (failNext > 0) failNext--;
        throw new Error('boom');
      }
      return {};
    },
    { baseDelayMs: base, maxDelayMs: 10_000, onResult: (_key, outcome) => outcomes.push(outcome) },
  );
  queue.start();
  queue.add('k');
  await waitFor(() => times.length === failFirst + 1, 5_000);
  await waitFor(() => outcomes.length === failFirst + 1);
  expect(outcomes).toEqual([...Array<'error'>(failFirst).fill('error'), 'success']);
  expect(queue.numRequeues('k')).toBe(0);

  // Delay after the n-th consecutive failure: between half and all of base * 2^n (jitter).
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  gaps.forEach((gap, n) => expect(gap).toBeGreaterThanOrEqual((base * 2 ** n) / 2 - 2));
  expect(gaps[failFirst - 1]!).toBeGreaterThanOrEqual(gaps[0]! * 4);

  // After the success, the next failure starts from the base delay again (not base * 2^6 >= 640 ms).
  failNext = 1;
  queue.add('k');
  await waitFor(() => times.length === failFirst + 3, 5_000);
  expect(queue.numRequeues('k')).toBe(0);
  const afterReset = times[failFirst + 2]! - times[failFirst + 1]!;
  expect(afterReset).toBeGreaterThanOrEqual(base / 2 - 2);
  expect(afterReset).toBeLessThan(300);
});

test('numRequeues counts consecutive failures; the delay is capped at maxDelayMs', async () => {
  const times: number[] = [];
  const queue = makeQueue(
    async () => {
      times.push(performance.now());
      throw new Error('always');
    },
    { baseDelayMs: 10, maxDelayMs: 30 },
  );
  queue.start();
  queue.add('x');
  await waitFor(() => times.length >= 6, 5_000);
  expect(queue.numRequeues('x')).toBeGreaterThanOrEqual(5);
  // Attempts 2.. would be 40, 80, 160 ms uncapped; capped they are 15-30 ms (+ scheduling).
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  expect(gaps.slice(2).every((gap) => gap < 150)).toBe(true);
});

test('a result with requeueAfterMs runs the key again after that delay, without counting a failure', async () => {
  const times: number[] = [];
  const queue = makeQueue(async () => {
    times.push(performance.now());
    return times.length === 1 ? { requeueAfterMs: 60 } : {};
  });
  queue.start();
  queue.add('r');
  await waitFor(() => times.length === 2);
  expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(58);
  expect(queue.numRequeues('r')).toBe(0);
  await sleep(100);
  expect(times).toHaveLength(2);
});

test('addAfter collapses pending delays of a key to the earliest', async () => {
  const times: number[] = [];
  const queue = makeQueue(async () => {
    times.push(performance.now());
    return {};
  });
  queue.start();
  const t0 = performance.now();
  queue.addAfter('d', 200);
  queue.addAfter('d', 30);
  queue.addAfter('d', 100);
  await waitFor(() => times.length === 1);
  expect(times[0]! - t0).toBeGreaterThanOrEqual(28);
  expect(times[0]! - t0).toBeLessThan(190);
  await sleep(250);
  expect(times).toHaveLength(1);
});

test('stop() waits for running reconciles, drops waiting and delayed keys, and leaves no timers', async () => {
  // Jest's own timers come and go (±1); the 5 delayed keys below would show as +5 if left behind.
  await sleep(1);
  const timersBefore = activeTimeouts();
  const started: string[] = [];
  const finished: string[] = [];
  const queue = makeQueue(
    async (key) => {
      started.push(key);
      await sleep(100);
      finished.push(key);
      if (key === 'fails') throw new Error('fails while stopping');
      return { requeueAfterMs: 5_000 };
    },
    { concurrency: 2 },
  );
  queue.add('slow');
  queue.add('fails');
  queue.add('waiting');
  for (let i = 0; i < 5; i++) queue.addAfter(`later-${i}`, 5_000);
  queue.start();
  await waitFor(() => started.length === 2);
  await queue.stop();
  expect(finished.sort()).toEqual(['fails', 'slow']);
  expect(queue.size()).toBe(0);
  queue.add('after-stop');
  await sleep(120);
  expect(started.sort()).toEqual(['fails', 'slow']);
  expect(activeTimeouts()).toBeLessThanOrEqual(timersBefore + 1);
});
