import { createServer } from 'node:net';

/** The port a listener got on 127.0.0.1 when asked for `port` (0: any), or undefined if refused. */
function probe(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : undefined));
    });
  });
}

/** How far above `from` a free port is looked for before giving up. */
const SEARCH_SPAN = 1_000;

/**
 * A port for a replica to listen on, free when this is called and not `taken` by another replica
 * of this runner: the first one from `from` upward when given (addresses that stay put under
 * `make up`), else one the OS picks. A fixed scheme (base + n) collides with whatever holds a port
 * there, an outbound connection's ephemeral port included, and the replica then fails to listen
 * on every restart. One that still loses its port between this probe and its own listen exits
 * and is restarted with a newly picked one.
 */
export async function pickPort(from: number | undefined, taken: ReadonlySet<number>): Promise<number> {
  if (from === undefined) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = await probe(0);
      if (port !== undefined && !taken.has(port)) return port;
    }
    throw new Error('no free local port for a replica');
  }
  for (let port = from; port < Math.min(from + SEARCH_SPAN, 65_536); port++) {
    if (taken.has(port)) continue;
    if ((await probe(port)) === port) return port;
  }
  throw new Error(`no free local port in ${from}–${from + SEARCH_SPAN - 1} for a replica`);
}
