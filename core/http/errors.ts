import type { ErrorRequestHandler } from 'express';
import type { Logger } from '../logger';

/** An error meant for the client: status, a stable code, and the field it concerns. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The one JSON error shape of every API (`detail` as FastAPI, which the original served). */
export interface ErrorBody {
  detail: string;
  code: string;
  field?: string;
}

interface BodyParserError {
  type?: string;
  status?: number;
  message: string;
}

function isClientError(error: unknown): error is Error & { status: number } {
  const status = (error as { status?: unknown } | null)?.status;
  return error instanceof Error && typeof status === 'number' && status >= 400 && status < 500;
}

/** Maps every error to JSON in one place; anything unexpected is a 500 that leaks no internals. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    // A streamed response that failed midway was already ended by its handler; only log it.
    if (res.headersSent) {
      // Already answered (503 by the request timeout, say): the late outcome has no one to go to.
      if (res.writableEnded) log.debug({ err: error }, 'request finished after it was answered');
      else log.error({ err: error }, 'request failed after its response started');
      return;
    }
    let status = 500;
    let body: ErrorBody = { detail: 'internal error', code: 'E_INTERNAL' };
    if (error instanceof HttpError) {
      status = error.status;
      body = { detail: error.message, code: error.code, ...(error.field ? { field: error.field } : {}) };
      res.set(error.headers);
    } else if (typeof error === 'object' && error !== null && typeof (error as BodyParserError).type === 'string') {
      const parserError = error as BodyParserError;
      status = parserError.status ?? 400;
      const code = parserError.type === 'entity.too.large' ? 'E_PAYLOAD_TOO_LARGE' : 'E_BAD_BODY';
      body = { detail: parserError.message, code, field: 'body' };
    } else if (isClientError(error)) {
      // The framework's own refusals (a path that does not percent-decode: URIError with 400).
      status = error.status;
      body =
        error instanceof URIError
          ? { detail: `the path does not decode: ${error.message}`, code: 'E_BAD_PATH', field: 'path' }
          : { detail: error.message, code: 'E_BAD_REQUEST' };
    }
    if (status >= 500) log.error({ err: error }, 'request failed');
    res.status(status).json(body);
  };
}
