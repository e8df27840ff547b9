import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { gracefulClose } from '../../core/http/graceful-close';

/**
 * Keep-alive clients across a shutdown, on a real socket: a request sent on an idle keep-alive
 * connection after close() began is answered (with Connection: close), not reset.
 */

/** Sends one raw HTTP/1.1 request on SOCKET; resolves with the response head, or the error. */
function request(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n\r\n') && data.endsWith('ok')) done(data.slice(0, data.indexOf('\r\n\r\n')));
    };
    const onEnd = () => done(data ? data : 'closed without an answer');
    const onError = (error: Error) => done(`error: ${error.message}`);
    const done = (result: string) => {
      socket.off('data', onData).off('end', onEnd).off('error', onError);
      resolve(result);
    };
    socket.on('data', onData).once('end', onEnd).once('error', onError);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
  });
}

async function serve(): Promise<Server> {
  const server = createServer((_req, res) => res.end('ok'));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

const open = (server: Server) =>
  new Promise<Socket>((resolve) => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1', () => resolve(socket));
  });

test('a request on an idle keep-alive socket after close() began is answered with Connection: close, and close() then resolves', async () => {
  const server = await serve();
  const closer = gracefulClose(server, 500, 5_000);
  const socket = await open(server);
  expect(await request(socket)).toMatch(/^HTTP\/1\.1 200[\s\S]*Connection: keep-alive/i);
  const closed = closer.close();
  const answer = await request(socket); // the socket was idle when close() began
  expect(answer).toMatch(/^HTTP\/1\.1 200/);
  expect(answer).toMatch(/Connection: close/i);
  await closed;
  expect(server.listening).toBe(false);
});

test('idle keep-alive sockets are closed after the drain time, so close() does not wait for their timeout', async () => {
  const server = await serve();
  const closer = gracefulClose(server, 200, 30_000);
  const socket = await open(server);
  await request(socket);
  const ended = new Promise<void>((r) => socket.once('close', () => r()));
  const started = Date.now();
  await closer.close();
  await ended;
  // Well before keepAliveTimeout (60 s) and the deadline (30 s).
  expect(Date.now() - started).toBeLessThan(20_000);
});

test("for contrast, http.Server's own close() drops the idle keep-alive socket: the same request goes unanswered", async () => {
  const server = await serve();
  const socket = await open(server);
  await request(socket);
  server.close();
  expect(await request(socket)).not.toMatch(/^HTTP\/1\.1 200/);
});
