import type { Informer, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from './logger';

/** Watch restarts back off from 1 s to 30 s, so a long API server outage is not hammered. */
const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;

/**
 * An informer stops on any error (API server restart, expired token, network). This restarts it
 * with capped backoff until it watches again, from the last resourceVersion it saw (relisting when
 * that expired), so no change is missed.
 */
export function keepWatching<T extends KubernetesObject>(
  informer: Informer<T>,
  what: string,
  log: Logger,
  stopped: () => boolean,
): void {
  let restartPending = false;
  let attempt = 0;
  const restart = (error: unknown): void => {
    if (stopped() || restartPending) return;
    restartPending = true;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** attempt);
    attempt += 1;
    log.warn({ err: error, watch: what, retryInMs: delay }, 'watch failed; restarting');
    setTimeout(() => {
      restartPending = false;
      if (stopped()) return;
      informer.start().then(() => {
        if (restartPending) return; // the start itself failed and already scheduled the next try
        attempt = 0;
        log.info({ watch: what }, 'watch restarted');
      }, restart);
    }, delay).unref();
  };
  informer.on('error', restart);
}
