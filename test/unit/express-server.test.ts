import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Express } from 'express';
import { createExpressServer } from '../../core/http/express-server';

/**
 * createExpressServer against Express's own app.listen, on real sockets: the same app answers the
 * same requests byte for byte (status, headers but Date, body) through request and response
 * helpers, params, query, errors and the 404 of its final handler; and no request's prototype is
 * changed on the way, which is what the server exists for.
 */
function app(): Express {
  const a = express();
  a.disable('x-powered-by');
  // Without it Express's final handler prints stack traces, which name the request's class.
  a.set('env', 'production');
  a.set('query parser', 'simple');
  a.use(express.json());
  a.get('/features/:id', (req, res) => {
    res.vary('Accept').set('X-Seen', req.get('x-probe') ?? 'none');
    res.status(req.query.status ? Number(req.query.status) : 200).json({
      id: req.params.id,
      query: req.query,
      path: req.path,
      hostname: req.hostname,
      protocol: req.protocol,
      secure: req.secure,
      xhr: req.xhr,
      accepts: req.accepts(['json', 'html']),
      is: req.is('json'),
      fresh: req.fresh,
      app: req.app === a,
      locals: typeof res.locals,
    });
  });
  a.post('/echo', (req, res) => {
    res.type('text').send(JSON.stringify(req.body));
  });
  a.get('/fail', () => {
    throw new Error('boom');
  });
  a.get('/status', (_req, res) => {
    res.sendStatus(204);
  });
  return a;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function answer(base: string, path: string, init?: RequestInit) {
  const response = await fetch(`${base}${path}`, init);
  const headers = [...response.headers].filter(([k]) => k !== 'date' && k !== 'keep-alive');
  return { status: response.status, headers, body: await response.text() };
}

const REQUESTS: [string, RequestInit?][] = [
  ['/features/u%201?a=1&a=2&b=x', { headers: { 'x-probe': 'p', accept: 'text/html' } }],
  ['/features/%E7%94%A8?status=201', { headers: { 'x-requested-with': 'XMLHttpRequest' } }],
  ['/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"k":[1,"\\u2028"]}' }],
  ['/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{bad' }],
  ['/fail'],
  ['/status'],
  ['/nowhere'],
  ['/features/x', { method: 'DELETE' }],
];

describe('createExpressServer', () => {
  let servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    servers = [];
  });

  it('answers every request as app.listen does', async () => {
    const plain = app().listen(0);
    const ours = createExpressServer(app());
    servers.push(plain, ours);
    await new Promise((r) => plain.once('listening', r));
    const plainBase = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    const oursBase = await listen(ours);
    for (const [path, init] of REQUESTS) {
      const expected = await answer(plainBase, path, init);
      expect({ path, ...(await answer(oursBase, path, init)) }).toEqual({ path, ...expected });
    }
  });

  it('gives requests and responses their prototypes at birth: Express swaps none', async () => {
    const a = app();
    const server = createExpressServer(a);
    servers.push(server);
    const swaps: string[] = [];
    const setPrototypeOf = Object.setPrototypeOf;
    const spy = jest.spyOn(Object, 'setPrototypeOf').mockImplementation((o: object, proto: object | null) => {
      if (Object.getPrototypeOf(o) !== proto)
        swaps.push(String((o as { constructor?: { name?: string } }).constructor?.name));
      return setPrototypeOf(o, proto) as object;
    });
    try {
      const base = await listen(server);
      for (const [path, init] of REQUESTS) await answer(base, path, init);
      expect(swaps).toEqual([]);
      // The spy sees swaps where there are some: an app served by app.listen makes them.
      const unrelated = express();
      unrelated.get('/', (_req, res) => res.end());
      const other = unrelated.listen(0);
      servers.push(other);
      await new Promise((r) => other.once('listening', r));
      await answer(`http://127.0.0.1:${(other.address() as AddressInfo).port}`, '/');
      expect(swaps.length).toBeGreaterThan(0);
    } finally {
      spy.mockRestore();
    }
  });
});
