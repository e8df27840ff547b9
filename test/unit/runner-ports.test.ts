import { createServer, type Server, type Socket } from 'node:net';
import { pickPort } from '../../services/local-runner/ports';
import { portHeldByConnection, tryListen, type ConnectionHeldPort } from '../support/sockets';

/**
 * The local runner's replica ports, on real sockets: whatever pickPort returns, a server (as the
 * replica's Express does, SO_REUSEADDR included) can then listen on, including when the plain
 * next port is held by another listener, by an outbound connection's ephemeral port, or by
 * another replica of the runner.
 */
const open: (Server | Socket)[] = [];

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => open.push(socket));
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      open.push(server);
      resolve(server);
    });
  });
}

const portOf = (server: Server): number => (server.address() as { port: number }).port;

/** The test's own check that `port` is free: it listens there, and closes again. */
const canListen = async (port: number): Promise<boolean> => (await tryListen(port)) === 'listening';

const held: ConnectionHeldPort[] = [];

/** A connection's local (ephemeral) port, held until the test ends. */
async function outboundPort(): Promise<number> {
  const connection = await portHeldByConnection();
  held.push(connection);
  return connection.port;
}

afterEach(async () => {
  for (const connection of held.splice(0)) await connection.release();
  // Connections first: a server's close waits for its connections to end.
  const handles = open.splice(0);
  for (const handle of handles) if ('destroy' in handle) handle.destroy();
  for (const handle of handles) if (!('destroy' in handle)) await new Promise((r) => handle.close(r));
});

describe('pickPort', () => {
  it('with no base, returns a port the OS gave out and a server can then listen on', async () => {
    const port = await pickPort(undefined, new Set());
    expect(port).toBeGreaterThan(0);
    expect(await canListen(port)).toBe(true);
  });

  it('from a base held by a listener, skips it for the next free port', async () => {
    const held = portOf(await listen(0));
    const port = await pickPort(held, new Set());
    expect(port).toBeGreaterThan(held);
    expect(await canListen(port)).toBe(true);
  });

  it('from a base held by an outbound connection, skips it (a fixed base + n would fail to listen there)', async () => {
    const ephemeral = await outboundPort();
    expect(await canListen(ephemeral)).toBe(false);
    const port = await pickPort(ephemeral, new Set());
    expect(port).not.toBe(ephemeral);
    expect(await canListen(port)).toBe(true);
  });

  it('skips ports another replica of the runner holds, even while they are still free', async () => {
    const base = portOf(await listen(0));
    const free = base + 1;
    const port = await pickPort(free, new Set([free, free + 1]));
    expect(port).toBeGreaterThanOrEqual(free + 2);
    expect(await canListen(port)).toBe(true);
  });
});
