import { repeatEvery } from '../../core/repeat';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('repeatEvery', () => {
  it('never overlaps runs, goes on after errors, and runs no more once stopped, even when stopped mid-run', async () => {
    let running = 0;
    let overlapped = false;
    let runs = 0;
    const errors: unknown[] = [];
    const stop = repeatEvery(
      async () => {
        runs++;
        running++;
        overlapped ||= running > 1;
        await sleep(20);
        running--;
        if (runs === 2) throw new Error('second run fails');
      },
      5,
      (error) => errors.push(error),
    );
    while (runs < 4) await sleep(5);
    // Stopped while the fourth run is in flight: it finishes, no fifth starts.
    stop();
    await sleep(80);
    expect(runs).toBe(4);
    expect(overlapped).toBe(false);
    expect(errors).toHaveLength(1);
  });
});
