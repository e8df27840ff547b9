import { isSqlstate } from '../core/storage/sqlstate';

/**
 * What a condition or an event says about a Postgres failure: a reason and a sentence a platform
 * engineer can act on, never the driver's raw text (which can name internals, and reads as a bug).
 * The raw error goes to the operator's log.
 */
export interface DescribedFailure {
  reason: string;
  message: string;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

interface ErrorShape {
  code?: unknown;
  message?: unknown;
  errors?: unknown;
}

const codeOf = (error: unknown): string | undefined => {
  const { code, errors } = (error ?? {}) as ErrorShape;
  if (typeof code === 'string') return code;
  // Node's happy-eyeballs connect reports an AggregateError of one error per address.
  if (Array.isArray(errors)) for (const inner of errors as unknown[]) if (codeOf(inner)) return codeOf(inner);
  return undefined;
};

/**
 * `who` retries: the operator for its own statements, the consumer for a stalled partition's
 * writes (see describeRecordedError).
 */
export function describeDatabaseError(error: unknown, who = 'the operator'): DescribedFailure {
  const code = codeOf(error);
  const raw = (error as ErrorShape | undefined)?.message;
  const text = typeof raw === 'string' ? raw : '';
  const retrying = `${who} retries with backoff`;
  if ((code && NETWORK_CODES.has(code)) || /timeout exceeded when trying to connect|Connection terminated/i.test(text))
    return {
      reason: 'DatabaseUnreachable',
      message: `Postgres cannot be reached (${code ?? 'connection lost'}); ${retrying}`,
    };
  if (!isSqlstate(code))
    return {
      reason: 'DatabaseError',
      message: `the request to Postgres failed; ${retrying} (details in its log)`,
    };
  const sqlClass = code.slice(0, 2);
  if (sqlClass === '08' || code === '57P01' || code === '57P02' || code === '57P03')
    return {
      reason: 'DatabaseUnreachable',
      message: `Postgres closed or refused the connection (SQLSTATE ${code}); ${retrying}`,
    };
  if (sqlClass === '28')
    return {
      reason: 'DatabaseAuthFailed',
      message: `Postgres refused the operator's login (SQLSTATE ${code}): check the operator's DATABASE_URL Secret`,
    };
  if (code === '42501')
    return {
      reason: 'DatabasePermissionDenied',
      message: `its Postgres role lacks a privilege it needs (SQLSTATE ${code}): see the README's database roles`,
    };
  if (code === '55P03' || code === '57014')
    return {
      reason: 'DatabaseBusy',
      message: `a table of this group is locked by another session past the lock_timeout (SQLSTATE ${code}); ${retrying}`,
    };
  if (code === '40001' || code === '40P01')
    return { reason: 'DatabaseConflict', message: `a concurrent change conflicted (SQLSTATE ${code}); ${retrying}` };
  if (sqlClass === '53')
    return {
      reason: 'DatabaseResources',
      message: `Postgres is out of a resource (SQLSTATE ${code}: disk, memory or connections); ${retrying}`,
    };
  return {
    reason: 'DatabaseError',
    message: `Postgres refused a statement (SQLSTATE ${code}); ${retrying} (details in its log)`,
  };
}

/**
 * The error a consumer recorded for a partition (`<SQLSTATE>: <message>` when Postgres gave one, see
 * services/consumer), as a sentence for the Stalled condition; the text itself is served by
 * GET /v1/feature-groups/{namespace}/{name}.
 */
export function describeRecordedError(recorded: string): string {
  const match = /^([0-9A-Z]{5}): ([\s\S]*)$/.exec(recorded);
  const error = match ? { code: match[1], message: match[2] } : { message: recorded };
  return describeDatabaseError(error, 'the consumer').message;
}
