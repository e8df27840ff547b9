import { connect, createServer, type Server, type Socket } from 'node:net';

/** A port on 127.0.0.1 held the way an outbound connection holds one: as its local (ephemeral) port. */
export interface ConnectionHeldPort {
  port: number;
  connection: Socket;
  release(): Promise<void>;
}

export async function portHeldByConnection(): Promise<ConnectionHeldPort> {
  const accepted: Socket[] = [];
  const server: Server = createServer((socket) => accepted.push(socket.on('error', () => undefined)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const connection = await new Promise<Socket>((resolve) => {
    const socket = connect((server.address() as { port: number }).port, '127.0.0.1', () => resolve(socket));
  });
  return {
    port: connection.localPort!,
    connection,
    release: async () => {
      // The connection first: a server's close waits for its connections to end.
      connection.destroy();
      for (const socket of accepted) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What listening on `port` at 127.0.0.1 gives: 'listening' (closed again at once) or the error's code. */
export function tryListen(port: number): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer()
      .once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
      .listen(port, '127.0.0.1', () => server.close(() => resolve('listening')));
  });
}
