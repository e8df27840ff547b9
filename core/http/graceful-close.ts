import type { Server } from 'node:http';
import { Server as NetServer } from 'node:net';

export interface GracefulClose {
  /** Stops accepting, lets keep-alive clients move away, then closes what is left. */
  close(): Promise<void>;
}

/**
 * Shutdown without resetting keep-alive clients. http.Server#close() closes idle keep-alive
 * sockets at once, and a client that sends on one at that moment gets ECONNRESET (seen on real
 * pods: 2 of 3,800 requests during a rolling update). Instead, once closing:
 * - every response says `Connection: close`, so each client leaves its socket after its answer;
 * - idle sockets are closed only after drainMs, when busy clients have had their answer;
 * - at deadlineMs whatever is still open is closed.
 * Install it right after listen(), before any request.
 */
export function gracefulClose(server: Server, drainMs = 2_000, deadlineMs = 25_000): GracefulClose {
  let closing = false;
  server.prependListener('request', (_req, res) => {
    if (closing) res.shouldKeepAlive = false;
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        let idle: NodeJS.Timeout | undefined;
        // net.Server's close: stop accepting, call back when the last connection ended; unlike
        // http.Server's, it leaves the idle keep-alive sockets open for now.
        NetServer.prototype.close.call(server, () => {
          clearInterval(idle);
          clearTimeout(drained);
          clearTimeout(hard);
          resolve();
        });
        const drained = setTimeout(() => {
          server.closeIdleConnections();
          idle = setInterval(() => server.closeIdleConnections(), 100);
        }, drainMs);
        const hard = setTimeout(() => {
          clearTimeout(drained);
          server.closeAllConnections();
        }, deadlineMs);
      }),
  };
}
