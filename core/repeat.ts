/**
 * Runs `task` now and then `intervalMs` after each run ended (runs never overlap), until the
 * returned function is called; a run in flight then finishes but none follows. The timer never
 * keeps the process alive. Errors go to `onError` and the next run happens as planned.
 */
export function repeatEvery(
  task: () => Promise<void>,
  intervalMs: number,
  onError: (error: unknown) => void,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      task()
        .catch(onError)
        .finally(() => schedule(intervalMs));
    }, delayMs);
    timer.unref();
  };
  schedule(0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
