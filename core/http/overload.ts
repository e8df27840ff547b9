import type { RequestHandler } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ErrorBody } from './errors';

/** Paths that must answer under any load: probes that fail under load would restart a busy pod. */
const ALWAYS_ANSWERED = new Set(['/healthz', '/readyz', '/metrics']);

export interface LoadLimits {
  /** Requests handled at once; one more is answered 503 with Retry-After at once. */
  maxInFlight: number;
  /** A request still unanswered after this is answered 503 (its work may finish unseen). */
  requestTimeoutMs: number;
}

/**
 * Sheds load instead of falling over: beyond `maxInFlight` concurrent requests, or past
 * `requestTimeoutMs`, the answer is 503 with Retry-After, in the APIs' one error shape. Queues
 * stay bounded, so memory and latency do too, and a client's retry lands on a calmer process.
 */
export function shedLoad(limits: LoadLimits, registry: Registry): RequestHandler {
  const shed = new Counter({
    name: 'featurestore_http_shed_total',
    help: 'Requests answered 503 to shed load',
    labelNames: ['reason'],
    registers: [registry],
  });
  let inFlight = 0;
  new Gauge({
    name: 'featurestore_http_in_flight',
    help: 'Requests being handled',
    registers: [registry],
    collect() {
      this.set(inFlight);
    },
  });
  const refuse = (res: Parameters<RequestHandler>[1], reason: 'overloaded' | 'timeout'): void => {
    shed.inc({ reason });
    const body: ErrorBody =
      reason === 'overloaded'
        ? { detail: 'the server is at its request limit; retry after the given seconds', code: 'E_OVERLOADED' }
        : {
            detail: `the request took longer than ${limits.requestTimeoutMs} ms; retry after the given seconds`,
            code: 'E_TIMEOUT',
          };
    res.set('Retry-After', '1').status(503).json(body);
  };
  return (req, res, next) => {
    if (ALWAYS_ANSWERED.has(req.path)) {
      next();
      return;
    }
    if (inFlight >= limits.maxInFlight) {
      refuse(res, 'overloaded');
      return;
    }
    inFlight++;
    let released = false;
    const timer = setTimeout(() => {
      if (!res.headersSent) refuse(res, 'timeout');
    }, limits.requestTimeoutMs);
    const release = (): void => {
      if (released) return;
      released = true;
      inFlight--;
      clearTimeout(timer);
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}
