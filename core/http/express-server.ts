import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { Express } from 'express';

/**
 * An HTTP server for an Express app whose requests and responses are born with Express's
 * prototypes, so the prototype swap Express makes on every request (`Object.setPrototypeOf` in
 * app.handle) finds the prototype already in place and changes nothing.
 *
 * Why: V8 handles objects whose prototype was swapped (or that came from a plain `Object.create`
 * prototype) badly in its young generation. Under load in `make bench`, a bare Express app's
 * scavenges took 5.6 ms against 0.3 ms for node:http, promoted ~7 KB per request into the old
 * generation and ran a mark-compact every ~1.5 s: that, not Express's routing, was the latency
 * tail. ES subclasses of IncomingMessage/ServerResponse that carry Express's methods behave
 * like node:http's own objects (0.3 ms scavenges, nothing promoted). Express still does all the
 * work: app.handle, its router, req/res helpers, error handling.
 */
export function createExpressServer(app: Express): Server {
  class ExpressRequest extends IncomingMessage {}
  class ExpressResponse extends ServerResponse {}
  adopt(ExpressRequest.prototype, app.request, IncomingMessage.prototype);
  adopt(ExpressResponse.prototype, app.response, ServerResponse.prototype);
  // Express reads these two as the prototypes to give each request and response.
  Object.assign(app, { request: ExpressRequest.prototype, response: ExpressResponse.prototype });
  return createServer({ IncomingMessage: ExpressRequest, ServerResponse: ExpressResponse }, app);
}

/** Copies every property of `proto`'s chain above `base` onto `target`, nearest last (so it wins). */
function adopt(target: object, proto: object, base: object): void {
  const chain: object[] = [];
  for (let p: object | null = proto; p !== null && p !== base; p = Object.getPrototypeOf(p) as object | null)
    chain.unshift(p);
  if (!chain.length || Object.getPrototypeOf(chain[0]) !== base)
    throw new Error("Express's request/response prototypes no longer extend node:http's");
  for (const p of chain) Object.defineProperties(target, Object.getOwnPropertyDescriptors(p));
}

/** `createExpressServer(app).listen(port, callback)`: what `app.listen` does, with that server. */
export function listenExpress(app: Express, port: number, onListening: () => void): Server {
  return createExpressServer(app).listen(port, onListening);
}
