export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 10_000 };

/** Capped exponential backoff with full jitter: attempt 0 waits up to initialMs, then doubling to maxMs. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Retries `operation` until it succeeds or `shouldContinue` says stop (shutdown, lost partition).
 * Returns undefined when it stopped without success, so the caller commits nothing.
 */
export async function retryWithBackoff<T>(
  operation: (attempt: number) => Promise<T>,
  shouldContinue: () => boolean,
  onError: (error: unknown, attempt: number, delayMs: number) => void,
  options: BackoffOptions = DEFAULT_BACKOFF,
): Promise<T | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!shouldContinue()) return undefined;
      const delay = backoffDelay(attempt, options);
      onError(error, attempt, delay);
      await sleep(delay);
      if (!shouldContinue()) return undefined;
    }
  }
}
